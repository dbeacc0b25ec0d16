package jtune.methods.peft;

/**
 * The dropout of a model's LoRA adapters (PEFT's {@code lora_dropout} on the adapter's input): while
 * {@link #training()} each element of the input is zeroed with probability p and the rest are multiplied by
 * {@code 1 / (1 − p)}; otherwise (evaluation, generation) the input passes unchanged. One instance is shared by the
 * adapters of a model and switched with {@link #setTraining}.
 *
 * <p>The mask is a pure function of (seed, layer, pass, element): element e of the input of adapter {@code layer}
 * in training pass {@code pass} is kept when the top 24 bits of {@code mix(seed, layer, pass, e)} (SplitMix64's
 * finalizer over a Weyl sequence) read as a fraction in [0, 1) are at least p. An adapter counts its passes by its
 * backward calls, so a forward recomputed for checkpointing and the backward that follows it see the same mask, and a
 * run is reproducible whatever the thread count.
 */
public final class Dropout {
    private final double p;
    private final long seed;
    private volatile boolean training;

    /** Drop probability p in [0, 1); starts in evaluation mode. */
    public Dropout(double p, long seed) {
        if (!(p >= 0 && p < 1)) {
            throw new IllegalArgumentException("the LoRA dropout probability must be in [0, 1), not " + p);
        }
        this.p = p;
        this.seed = seed;
    }

    public double p() {
        return p;
    }

    /** True while masks apply: p &gt; 0 and in training mode. */
    public boolean active() {
        return training && p > 0;
    }

    public boolean training() {
        return training;
    }

    public void setTraining(boolean training) {
        this.training = training;
    }

    /**
     * {@code out[e] = keep ? 1 / (1 − p) : 0} for the {@code out.length} elements of adapter {@code layer}'s input in
     * pass {@code pass}.
     */
    public void mask(int layer, long pass, float[] out) {
        float keep = (float) (1 / (1 - p));
        long base = seed ^ (layer * 0xD1B54A32D192ED03L) ^ (pass * 0xABC98388FB8FAC03L);
        for (int e = 0; e < out.length; e++) {
            double u = (mix(base + e * 0x9E3779B97F4A7C15L) >>> 40) * 0x1p-24;
            out[e] = u >= p ? keep : 0f;
        }
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
