package jtune.methods.quant;

import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;

/**
 * A matrix quantized to a uniform integer grid ({@link QuantFormat.Kind#INT}), on plain arrays: {@code codes} one
 * per element (rows × cols, row-major, unsigned in [0, 2^bits − 1]); {@code scales} and {@code zeros} one per
 * group (rows × groups, row-major; for a symmetric format every zero is 2^(bits−1)), already rounded to the
 * format's scale type. {@code w[i][j] ≈ scales[i][g] · (codes[i][j] − zeros[i][g])}, {@code g = j / groupWidth}.
 */
public record IntQuantization(QuantFormat format, int rows, int cols, byte[] codes, float[] scales, float[] zeros)
        implements QuantizedArrays {

    public IntQuantization {
        if (format.kind() != QuantFormat.Kind.INT) {
            throw new IllegalArgumentException("an integer quantization needs an INT format, not " + format);
        }
        int groups = format.groups(cols);
        if (codes.length != rows * cols || scales.length != rows * groups || zeros.length != scales.length) {
            throw new IllegalArgumentException("quantized " + rows + "x" + cols + " matrix (" + format + "): array lengths "
                    + codes.length + ", " + scales.length + ", " + zeros.length + " should be " + rows * cols + ", "
                    + rows * groups + ", " + rows * groups);
        }
    }

    @Override
    public int code(int i, int j) {
        return codes[i * cols + j] & 0xff;
    }

    /** Scale of group g of row i. */
    public float scale(int i, int g) {
        return scales[i * format.groups(cols) + g];
    }

    /** Zero point of group g of row i. */
    public float zero(int i, int g) {
        return zeros[i * format.groups(cols) + g];
    }

    @Override
    public float[] dequantize() {
        float[] w = new float[rows * cols];
        int width = format.groupWidth(cols);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                w[i * cols + j] = scale(i, j / width) * (code(i, j) - zero(i, j / width));
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
            m.scales().copyFrom(scales);
            if (format.hasZeros()) {
                m.zeros().copyFrom(zeros);
            }
            return m;
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** True when the format's scales are bf16 (so grids must be rounded to bf16 before choosing codes). */
    static boolean bf16(QuantFormat format) {
        return format.scaleType() == DType.BF16;
    }
}
