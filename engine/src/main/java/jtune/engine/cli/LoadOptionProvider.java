package jtune.engine.cli;

import java.io.IOException;
import java.nio.file.Path;
import jtune.engine.nn.WeightTransform;

/**
 * An option of {@code jtune eval} and {@code jtune generate} that loads the model with the weights of a fine-tuning
 * method another module holds, found with {@link java.util.ServiceLoader}: {@code --scales DIR} (a PEQA scale set)
 * and {@code --adapter DIR} (a LoRA adapter), both provided by {@code jtune.methods}. The engine knows the option
 * names, so that without the module they fail saying so rather than as unknown options. The option's folder becomes a
 * {@link WeightTransform} the model is built with; once it is built, {@link Finish#run} reads the method's
 * tensors into the weights the transform made.
 */
public interface LoadOptionProvider {
    /** The option this provides: {@code --scales} or {@code --adapter}. */
    String option();

    /**
     * Reads and checks the settings in {@code dir} (its config file) before any model is loaded; a fault is one
     * sentence naming the file and the field.
     */
    Attachment open(Path dir) throws IOException;

    /**
     * What one model is loaded with: {@code transform} to build it with, applied to dense layers and to layers stored
     * quantized alike, and {@code finish}, called once the model is built.
     */
    record Attachment(WeightTransform transform, Finish finish) {
    }

    /** The second half of an {@link Attachment}. */
    @FunctionalInterface
    interface Finish {
        /**
         * Reads the method's tensors into the weights the transform made. Settings or tensors that are not this
         * model's (another model, format or layer shape) fail with one sentence naming the file. Returns one phrase
         * for the user: "the LoRA adapter DIR (r 8 on 35 layers)".
         */
        String run() throws IOException;
    }
}
