package jtune.methods.quant;

import jtune.engine.tensor.QuantFormat;

/**
 * Round-to-nearest quantization onto an integer grid: each group of a row (the whole row for a per-channel
 * format) gets its own min-max {@link IntGrid} and every element the nearest code on it. Needs no data.
 */
public final class Rtn {
    private Rtn() {
    }

    /** Quantizes the (rows, cols) row-major matrix {@code w} in the INT format {@code format}. */
    public static IntQuantization quantize(float[] w, int rows, int cols, QuantFormat format) {
        if (format.kind() != QuantFormat.Kind.INT) {
            throw new IllegalArgumentException("round-to-nearest quantizes to integer formats, not " + format);
        }
        if (w.length != rows * cols) {
            throw new IllegalArgumentException("round-to-nearest: a " + rows + "x" + cols + " matrix has " + rows * cols
                    + " elements, but " + w.length + " were given");
        }
        int groups = format.groups(cols), width = format.groupWidth(cols);
        byte[] codes = new byte[rows * cols];
        float[] scales = new float[rows * groups], zeros = new float[rows * groups];
        for (int i = 0; i < rows; i++) {
            for (int g = 0; g < groups; g++) {
                int from = i * cols + g * width, to = i * cols + Math.min(cols, (g + 1) * width);
                IntGrid grid = IntGrid.fit(w, from, to, format.bits(), format.symmetric(), IntQuantization.bf16(format));
                scales[i * groups + g] = grid.scale();
                zeros[i * groups + g] = grid.zero();
                for (int e = from; e < to; e++) {
                    codes[e] = (byte) grid.code(w[e]);
                }
            }
        }
        return new IntQuantization(format, rows, cols, codes, scales, zeros);
    }
}
