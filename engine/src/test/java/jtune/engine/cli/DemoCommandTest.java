package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.model.LlamaConfig;
import jtune.engine.train.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoCommandTest {
    /** The demo's pipeline at toy size: 2 layers of dim 16, 16 KB of stories, batches of 4 × 16 tokens. */
    private static final DemoCommand.Settings TINY = new DemoCommand.Settings(
            LlamaConfig.llama(16, 32, 2, 2, 2, 256, 16, true), 4, 16_000, 3e-3, 2, 12);

    @Test
    void aShortRunFillsTheRunFolder(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("run");
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = DemoCommand.run(TINY, 5, 0, 3, dir, new ScalarBackend(), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));

        assertThat(status).isZero();
        String text = out.toString(StandardCharsets.UTF_8);
        assertThat(text).contains("synthetic stories", "sampled before training", "sampled after 5 steps",
                "memory ledger", "trainable parameters", "run folder  " + dir.toAbsolutePath());
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("step 5/5");

        List<String> lines = Files.readAllLines(dir.resolve("metrics.jsonl"));
        List<Map<String, Object>> metrics = lines.stream().map(Json::parseObject).toList();
        assertThat(metrics.stream().filter(m -> m.containsKey("loss")).map(m -> ((Number) m.get("step")).intValue()))
                .containsExactly(1, 2, 3, 4, 5);
        assertThat(metrics.getFirst()).containsEntry("step", 0L).containsKey("eval_loss");
        double first = ((Number) metrics.getFirst().get("eval_loss")).doubleValue();
        assertThat(first).as("an untrained byte model is close to a uniform guess").isCloseTo(Math.log(256), within(0.2));

        BufferedImage png = ImageIO.read(dir.resolve("loss.png").toFile());
        assertThat(png.getWidth()).isEqualTo(800);
        assertThat(png.getHeight()).isEqualTo(500);
        assertThat(Checkpoint.metadata(dir.resolve(Checkpoint.FILE))).containsEntry("step", "5").containsEntry("command", "demo");

        assertThatThrownBy(() -> DemoCommand.run(TINY, 1, 0, 3, dir, new ScalarBackend(), System.out, System.err))
                .hasMessageContaining("already holds a run");
    }

    @Test
    void theSameSeedTrainsTheSameLosses(@TempDir Path tmp) throws Exception {
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        DemoCommand.run(TINY, 2, 0, 5, tmp.resolve("a"), new ScalarBackend(), quiet, quiet);
        DemoCommand.run(TINY, 2, 0, 5, tmp.resolve("b"), new ScalarBackend(), quiet, quiet);
        assertThat(losses(tmp.resolve("a"))).isEqualTo(losses(tmp.resolve("b"))).hasSize(2);
    }

    @Test
    void withoutAStepCountTheStepsAreChosenToFitTheBudget(@TempDir Path tmp) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        DemoCommand.run(TINY, 0, 1, 5, tmp.resolve("run"), new ScalarBackend(),
                new PrintStream(out, true, StandardCharsets.UTF_8), quiet);
        Matcher m = Pattern.compile("training   (\\d+) steps .*timed after a warm-up; 1s budget")
                .matcher(out.toString(StandardCharsets.UTF_8));
        assertThat(m.find()).as(out.toString(StandardCharsets.UTF_8)).isTrue();
        assertThat(Integer.parseInt(m.group(1))).isGreaterThanOrEqualTo(10);
        assertThat(losses(tmp.resolve("run"))).hasSize(Integer.parseInt(m.group(1)));
    }

    @Test
    void badOptionsAreWrongUsage() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        assertThat(Main.run(List.of("demo", "--backend", "scalar", "--steps", "0"), System.out, e)).isEqualTo(2);
        assertThat(Main.run(List.of("demo", "--backend", "scalar", "--epochs", "3"), System.out, e)).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("--steps must be at least 1", "unknown option --epochs");
    }

    private static List<Object> losses(Path dir) throws Exception {
        return Files.readAllLines(dir.resolve("metrics.jsonl")).stream().map(Json::parseObject)
                .filter(m -> m.containsKey("loss")).map(m -> m.get("loss")).toList();
    }
}
