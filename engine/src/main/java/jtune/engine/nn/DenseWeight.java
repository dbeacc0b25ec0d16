package jtune.engine.nn;

import java.util.List;
import jtune.engine.backend.Checks;
import jtune.engine.tensor.Tensor;

/** The plain weight: {@code W_eff = W}, one (out, in) f32 matrix, trainable or frozen. */
public final class DenseWeight implements LinearWeight {
    private final Parameter weight;

    public DenseWeight(Parameter weight) {
        if (weight.value().rank() != 2) {
            throw new IllegalArgumentException("a dense weight must be (out, in), got " + weight.value());
        }
        this.weight = weight;
    }

    public Parameter weight() {
        return weight;
    }

    @Override
    public long inFeatures() {
        return weight.value().dim(1);
    }

    @Override
    public long outFeatures() {
        return weight.value().dim(0);
    }

    @Override
    public void forward(Session s, Tensor x, Tensor y) {
        s.backend().matmul(x, false, weight.value(), true, y, 1f, 0f);
    }

    @Override
    public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
        if (weight.trainable()) {
            // dW (out, in) += dyᵀ (out, N) · x (N, in)
            s.backend().matmul(dy, true, x, false, weight.grad(s), 1f, 1f);
        }
        if (dx != null) {
            Checks.shape("linear backward", dx, x.dim(0), inFeatures());
            s.backend().matmul(dy, false, weight.value(), false, dx, 1f, 0f);
        }
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(weight);
    }
}
