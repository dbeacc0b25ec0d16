package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.HfConfig;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code jtune export} on a jtune training checkpoint: the folder it writes, and its refusals. */
class ExportCommandTest {
    @TempDir
    Path dir;

    private record Run(int status, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private Path checkpoint(LlamaConfig c) throws IOException {
        Path run = dir.resolve("run");
        try (ScalarBackend b = new ScalarBackend(); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(b, pool);
            try (LlamaModel m = LlamaModel.create(s, c, 1, WeightTransform.IDENTITY, false);
                 AdamW opt = new AdamW(s, m.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f)) {
                Checkpoint.save(run.resolve(Checkpoint.FILE), m, opt,
                        new Checkpoint.State(7, new BatchStream.Position(1, 0, 0), 0.5, Map.of()));
            }
        }
        return run;
    }

    @Test
    void writesAHuggingFaceFolderFromATrainingRun() throws IOException {
        LlamaConfig c = LlamaConfig.llama(16, 24, 1, 2, 2, ByteTokenizer.VOCAB, 32, true);
        Path run = checkpoint(c);
        Path out = dir.resolve("hf");
        Run r = run("export", "--backend", "scalar", "--model", run.toString(), "--out", out.toString());
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.out()).contains("wrote " + out + ": config.json, generation_config.json, model.safetensors, "
                + "tokenizer.json, tokenizer_config.json").contains("byte tokenizer");
        assertThat(r.err()).contains("jtune checkpoint of step 7");
        assertThat(HfConfig.read(out.resolve("config.json"))).isEqualTo(c);

        Run again = run("export", "--backend", "scalar", "--model", run.toString(), "--out", out.toString());
        assertThat(again.status()).isEqualTo(1);
        assertThat(again.err()).contains(out + ": is not empty; jtune exports only into a new or empty folder");
    }

    @Test
    void namesWhatIsMissing() {
        Run noOut = run("export", "--model", dir.toString());
        assertThat(noOut.status()).isEqualTo(2);
        assertThat(noOut.err()).contains("export needs --out DIR");
        Run noModel = run("export", "--out", dir.resolve("x").toString());
        assertThat(noModel.status()).isEqualTo(2);
        assertThat(noModel.err()).contains("export needs --model PATH");
        assertThat(run("--help").out()).contains("export", "--out DIR");
    }
}
