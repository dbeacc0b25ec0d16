package jtune.engine.nn;

import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * A named tensor of a model. A trainable parameter lives under {@link Category#TRAINABLE_PARAMETERS} and has a
 * gradient of its shape under {@link Category#GRADIENTS}, allocated on first use; a frozen one lives under
 * {@link Category#FROZEN_WEIGHTS} and has none. {@code decay} says whether weight decay applies (not to norms
 * and biases). Names follow Hugging Face's ("model.layers.0.self_attn.q_proj.weight").
 */
public final class Parameter implements AutoCloseable {
    private final String name;
    private final Tensor value;
    private final boolean trainable;
    private final boolean decay;
    private Tensor grad;

    public Parameter(String name, Tensor value, boolean trainable, boolean decay) {
        this.name = name;
        this.value = value;
        this.trainable = trainable;
        this.decay = decay;
    }

    public String name() {
        return name;
    }

    public Tensor value() {
        return value;
    }

    public boolean trainable() {
        return trainable;
    }

    public boolean decay() {
        return decay;
    }

    /** The gradient, allocated zero-filled on first call; fails for a frozen parameter. */
    public Tensor grad(Session s) {
        if (!trainable) {
            throw new IllegalStateException("parameter '" + name + "' is frozen and has no gradient");
        }
        if (grad == null) {
            grad = s.pool().allocate(name + ".grad", value.dtype(), Category.GRADIENTS, value.shape());
        }
        return grad;
    }

    /** The gradient if one has been allocated, else null. */
    public Tensor gradOrNull() {
        return grad;
    }

    @Override
    public void close() {
        value.close();
        if (grad != null) {
            grad.close();
        }
    }

    @Override
    public String toString() {
        return name + " " + value.shape() + (trainable ? " trainable" : " frozen");
    }
}
