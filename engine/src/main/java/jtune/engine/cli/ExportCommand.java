package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Set;
import jtune.engine.backend.Backend;
import jtune.engine.io.HfExport;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;

/**
 * {@code jtune export --model PATH [--tokenizer FILE] --out DIR}: writes a model that jtune reads (a Hugging Face
 * folder, a llama2.c checkpoint, a jtune training checkpoint) as a Hugging Face folder that transformers loads
 * ({@link HfExport}). DIR must be new or empty; it appears whole or not at all.
 */
final class ExportCommand {
    static final Set<String> VALUED = Set.of("--model", "--tokenizer", "--out");

    private ExportCommand() {
    }

    static int run(Args args, Backend backend, PrintStream out, PrintStream err) throws IOException {
        if (args.positional().size() > 1) {
            throw new Args.UsageException("unexpected argument '" + args.positional().get(1) + "' after 'export'");
        }
        ModelOptions model = ModelOptions.parse(args, "export");
        String dir = args.string("--out", null);
        if (dir == null) {
            throw new Args.UsageException("export needs --out DIR, a new or empty folder to write the model into");
        }
        try (MemoryPool pool = new MemoryPool(new MemoryLedger());
             LoadedModel loaded = ModelLoader.load(new Session(backend, pool), model.path(), model.tokenizer(), false,
                     WeightTransform.IDENTITY, false)) {
            err.println("jtune: " + loaded.description());
            HfExport.Result r = HfExport.write(loaded, Path.of(dir));
            out.println("wrote " + r.dir() + ": " + String.join(", ", r.files()));
            out.println(r.tokenizerNote());
        }
        return 0;
    }
}
