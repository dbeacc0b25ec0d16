package jtune.engine.nn;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * A linear layer {@code y = x · W_effᵀ + b}: the weight is a {@link LinearWeight} (seam 1: dense, adapter,
 * quantized), the bias (out) is optional (Qwen2's q/k/v projections). x is (N, in), y is (N, out).
 *
 * <p>The bias is broadcast over the rows by a rank-1 product with a column of ones, {@code y += 1 (N, 1) · b (1, out)},
 * and its gradient is the matching column sum {@code db += 1ᵀ · dy}, so no extra kernel is needed.
 */
public final class Linear implements AutoCloseable {
    private final LinearWeight weight;
    private final Parameter bias;

    /** {@code bias} is null or an (out) vector. */
    public Linear(LinearWeight weight, Parameter bias) {
        if (bias != null && (bias.value().rank() != 1 || bias.value().dim(0) != weight.outFeatures())) {
            throw new IllegalArgumentException("the bias of a linear layer with " + weight.outFeatures()
                    + " outputs must be (" + weight.outFeatures() + "), got " + bias.value());
        }
        this.weight = weight;
        this.bias = bias;
    }

    public LinearWeight weight() {
        return weight;
    }

    /** The bias, or null. */
    public Parameter bias() {
        return bias;
    }

    public long inFeatures() {
        return weight.inFeatures();
    }

    public long outFeatures() {
        return weight.outFeatures();
    }

    public void forward(Session s, Tensor x, Tensor y) {
        weight.forward(s, x, y);
        if (bias != null) {
            try (Tensor ones = ones(s, x.dim(0))) {
                s.backend().matmul(ones, false, bias.value().reshape(1, outFeatures()), false, y, 1f, 1f);
            }
        }
    }

    /**
     * Given the forward's input x and the output gradient dy: adds the gradients of the trainable parts and, when
     * dx is not null, writes {@code dx = dy · W_eff}.
     */
    public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
        if (bias != null && bias.trainable()) {
            try (Tensor ones = ones(s, x.dim(0))) {
                s.backend().matmul(ones, true, dy, false, bias.grad(s).reshape(1, outFeatures()), 1f, 1f);
            }
        }
        weight.backward(s, x, dy, dx);
    }

    private static Tensor ones(Session s, long rows) {
        Tensor t = s.f32("linear.ones", Category.WORKSPACE, rows, 1);
        s.backend().fill(t, 1f);
        return t;
    }

    /** The weight's parameters, then the bias. */
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(weight.parameters());
        if (bias != null) {
            all.add(bias);
        }
        return all;
    }

    @Override
    public void close() {
        weight.close();
        if (bias != null) {
            bias.close();
        }
    }
}
