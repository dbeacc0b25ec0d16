package jtune.methods.quant;

import jtune.engine.tensor.DynamicMap;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Nf4;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;

/**
 * A matrix quantized to NF4 ({@link QuantFormat.Kind#NF4}), on plain arrays: {@code codes} one per element (rows ×
 * cols, row-major, 0..15); {@code absmax} the f32 absmax of each block (rows × blocks, row-major) the codes were
 * chosen with. With double quantization, {@code absmaxCodes} (one u8 dynamic-map code per block),
 * {@code absmaxScales} (one f32 per 256 blocks) and {@code absmaxOffset} store the absmax values, and the decoded
 * absmax {@code map[code] · scale + offset} is what dequantization uses (bitsandbytes' scheme: the codes were chosen
 * with the raw absmax); without it those three are null, null and 0.
 */
public record Nf4Quantization(QuantFormat format, int rows, int cols, byte[] codes, float[] absmax,
                              byte[] absmaxCodes, float[] absmaxScales, float absmaxOffset) implements QuantizedArrays {

    public Nf4Quantization {
        if (format.kind() != QuantFormat.Kind.NF4) {
            throw new IllegalArgumentException("an NF4 quantization needs an NF4 format, not " + format);
        }
        int blocks = rows * format.groups(cols);
        if (codes.length != rows * cols || absmax.length != blocks || format.doubleQuant() != (absmaxCodes != null)
                || (absmaxCodes != null && (absmaxCodes.length != blocks || absmaxScales.length
                        != Math.ceilDiv(blocks, QuantFormat.DOUBLE_QUANT_BLOCK)))) {
            throw new IllegalArgumentException("NF4-quantized " + rows + "x" + cols + " matrix (" + format
                    + "): the code, absmax or double-quantization arrays have the wrong lengths");
        }
    }

    @Override
    public int code(int i, int j) {
        return codes[i * cols + j];
    }

    /** The absmax that dequantization uses for block n (row-major over rows × blocks): raw, or double-decoded. */
    public float decodedAbsmax(int n) {
        if (absmaxCodes == null) {
            return absmax[n];
        }
        float product = DynamicMap.value(absmaxCodes[n] & 0xff) * absmaxScales[n / QuantFormat.DOUBLE_QUANT_BLOCK];
        return product + absmaxOffset;
    }

    @Override
    public float[] dequantize() {
        float[] w = new float[rows * cols];
        int blocks = format.groups(cols), width = format.groupWidth(cols);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                w[i * cols + j] = Nf4.value(code(i, j)) * decodedAbsmax(i * blocks + j / width);
            }
        }
        return w;
    }

    @Override
    public QuantizedMatrix toMatrix(MemoryPool pool, String name) {
        QuantizedMatrix m = QuantizedMatrix.allocate(pool, name, format, rows, cols);
        try {
            int[] row = new int[cols];
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    row[j] = code(i, j);
                }
                m.setRow(i, row);
            }
            if (absmaxCodes == null) {
                m.scales().copyFrom(absmax);
            } else {
                float[] c = new float[absmaxCodes.length];
                for (int n = 0; n < c.length; n++) {
                    c[n] = absmaxCodes[n] & 0xff;
                }
                m.absmaxCodes().copyFrom(c);
                m.absmaxScales().copyFrom(absmaxScales);
                m.absmaxOffset().copyFrom(new float[]{absmaxOffset});
            }
            return m;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }
}
