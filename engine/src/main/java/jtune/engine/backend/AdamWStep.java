package jtune.engine.backend;

/** The scalars of one AdamW step; {@code step} counts from 1 and drives the bias corrections. */
public record AdamWStep(float lr, float beta1, float beta2, float eps, float weightDecay, long step) {
    public AdamWStep {
        if (step < 1) {
            throw new IllegalArgumentException("AdamW step counts from 1, got " + step);
        }
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("AdamW betas must lie in [0, 1), got " + beta1 + ", " + beta2);
        }
    }

    /** {@code 1 − β1^t}. */
    public double biasCorrection1() {
        return 1 - Math.pow(beta1, step);
    }

    /** {@code 1 − β2^t}. */
    public double biasCorrection2() {
        return 1 - Math.pow(beta2, step);
    }
}
