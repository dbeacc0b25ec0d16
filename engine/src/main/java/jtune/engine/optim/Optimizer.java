package jtune.engine.optim;

import java.util.List;
import java.util.Map;
import jtune.engine.nn.Parameter;
import jtune.engine.tensor.Tensor;

/**
 * Seam 2 of the design: how gradients become updates. An optimizer owns its state tensors (recorded under
 * {@link jtune.engine.tensor.Category#OPTIMIZER_STATE}) and updates, at each {@link #step}, every trainable
 * parameter it was given that has a gradient. The trainer drives it; checkpoints save {@link #state()} and
 * {@link #steps()} and restore them with {@link #restoreSteps}.
 */
public interface Optimizer extends AutoCloseable {

    /** Short name for logs and checkpoints: "adamw", "sgd". */
    String name();

    /** One update at learning rate {@code lr} of every trainable parameter that has a gradient. */
    void step(float lr);

    /** Updates done so far. */
    long steps();

    /** Sets the update count, after {@link #state()} has been loaded from a checkpoint. */
    void restoreSteps(long steps);

    /** Zeroes every gradient that has been allocated. */
    void zeroGrad();

    /** The trainable parameters this optimizer updates, in the order given. */
    List<Parameter> parameters();

    /**
     * The state tensors by checkpoint name ("optimizer.exp_avg.model.norm.weight"), in a fixed order. These are
     * the live tensors: a checkpoint reads them to save and writes into them to resume.
     */
    Map<String, Tensor> state();

    /** Frees the state tensors. */
    @Override
    void close();
}
