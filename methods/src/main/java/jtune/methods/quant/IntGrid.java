package jtune.methods.quant;

import jtune.engine.tensor.Tensor;

/**
 * One uniform b-bit grid: {@code w ≈ scale · (q − zero)} for the unsigned codes {@code q ∈ [0, maxq]},
 * {@code maxq = 2^b − 1}. {@code zero} is integer-valued.
 *
 * <p>{@link #fit} is GPTQ's min-max choice (reference §0), in f32 arithmetic so that codes match PyTorch's:
 * the range is widened to include 0 ({@code lo = min(min, 0)}, {@code hi = max(max, 0)}), an all-zero range
 * becomes [−1, 1]; asymmetric: {@code scale = (hi − lo) / maxq}, {@code zero = rint(−lo / scale)};
 * symmetric: {@code a = max(−lo, hi)}, {@code scale = 2a / maxq}, {@code zero = 2^(b−1)}. (GPTQ's own symmetric
 * grid keeps lo = 0 for a row with no negative value, which clips its upper half; here every symmetric grid is
 * centred on 0.) With bf16 scales the scale is rounded to bf16 before the zero and the codes are computed, so the
 * stored grid is the one that chose the codes.
 */
public record IntGrid(float scale, float zero, int maxq) {

    /** The min-max grid of values whose least is {@code min} and greatest is {@code max}. */
    public static IntGrid fit(float min, float max, int bits, boolean symmetric, boolean bf16Scale) {
        int maxq = (1 << bits) - 1;
        float lo = Math.min(min, 0f), hi = Math.max(max, 0f);
        if (symmetric) {
            float a = Math.max(-lo, hi);
            if (a == 0f) {
                a = 1f;
            }
            return new IntGrid(round(2f * a / maxq, bf16Scale), 1 << (bits - 1), maxq);
        }
        if (lo == 0f && hi == 0f) {
            lo = -1f;
            hi = 1f;
        }
        float scale = round((hi - lo) / maxq, bf16Scale);
        float zero = Math.clamp((float) Math.rint(-lo / scale), 0f, maxq);
        return new IntGrid(scale, zero, maxq);
    }

    /** The min-max grid of {@code w[from, to)}. */
    public static IntGrid fit(float[] w, int from, int to, int bits, boolean symmetric, boolean bf16Scale) {
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (int j = from; j < to; j++) {
            min = Math.min(min, w[j]);
            max = Math.max(max, w[j]);
        }
        return fit(min, max, bits, symmetric, bf16Scale);
    }

    /** {@code clamp(rint(w / scale) + zero, 0, maxq)}, rounding half to even as {@code torch.round} does. */
    public int code(float w) {
        return (int) Math.clamp((float) Math.rint(w / scale) + zero, 0f, maxq);
    }

    /** {@code scale · (q − zero)}. */
    public float value(int q) {
        return scale * (q - zero);
    }

    private static float round(float scale, boolean bf16) {
        return bf16 ? Float.intBitsToFloat(Tensor.toBf16(scale) << 16) : scale;
    }
}
