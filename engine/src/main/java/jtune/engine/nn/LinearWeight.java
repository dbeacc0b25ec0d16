package jtune.engine.nn;

import java.util.List;
import jtune.engine.tensor.Tensor;

/**
 * Seam 1 of the design: how a linear layer's effective weight {@code W_eff} (out, in) is formed from a frozen
 * base and trainable parts. The plain dense weight is one implementation; LoRA, quantized weights with
 * trainable scales, low-rank + sparse and the rest are others, swapped in by configuration without the
 * model's code knowing.
 */
public interface LinearWeight extends AutoCloseable {
    long inFeatures();

    long outFeatures();

    /** {@code y = x · W_effᵀ}; x is (N, in), y is (N, out). */
    void forward(Session s, Tensor x, Tensor y);

    /**
     * Given the forward's input x (N, in) and the output gradient dy (N, out): adds the gradients of the trainable
     * parts into their {@link Parameter#grad}, and, when dx is not null, writes {@code dx = dy · W_eff} (N, in).
     */
    void backward(Session s, Tensor x, Tensor dy, Tensor dx);

    /** The tensors this weight is made of, trainable or frozen, with Hugging Face-style names. */
    List<Parameter> parameters();

    @Override
    default void close() {
        parameters().forEach(Parameter::close);
    }
}
