package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import jtune.engine.io.Json;
import jtune.engine.model.LoopbackBackend;
import jtune.engine.train.Checkpoint;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code jtune train} end to end on the scalar backend with a very small model, so that it stays fast. */
class TrainCommandTest {
    private record Run(int status, String out, String err) {
    }

    @TempDir
    Path dir;
    private Path data;
    private Path config;

    @BeforeEach
    void files() throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; sb.length() < 12_000; i++) {
            sb.append("the cat sat on the mat number ").append(i % 17).append(". ");
        }
        data = Files.writeString(dir.resolve("data.txt"), sb);
        config = Files.writeString(dir.resolve("model.json"),
                "{\"dim\": 16, \"hiddenDim\": 32, \"layers\": 1, \"heads\": 2, \"vocab\": 256, \"maxSeq\": 32, "
                        + "\"tiedEmbeddings\": true}");
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private List<String> common(Path out, int steps) {
        return new ArrayList<>(List.of("train", "--backend", "scalar", "--config", config.toString(), "--data",
                data.toString(), "--seq", "16", "--batch", "2", "--steps", Integer.toString(steps), "--lr", "1e-2",
                "--schedule", "constant", "--warmup", "0", "--eval-every", "0", "--out", out.toString()));
    }

    /** The step lines of a run's metrics.jsonl: step, loss, lr and grad_norm (not the timings). */
    private static List<List<Object>> steps(Path runDir) throws IOException {
        List<List<Object>> out = new ArrayList<>();
        for (String line : Files.readAllLines(runDir.resolve("metrics.jsonl"))) {
            Map<String, Object> m = Json.parseObject(line);
            if (m.containsKey("loss")) {
                out.add(List.of(m.get("step"), m.get("loss"), m.get("lr"), m.get("grad_norm")));
            }
        }
        return out;
    }

    /** {@code jtune train} with the given arguments on the loopback stand-in device: every tensor in "device" memory. */
    private static int onDevice(List<String> argv) throws IOException {
        Set<String> valued = new HashSet<>(Args.GLOBAL_VALUED), flags = new HashSet<>(Args.GLOBAL_FLAGS);
        valued.addAll(TrainCommand.VALUED);
        flags.addAll(TrainCommand.FLAGS);
        PrintStream none = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        try (LoopbackBackend b = new LoopbackBackend()) {
            return TrainCommand.run(new Args(argv, valued, flags), b, none, none);
        }
    }

    @Test
    void trainsAndResumesWithItsTensorsOnADevice() throws IOException {
        // The stand-in computes with the scalar oracle on device-resident tensors, so its run, stopped at step 2 and
        // resumed from its checkpoint to step 4, logs what the scalar backend's uninterrupted run logs, bit for bit.
        Path host = dir.resolve("host"), device = dir.resolve("device");
        Run r = run(common(host, 4).toArray(String[]::new));
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(onDevice(common(device, 2))).isZero();
        assertThat(onDevice(List.of("train", "--data", data.toString(), "--steps", "4", "--out", device.toString(),
                "--resume"))).isZero();
        assertThat(steps(device)).hasSize(4).isEqualTo(steps(host));
    }

    @Test
    void trainsWritesJsonLinesAndTheRunFolder() throws IOException {
        Path out = dir.resolve("run");
        List<String> args = common(out, 6);
        args.addAll(List.of("--eval-every", "3", "--json", "--accum", "2", "--optimizer", "sgd"));
        Run r = run(args.toArray(String[]::new));
        assertThat(r.status()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(lines).hasSize(6 + 2).allSatisfy(l -> assertThat(Json.parseObject(l)).containsKey("step"));
        assertThat(Json.parseObject(lines.get(3))).containsKeys("eval_loss", "ppl");
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).isEqualTo(lines);
        assertThat(r.err()).contains("jtune: training", "0.01M parameters", "64 tokens each (batch 2 x seq 16 x accum 2)",
                "sgd", "trained steps 1..6", "trainable parameters");
        Map<String, String> meta = Checkpoint.metadata(out.resolve(Checkpoint.FILE));
        assertThat(meta).containsEntry("step", "6").containsEntry("optimizer", "sgd");
        assertThat(Json.parseObject(meta.get("options"))).containsEntry("--accum", "2").containsEntry("--steps", "6");

        for (String[] bad : new String[][]{{"--batch", "3"}, {"--optimizer", "adamw"}, {"--preset", "tiny"}}) {
            Run again = run("train", "--backend", "scalar", "--resume", "--out", out.toString(), bad[0], bad[1]);
            assertThat(again.status()).as(again.err()).isEqualTo(2);
            assertThat(again.err()).contains(bad[0]).doesNotContain("Exception");
        }
        assertThat(run("train", "--backend", "scalar", "--resume", "--out", out.toString(), "--steps", "6").status())
                .as("resuming a finished run does nothing and succeeds").isZero();
        assertThat(Files.readAllLines(out.resolve("metrics.jsonl"))).isEqualTo(lines);
    }

    @Test
    void badOptionsGetOneSentenceAndExitCodeTwo() throws IOException {
        Path taken = dir.resolve("taken");
        Files.createDirectories(taken);
        Files.writeString(taken.resolve("metrics.jsonl"), "");
        String d = data.toString();
        String[][] cases = {
                {"train"},
                {"train", "--data", d, "--lr", "fast"},
                {"train", "--data", d, "--lr", "-1"},
                {"train", "--data", d, "--preset", "huge"},
                {"train", "--data", d, "--optimizer", "adam"},
                {"train", "--data", d, "--schedule", "linear"},
                {"train", "--data", d, "--steps", "0"},
                {"train", "--data", d, "--seq", "100000"},
                {"train", "--data", d, "--min-lr-ratio", "2"},
                {"train", "--data", dir.resolve("missing.txt").toString()},
                {"train", "--data", d, "--config", dir.resolve("missing.json").toString()},
                {"train", "--data", d, "--preset", "tiny", "--config", config.toString()},
                {"train", "--data", d, "--frobnicate", "1"},
                {"train", "--data", d, "--out", taken.toString()},
                {"train", "--resume", "--out", dir.resolve("nothing").toString()},
                {"train", "--data", d, "extra"},
        };
        for (String[] c : cases) {
            Run r = run(c);
            assertThat(r.status()).as(String.join(" ", c) + "\n" + r.err()).isEqualTo(2);
            assertThat(r.err().lines().filter(l -> l.startsWith("jtune: ") && !l.startsWith("jtune: backend")).count())
                    .as(r.err()).isEqualTo(1);
            assertThat(r.err()).doesNotContain("Exception", "\tat ");
            assertThat(r.out()).isEmpty();
        }
        Files.writeString(config, "{\"dim\": 16, \"layers\": 1, \"heads\": 2, \"vocab\": 256, \"colour\": 3}");
        Run r = run("train", "--data", d, "--config", config.toString());
        assertThat(r.status()).isEqualTo(2);
        assertThat(r.err()).contains("unknown model config field \"colour\"");
    }

    /**
     * The real thing: a separate JVM trains, gets SIGINT (SIGTERM if this environment ignores SIGINT), writes its
     * checkpoint and exits; {@code --resume} finishes the run here; every step's loss, learning rate and gradient
     * norm equal those of a run that was never interrupted, bit for bit.
     */
    @Test
    void ctrlCSavesACheckpointAndResumeContinuesBitForBit() throws Exception {
        int total = 40;
        Path straight = dir.resolve("straight"), split = dir.resolve("split");
        Run a = run(common(straight, total).toArray(String[]::new));
        assertThat(a.status()).as(a.err()).isZero();

        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(), "-cp",
                System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(common(split, 1_000_000));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile())
                .start();
        Path metrics = split.resolve("metrics.jsonl");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 3) && System.nanoTime() < deadline) {
            assertThat(p.isAlive()).as("child running").isTrue();
            Thread.sleep(10);
        }
        new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start().waitFor();
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroy();
        }
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        String log = Files.readString(dir.resolve("child.log"));
        assertThat(p.exitValue()).as(log).isIn(130, 143);
        assertThat(log).contains("stopped at step", "continue with --resume");
        long stoppedAt = Long.parseLong(Checkpoint.metadata(split.resolve(Checkpoint.FILE)).get("step"));
        assertThat(stoppedAt).isBetween(3L, total - 1L);
        assertThat(steps(split)).hasSize((int) stoppedAt);

        Run b = run("train", "--backend", "scalar", "--resume", "--out", split.toString(), "--steps", Integer.toString(total));
        assertThat(b.status()).as(b.err()).isZero();
        assertThat(b.err()).contains("jtune: resuming", "steps " + (stoppedAt + 1) + " to " + total);
        assertThat(steps(split)).isEqualTo(steps(straight));

        Run below = run("train", "--backend", "scalar", "--resume", "--out", split.toString(), "--steps", "2");
        assertThat(below.status()).isEqualTo(2);
        assertThat(below.err()).contains("--steps 2 is below the step this run reached (" + total + "); give at least "
                + "that many");
        assertThat(steps(split)).isEqualTo(steps(straight));
    }
}
