package jtune.methods.quant;

import jtune.engine.tensor.DynamicMap;
import jtune.engine.tensor.Nf4;
import jtune.engine.tensor.QuantFormat;

/**
 * NF4 quantization as bitsandbytes does it (reference §8.1): each block of {@code groupSize} consecutive elements of
 * a row has the f32 absmax {@code max |w|}; an element's code is {@link Nf4#nearest} of {@code w · (1 / absmax)}
 * (reciprocal multiply, strict-{@code >} midpoints, so ties take the lower code). An all-zero block has absmax 0 and
 * every code 7 (the exact 0). Double quantization: {@code offset = mean(absmax)}; the values {@code absmax − offset},
 * row-major, are cut into runs of 256, each with the f32 scale {@code max |·|} and, per value, the nearest code of the
 * signed dynamic map of {@code v · (1 / scale)} (a zero run takes code 127, the exact 0).
 */
public final class Nf4Quantizer {
    private Nf4Quantizer() {
    }

    /** Quantizes the (rows, cols) row-major matrix {@code w} in the NF4 format {@code format}. */
    public static Nf4Quantization quantize(float[] w, int rows, int cols, QuantFormat format) {
        if (format.kind() != QuantFormat.Kind.NF4) {
            throw new IllegalArgumentException("the NF4 quantizer needs an NF4 format, not " + format);
        }
        if (w.length != rows * cols) {
            throw new IllegalArgumentException("NF4: a " + rows + "x" + cols + " matrix has " + rows * cols
                    + " elements, but " + w.length + " were given");
        }
        int blocks = format.groups(cols), width = format.groupWidth(cols);
        byte[] codes = new byte[rows * cols];
        float[] absmax = new float[rows * blocks];
        for (int i = 0; i < rows; i++) {
            for (int b = 0; b < blocks; b++) {
                int from = i * cols + b * width, to = i * cols + Math.min(cols, (b + 1) * width);
                float a = 0f;
                for (int e = from; e < to; e++) {
                    a = Math.max(a, Math.abs(w[e]));
                }
                absmax[i * blocks + b] = a;
                float inv = a == 0f ? 0f : 1f / a;
                for (int e = from; e < to; e++) {
                    codes[e] = (byte) Nf4.nearest(w[e] * inv);
                }
            }
        }
        if (!format.doubleQuant()) {
            return new Nf4Quantization(format, rows, cols, codes, absmax, null, null, 0f);
        }
        double sum = 0;
        for (float a : absmax) {
            sum += a;
        }
        float offset = (float) (sum / absmax.length);
        int run = QuantFormat.DOUBLE_QUANT_BLOCK;
        byte[] absmaxCodes = new byte[absmax.length];
        float[] absmaxScales = new float[Math.ceilDiv(absmax.length, run)];
        for (int r = 0; r < absmaxScales.length; r++) {
            int from = r * run, to = Math.min(absmax.length, from + run);
            float s = 0f;
            for (int n = from; n < to; n++) {
                s = Math.max(s, Math.abs(absmax[n] - offset));
            }
            absmaxScales[r] = s;
            float inv = s == 0f ? 0f : 1f / s;
            for (int n = from; n < to; n++) {
                absmaxCodes[n] = (byte) DynamicMap.nearest((absmax[n] - offset) * inv);
            }
        }
        return new Nf4Quantization(format, rows, cols, codes, absmax, absmaxCodes, absmaxScales, offset);
    }
}
