package jtune.engine.nn;

import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Rotary position embedding, rotate-half pairing (Hugging Face LLaMA): for position t and pair i &lt; D/2 the angle is
 * {@code t · invFreq[i]}. Holds the cos/sin tables (T, D/2), computed on the host for the longest sequence seen so far
 * rounded up to a power of two (they are recomputed, larger, when a longer one comes). As in Hugging Face the angle is rounded to f32 before its
 * cosine and sine are taken, so that positions far from 0 rotate the same way.
 */
public final class Rotary implements AutoCloseable {
    private final float[] invFreq;
    private Tensor cos;
    private Tensor sin;

    /** {@code invFreq} (D/2): one frequency per pair, e.g. {@link #inverseFrequencies}. */
    public Rotary(float[] invFreq) {
        this.invFreq = invFreq.clone();
    }

    /** {@code invFreq[i] = 1 / theta^(2i/D)}, i &lt; D/2, each step rounded to f32 as Hugging Face computes it. */
    public static float[] inverseFrequencies(int headDim, double theta) {
        float[] f = new float[headDim / 2];
        for (int i = 0; i < f.length; i++) {
            float exponent = (float) (2 * i) / headDim;
            f[i] = 1f / (float) Math.pow((float) theta, exponent);
        }
        return f;
    }

    /**
     * Llama 3's frequency scaling (Hugging Face rope type "llama3"): with wavelength {@code λ = 2π / f},
     * {@code λ_low = original / lowFreqFactor} and {@code λ_high = original / highFreqFactor}, a frequency keeps its
     * value where {@code λ < λ_high}, is divided by {@code factor} where {@code λ > λ_low}, and in between is
     * {@code (1 − s) · f / factor + s · f} with {@code s = (original / λ − lowFreqFactor) / (highFreqFactor − lowFreqFactor)}.
     */
    public static float[] llama3Scaling(float[] invFreq, double factor, double lowFreqFactor, double highFreqFactor,
                                        int originalMaxPosition) {
        double lowWavelen = originalMaxPosition / lowFreqFactor;
        double highWavelen = originalMaxPosition / highFreqFactor;
        float[] out = new float[invFreq.length];
        for (int i = 0; i < invFreq.length; i++) {
            double f = invFreq[i];
            double wavelen = 2 * Math.PI / f;
            if (wavelen < highWavelen) {
                out[i] = (float) f;
            } else if (wavelen > lowWavelen) {
                out[i] = (float) (f / factor);
            } else {
                double smooth = (originalMaxPosition / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                out[i] = (float) ((1 - smooth) * f / factor + smooth * f);
            }
        }
        return out;
    }

    /** Rotates x (B, T, H, D) in place by the angles of positions 0..T-1; {@code inverse} is the backward pass. */
    public void apply(Session s, Tensor x, boolean inverse) {
        apply(s, x, 0, inverse);
    }

    /**
     * Rotates x (B, T, H, D) or (T, H, D) in place by the angles of the absolute positions start..start+T-1, as for
     * the new tokens of a sequence whose earlier positions are cached.
     */
    public void apply(Session s, Tensor x, int start, boolean inverse) {
        int t = Math.toIntExact(x.dim(-3));
        ensure(s, start + t);
        s.backend().rope(x, cos.slice(0, start, start + t), sin.slice(0, start, start + t), inverse);
    }

    /** Tables for at least t positions: the next power of two, so that a sequence growing by one is cheap. */
    private void ensure(Session s, int needed) {
        if (cos != null && cos.dim(0) >= needed) {
            return;
        }
        close();
        int t = needed <= 1 ? 1 : Integer.highestOneBit(needed - 1) << 1;
        int half = invFreq.length;
        cos = s.f32("rope.cos", Category.WORKSPACE, t, half);
        sin = s.f32("rope.sin", Category.WORKSPACE, t, half);
        float[] c = new float[t * half], sn = new float[t * half];
        for (int p = 0; p < t; p++) {
            for (int i = 0; i < half; i++) {
                float angle = p * invFreq[i];
                c[p * half + i] = (float) Math.cos(angle);
                sn[p * half + i] = (float) Math.sin(angle);
            }
        }
        cos.copyFrom(c);
        sin.copyFrom(sn);
    }

    @Override
    public void close() {
        if (cos != null) {
            cos.close();
            sin.close();
            cos = null;
            sin = null;
        }
    }
}
