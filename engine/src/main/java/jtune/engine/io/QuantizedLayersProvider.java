package jtune.engine.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Session;

/**
 * Reads the quantized linear layers of a Hugging Face model folder whose {@code config.json} holds a
 * {@code "quantization_config"}, for the {@code "quant_method"} it names. The engine has the packed storage
 * ({@link jtune.engine.tensor.QuantizedMatrix}) and the kernels, but no quantized {@link LinearWeight}: those live
 * with the quantizers in the {@code jtune.methods} module, which provides this service (found with
 * {@link java.util.ServiceLoader}) for its own format, {@code "jtune"}. {@link ModelLoader} builds everything
 * else of the model (embedding, norms, output head, any layer stored dense) from the f32 tensors as usual and asks
 * the provider for each layer the files hold quantized.
 */
public interface QuantizedLayersProvider {
    /** The {@code "quant_method"} this provider reads, e.g. {@code "jtune"}. */
    String quantMethod();

    /**
     * Validates {@code quantizationConfig}, the {@code "quantization_config"} object of {@code configFile}, and
     * returns the reader of the quantized layers held by {@code files}. Faults are one {@link SafeTensors.FormatException}
     * sentence naming the file, the field or tensor, and what would be valid.
     */
    Layers open(Path configFile, Map<String, Object> quantizationConfig, SafeTensorsModel files) throws IOException;

    /** The quantized layers of one model folder. */
    interface Layers {
        /**
         * True when {@code layer} (the Hugging Face name without ".weight", "model.layers.3.mlp.down_proj") is
         * stored quantized; its f32 {@code layer.weight} is then not in the files.
         */
        boolean isQuantized(String layer);

        /**
         * The frozen weight of quantized {@code layer}, an (out, in) matrix, built over tensors of the files
         * (mapped without a copy where aligned, counted as frozen weights); the caller owns it. A missing tensor, or
         * one of another type or shape than the declared format needs for an (out, in) matrix, fails with one
         * sentence naming the file and the tensor.
         */
        LinearWeight weight(Session s, String layer, long out, long in) throws IOException;

        /** The names of the tensors of the files that {@link #weight} has read so far. */
        Set<String> used();

        /** One phrase for the user: "int4 g128 asym F32 by gptq, LoRC rank 8". */
        String description();
    }
}
