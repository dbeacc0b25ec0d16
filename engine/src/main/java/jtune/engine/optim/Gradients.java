package jtune.engine.optim;

import java.util.List;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Tensor;

/** What the trainer does to gradients between backward and the optimizer step: zero, measure, clip. */
public final class Gradients {
    /** Added to the norm before dividing, as in PyTorch's {@code clip_grad_norm_}. */
    public static final double CLIP_EPS = 1e-6;

    private Gradients() {
    }

    /** Zeroes every gradient of {@code params} that has been allocated. */
    public static void zero(Session s, List<Parameter> params) {
        for (Parameter p : params) {
            Tensor g = p.gradOrNull();
            if (g != null) {
                s.backend().fill(g, 0f);
            }
        }
    }

    /** The global L2 norm {@code sqrt(Σ_p Σ g²)} over every allocated gradient, summed in double. */
    public static double globalNorm(Session s, List<Parameter> params) {
        double sum = 0;
        for (Parameter p : params) {
            Tensor g = p.gradOrNull();
            if (g != null) {
                sum += s.backend().sumOfSquares(g);
            }
        }
        return Math.sqrt(sum);
    }

    /**
     * Global-norm clipping (PyTorch's {@code clip_grad_norm_}): when the norm exceeds {@code maxNorm}, every
     * gradient is scaled by {@code maxNorm / (norm + 1e-6)}. A non-finite norm leaves the gradients alone (the
     * trainer reports it). Returns the norm before clipping.
     */
    public static double clipGlobalNorm(Session s, List<Parameter> params, double maxNorm) {
        if (!(maxNorm > 0)) {
            throw new IllegalArgumentException("the clipping norm must be positive, got " + maxNorm);
        }
        double norm = globalNorm(s, params);
        if (Double.isFinite(norm) && norm > maxNorm) {
            float factor = (float) (maxNorm / (norm + CLIP_EPS));
            for (Parameter p : params) {
                Tensor g = p.gradOrNull();
                if (g != null) {
                    s.backend().scale(g, factor, g);
                }
            }
        }
        return norm;
    }
}
