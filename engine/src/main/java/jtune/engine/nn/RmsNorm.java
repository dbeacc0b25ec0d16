package jtune.engine.nn;

import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * RMSNorm over the last dimension: {@code y = x · rstd · w}, {@code rstd = 1 / sqrt(mean(x²) + eps)} per row.
 * The weight (D) is a parameter ("model.norm.weight", no weight decay).
 */
public final class RmsNorm {
    private final Parameter weight;
    private final float eps;

    public RmsNorm(Parameter weight, float eps) {
        if (weight.value().rank() != 1) {
            throw new IllegalArgumentException("an RMSNorm weight must be (D), got " + weight.value());
        }
        this.weight = weight;
        this.eps = eps;
    }

    public Parameter weight() {
        return weight;
    }

    /** x and out (rows, D); rstd (rows) receives each row's factor for {@link #backward}. out may alias x. */
    public void forward(Session s, Tensor x, Tensor out, Tensor rstd) {
        s.backend().rmsNorm(x, weight.value(), eps, out, rstd);
    }

    /** Writes dx (rows, D) from the forward's x and rstd and the output gradient dy; adds the weight's gradient. */
    public void backward(Session s, Tensor x, Tensor rstd, Tensor dy, Tensor dx) {
        if (weight.trainable()) {
            s.backend().rmsNormBackward(x, weight.value(), rstd, dy, dx, weight.grad(s));
            return;
        }
        try (Tensor discarded = s.f32("rmsnorm.dweight", Category.WORKSPACE, weight.value().dim(0))) {
            s.backend().rmsNormBackward(x, weight.value(), rstd, dy, dx, discarded);
        }
    }
}
