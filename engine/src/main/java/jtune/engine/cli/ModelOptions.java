package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;

/**
 * The {@code --model PATH [--tokenizer FILE]} options of the commands that run a model ({@code eval},
 * {@code generate}): the model is loaded frozen (no gradients are ever allocated) and must come with a tokenizer.
 */
record ModelOptions(Path path, Path tokenizer) {
    /** The model and tokenizer paths of {@code command}'s arguments, checked to exist. */
    static ModelOptions parse(Args args, String command) {
        String model = args.string("--model", null);
        if (model == null) {
            throw new Args.UsageException(command + " needs --model PATH: a Hugging Face model folder, a llama2.c .bin "
                    + "file or a jtune checkpoint");
        }
        Path path = Path.of(model);
        if (!Files.exists(path)) {
            throw new Args.UsageException("--model: there is no file or folder " + path);
        }
        String tok = args.string("--tokenizer", null);
        Path tokenizer = tok == null ? null : Path.of(tok);
        if (tokenizer != null && !Files.isRegularFile(tokenizer)) {
            throw new Args.UsageException("--tokenizer: there is no file " + tokenizer);
        }
        return new ModelOptions(path, tokenizer);
    }

    /** Loads the model, frozen, and says on err what was loaded; fails if no tokenizer comes with it. */
    LoadedModel load(Session s, PrintStream err) throws IOException {
        LoadedModel loaded = ModelLoader.load(s, path, tokenizer, false, WeightTransform.IDENTITY, false);
        if (loaded.tokenizer() == null) {
            loaded.close();
            throw new Args.UsageException("no tokenizer was found for the model at " + path
                    + "; name one with --tokenizer FILE (a tokenizer.json or a llama2.c tokenizer.bin)");
        }
        err.println("jtune: " + loaded.description());
        return loaded;
    }
}
