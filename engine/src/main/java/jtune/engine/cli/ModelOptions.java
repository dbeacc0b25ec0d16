package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import java.util.Set;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;

/**
 * The {@code --model PATH [--tokenizer FILE] [--scales DIR | --adapter DIR]} options of the commands that run a model
 * ({@code eval}, {@code generate}): the model is loaded frozen (no gradients are ever allocated) and must come with a
 * tokenizer. {@code --scales} and {@code --adapter} load it with a fine-tuning's weights through the
 * {@link LoadOptionProvider} of that option (the {@code jtune.methods} module's).
 *
 * @param addOn    the provider of the {@code --scales} or {@code --adapter} given, or null
 * @param addOnDir its folder, or null
 */
record ModelOptions(Path path, Path tokenizer, LoadOptionProvider addOn, Path addOnDir) {
    /** The options that take a value here. */
    private static final List<String> VALUED = List.of("--model", "--tokenizer", "--scales", "--adapter");

    /** The options a command that runs a model takes: these and its own {@code more}. */
    static Set<String> valuedWith(String... more) {
        List<String> all = new ArrayList<>(VALUED);
        all.addAll(List.of(more));
        return Set.copyOf(all);
    }

    /**
     * The model and tokenizer paths of {@code command}'s arguments, checked to exist, and the provider and folder of
     * {@code --scales} or {@code --adapter} (a command whose options lack them never has them).
     */
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
        String scales = args.string("--scales", null), adapter = args.string("--adapter", null);
        if (scales != null && adapter != null) {
            throw new Args.UsageException("give --scales or --adapter, not both: a PEQA scale set and a LoRA adapter "
                    + "are two different fine-tunings of a model");
        }
        if (scales == null && adapter == null) {
            return new ModelOptions(path, tokenizer, null, null);
        }
        String option = scales != null ? "--scales" : "--adapter";
        Path dir = Path.of(scales != null ? scales : adapter);
        if (!Files.isDirectory(dir)) {
            throw new Args.UsageException(option + ": there is no folder " + dir);
        }
        for (LoadOptionProvider p : ServiceLoader.load(LoadOptionProvider.class, ModelOptions.class.getClassLoader())) {
            if (p.option().equals(option)) {
                return new ModelOptions(path, tokenizer, p, dir);
            }
        }
        throw new IllegalArgumentException(option + " needs the jtune.methods module (PEQA and LoRA), which is not in "
                + "this build");
    }

    /**
     * Loads the model, frozen, with the fine-tuning's weights when one was given, and says on err what was loaded;
     * fails if no tokenizer comes with it.
     */
    LoadedModel load(Session s, PrintStream err) throws IOException {
        LoadOptionProvider.Attachment with = addOn == null ? null : addOn.open(addOnDir);
        LoadedModel loaded = ModelLoader.load(s, path, tokenizer, false,
                with == null ? WeightTransform.IDENTITY : with.transform(), false);
        try {
            String note = with == null ? "" : "; with " + with.finish().run();
            if (loaded.tokenizer() == null) {
                throw new Args.UsageException("no tokenizer was found for the model at " + path
                        + "; name one with --tokenizer FILE (a tokenizer.json or a llama2.c tokenizer.bin)");
            }
            err.println("jtune: " + loaded.description() + note);
            return loaded;
        } catch (IOException | RuntimeException e) {
            loaded.close();
            throw e;
        }
    }
}
