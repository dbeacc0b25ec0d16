package jtune.engine.tensor;

import java.util.Arrays;

/**
 * bitsandbytes' signed 8-bit dynamic map ({@code create_dynamic_map(signed=True)}), the code book of the double
 * quantization of NF4 absmax values: 256 sorted f32 values in [−1, 1]. For i = 0..6 it holds the 2^i midpoints of
 * 2^i + 1 points spaced evenly over [0.1, 1] (f32, as {@code torch.linspace} makes them, to the last bit), scaled by
 * 10^(i−6) in f32, each with its negation; then an exact 0 and 1.0. So 127 negative values, 0 at index 127, 128
 * positive.
 */
public final class DynamicMap {
    private static final float[] SIGNED = build();

    private DynamicMap() {
    }

    /** The value of code {@code q} (0..255). */
    public static float value(int q) {
        return SIGNED[q];
    }

    /** A copy of the 256 values, index = code, ascending. */
    public static float[] signed() {
        return SIGNED.clone();
    }

    /**
     * The code of a normalised value {@code x} (nominally in [−1, 1]): the nearest entry, the lower one on a tie.
     * Values beyond ±1 take the end codes; NaN takes code 0.
     */
    public static int nearest(float x) {
        int lo = 0, hi = 255;
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (x >= SIGNED[mid]) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return Math.abs(x - SIGNED[hi]) < Math.abs(x - SIGNED[lo]) ? hi : lo;
    }

    private static float[] build() {
        float[] v = new float[256];
        int n = 0;
        for (int i = 0; i < 7; i++) {
            float[] edges = linspace(0.1f, 1f, (1 << i) + 1);
            float scale = (float) Math.pow(10, i - 6);
            for (int k = 0; k + 1 < edges.length; k++) {
                float mean = (edges[k] + edges[k + 1]) / 2f;
                v[n++] = scale * mean;
                v[n++] = -scale * mean;
            }
        }
        v[n++] = 0f;
        v[n] = 1f;
        Arrays.sort(v);
        return v;
    }

    /**
     * {@code steps} points from start to end in f32 exactly as {@code torch.linspace(start, end, steps,
     * dtype=float32)} makes them on the CPU (PyTorch 1.13, its AVX2 kernel, checked bit for bit against it):
     * {@code step = (end − start) / (steps − 1)}; point k is {@code fma(step, k, start)} in the first half and
     * {@code fma(−step, steps − 1 − k, end)} in the second; but the points of each whole pair of 8-lane vectors
     * (the first {@code ⌊steps / 16⌋ · 16}) are computed 8 at a time as {@code base + step · i}, two roundings, from
     * the point {@code base} that starts the vector.
     */
    private static float[] linspace(float start, float end, int steps) {
        float step = (end - start) / (steps - 1);
        float[] out = new float[steps];
        for (int k = 0; k < steps; k++) {
            out[k] = k < steps / 2 ? Math.fma(step, k, start) : Math.fma(-step, steps - 1 - k, end);
        }
        for (int v = 0; v < steps / 16 * 16; v += 8) {
            float base = out[v];
            for (int i = 1; i < 8; i++) {
                out[v + i] = base + step * i;
            }
        }
        return out;
    }
}
