package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.HfExport;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code jtune finetune}, which the methods module provides through {@link CommandProvider}: the three methods run on
 * a small model folder and write their adapter or scale set, print the held-out perplexity and the memory ledger; a
 * saved PEQA scale set swapped in with {@code --scales} scores what the run ended with; the help and the list of
 * commands name it; wrong usage exits 2 with a sentence. In this package because {@link Main#run} is package-private.
 */
class FinetuneCommandTest {
    private static final Pattern PERPLEXITY = Pattern.compile("held-out perplexity  ([0-9.]+) -> ([0-9.]+)");

    @TempDir
    Path dir;
    private Path model;
    private Path data;

    private record Run(int status, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @BeforeEach
    void modelAndText() throws IOException {
        LlamaConfig c = LlamaConfig.llama(64, 96, 2, 4, 2, new ByteTokenizer().vocabSize(), 64, true);
        try (ScalarBackend b = new ScalarBackend(); MemoryPool pool = new MemoryPool(new MemoryLedger());
             LlamaModel m = LlamaModel.create(new Session(b, pool), c, 3, WeightTransform.IDENTITY, false)) {
            model = HfExport.write(m, new ByteTokenizer(), List.of(), dir.resolve("model"), HfExport.SHARD_BYTES).dir();
        }
        String[] words = {"the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "ball"};
        SplittableRandom rng = new SplittableRandom(1);
        StringBuilder text = new StringBuilder();
        while (text.length() < 12_000) {
            text.append(words[rng.nextInt(words.length)]).append(rng.nextInt(8) == 0 ? ".\n" : " ");
        }
        data = Files.writeString(dir.resolve("text.txt"), text);
    }

    private Run finetune(String method, String out, String... more) {
        List<String> args = new ArrayList<>(List.of("--threads", "2", "finetune", "--model", model.toString(), "--data",
                data.toString(), "--method", method, "--seq", "32", "--batch", "2", "--out",
                dir.resolve(out).toString()));
        args.addAll(List.of(more));
        return run(args.toArray(String[]::new));
    }

    @Test
    void eachMethodTrainsAndWritesItsFiles() {
        for (String[] m : new String[][]{{"lora", "adapter_config.json", "adapter_model.safetensors"},
                {"qlora", "adapter_config.json", "adapter_model.safetensors"},
                {"peqa", "peqa_config.json", "peqa_scales.safetensors"}}) {
            Run r = finetune(m[0], m[0], "--steps", "3", "--lr", "1e-3", "--targets", "q,v,down");
            assertThat(r.status()).as("%s: %s", m[0], r.err()).isZero();
            assertThat(r.out()).as(m[0]).containsPattern(PERPLEXITY).contains("trained steps 1..3: loss ")
                    .contains("frozen weights").contains("trainable parameters").contains("gradients")
                    .contains("optimizer state");
            assertThat(dir.resolve(m[0]).resolve(m[1])).as(m[0]).isRegularFile();
            assertThat(dir.resolve(m[0]).resolve(m[2])).as(m[0]).isRegularFile();
            assertThat(r.err()).as(m[0]).contains(": 6 layers, ");
        }
    }

    @Test
    void aSavedScaleSetSwapsInAtLoad() {
        Run trained = finetune("peqa", "scales", "--steps", "4", "--lr", "1e-3", "--bits", "3", "--group", "32");
        assertThat(trained.status()).as(trained.err()).isZero();
        Matcher m = PERPLEXITY.matcher(trained.out());
        assertThat(m.find()).isTrue();
        String after = m.group(2);
        assertThat(after).isNotEqualTo(m.group(1));
        Run swapped = finetune("peqa", "again", "--steps", "0", "--bits", "3", "--group", "32", "--scales",
                dir.resolve("scales").toString());
        assertThat(swapped.status()).as(swapped.err()).isZero();
        assertThat(swapped.out()).contains("held-out perplexity  " + after + " -> " + after);
        Run otherBits = finetune("peqa", "wrong", "--steps", "0", "--bits", "4", "--group", "32", "--scales",
                dir.resolve("scales").toString());
        assertThat(otherBits.status()).isEqualTo(1);
        assertThat(otherBits.err()).contains("the scales were trained on a 3-bit, group 32, asymmetric base");
    }

    @Test
    void wrongUsageIsNamed() {
        Run noMethod = run("finetune", "--model", model.toString(), "--data", data.toString());
        assertThat(noMethod.status()).isEqualTo(2);
        assertThat(noMethod.err()).contains("finetune needs --method lora, qlora or peqa");
        Run scales = finetune("lora", "x", "--scales", dir.toString());
        assertThat(scales.status()).isEqualTo(2);
        assertThat(scales.err()).contains("--scales loads a PEQA scale set; it needs --method peqa");
        Run target = finetune("lora", "x", "--targets", "q,qkv");
        assertThat(target.status()).isEqualTo(2);
        assertThat(target.err()).contains("unknown target 'qkv'");
        Run unknown = run("finetune", "--model", model.toString(), "--rank-r", "3");
        assertThat(unknown.status()).isEqualTo(2);
        assertThat(unknown.err()).contains("unknown option --rank-r");
        assertThat(run("--help").out()).contains("  finetune  ").contains("--method lora|qlora|peqa");
        assertThat(run("fine-tune").err()).contains("the commands are demo, train, eval, generate, export, ")
                .contains("finetune");
    }
}
