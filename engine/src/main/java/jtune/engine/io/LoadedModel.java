package jtune.engine.io;

import java.nio.file.Path;
import java.util.List;
import jtune.engine.model.LlamaModel;
import jtune.engine.tokenizer.Tokenizer;

/**
 * A model read from disk by {@link ModelLoader}, with its tokenizer (null when none was found); {@link #close()}
 * closes the model, then the weight files it still reads.
 *
 * @param description    one line for the user: the file, its format, the model's shape and the tokenizer
 * @param tokenizerFiles the files the tokenizer was read from ({@code tokenizer.json} and its companions, a
 *                       llama2.c {@code tokenizer.bin}); empty for jtune's byte tokenizer or none. An export
 *                       copies them.
 * @param weights        the safetensors files that the model's tensors view without a copy (mapped), closed after
 *                       the model; null when the model reads no file
 */
public record LoadedModel(LlamaModel model, Tokenizer tokenizer, String description, List<Path> tokenizerFiles,
                          SafeTensorsModel weights) implements AutoCloseable {

    public LoadedModel {
        tokenizerFiles = List.copyOf(tokenizerFiles);
    }

    /** A model that maps no file and whose tokenizer came from no file. */
    public LoadedModel(LlamaModel model, Tokenizer tokenizer, String description) {
        this(model, tokenizer, description, List.of(), null);
    }

    @Override
    public void close() {
        try {
            model.close();
        } finally {
            if (weights != null) {
                weights.close();
            }
        }
    }
}
