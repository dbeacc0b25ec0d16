package jtune.engine.model;

import java.util.List;
import jtune.engine.nn.Parameter;
import jtune.engine.tensor.Tensor;

/**
 * A decoder-only language model as the trainer sees it. Tokens and targets are int32 (B, T); a negative target
 * is ignored by the loss. Gradients accumulate into each trainable {@link Parameter#grad} until the caller
 * zeroes them (so that gradient accumulation is a loop of {@link #forwardBackward} calls).
 */
public interface CausalLM extends AutoCloseable {
    LlamaConfig config();

    /** Every parameter, in a fixed order, with Hugging Face-style names. */
    List<Parameter> parameters();

    /**
     * Forward and backward on one batch. The loss is the mean cross-entropy over the targets not ignored; the
     * gradients added are those of {@code gradScale · loss} (gradScale = 1/accumulation steps, say). Saved
     * activations are freed before this returns. Returns the mean loss.
     */
    float forwardBackward(Tensor tokens, Tensor targets, float gradScale);

    /** The mean cross-entropy on one batch, forward only, nothing saved. */
    float loss(Tensor tokens, Tensor targets);

    /** Logits (B·T, V) of every position of {@code tokens} (B, T), forward only. */
    void logits(Tensor tokens, Tensor out);

    @Override
    void close();
}
