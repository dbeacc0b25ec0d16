package jtune.methods.peft;

import java.util.List;
import jtune.engine.model.CausalLM;
import jtune.engine.model.LlamaConfig;
import jtune.engine.nn.Parameter;
import jtune.engine.tensor.Tensor;

/**
 * A model seen by a trainer with its LoRA dropout switched on exactly while {@link #forwardBackward} runs; the
 * forward-only calls (evaluation) run with it off. Closing it closes nothing: the model stays the caller's.
 */
public final class TrainingMode implements CausalLM {
    private final CausalLM model;
    private final Dropout dropout;

    public TrainingMode(CausalLM model, Dropout dropout) {
        this.model = model;
        this.dropout = dropout;
    }

    @Override
    public LlamaConfig config() {
        return model.config();
    }

    @Override
    public List<Parameter> parameters() {
        return model.parameters();
    }

    @Override
    public float forwardBackward(Tensor tokens, Tensor targets, float gradScale) {
        dropout.setTraining(true);
        try {
            return model.forwardBackward(tokens, targets, gradScale);
        } finally {
            dropout.setTraining(false);
        }
    }

    @Override
    public float loss(Tensor tokens, Tensor targets) {
        return model.loss(tokens, targets);
    }

    @Override
    public void logits(Tensor tokens, Tensor out) {
        model.logits(tokens, out);
    }

    @Override
    public void close() {
    }
}
