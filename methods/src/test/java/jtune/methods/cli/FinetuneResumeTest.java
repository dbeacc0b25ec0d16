package jtune.methods.cli;

import static jtune.methods.cli.Run.jtune;
import static jtune.methods.cli.Run.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import jtune.engine.cli.Main;
import jtune.engine.io.Json;
import jtune.engine.train.Checkpoint;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoints of {@code jtune finetune} (stories260K, scalar backend): a run stopped by SIGINT writes its checkpoint
 * and exits, and {@code --resume} finishes it with every step's loss, learning rate and gradient norm, the held-out
 * perplexity and the adapter's bytes equal to those of a run never interrupted (LoRA with dropout, whose masks are
 * keyed by the training pass); a finished PEQA run continued with more {@code --steps} equals a longer run; the
 * checkpoint holds only the trained part, and loading it as a model is refused by name; wrong resumes are refused by
 * name.
 */
class FinetuneResumeTest {

    @TempDir
    Path tmp;
    private Path text;

    @BeforeEach
    void needsData() throws IOException {
        Run.assumeStories();
        text = Run.textHead(tmp.resolve("text.txt"), 30_000);
    }

    /** finetune's options for a run into {@code out}, {@code steps} updates. */
    private List<String> finetune(String method, Path out, int steps) {
        return new ArrayList<>(List.of("finetune", "--model", STORIES.toString(), "--data", text.toString(), "--method",
                method, "--seq", "64", "--batch", "2", "--lr", "1e-2", "--warmup", "2", "--checkpoint-every", "2",
                "--steps", Integer.toString(steps), "--out", out.toString()));
    }

    private static String[] with(List<String> argv, String... more) {
        argv.addAll(List.of(more));
        return argv.toArray(String[]::new);
    }

    /**
     * step, loss, lr and grad_norm of each step in a run folder's metrics.jsonl, and step and eval_loss of each
     * evaluation.
     */
    private static List<List<Object>> steps(Path dir) throws IOException {
        List<List<Object>> steps = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("metrics.jsonl"))) {
            Map<String, Object> m = Json.parseObject(line);
            steps.add(m.containsKey("eval_loss") ? List.of(m.get("step"), m.get("eval_loss"))
                    : List.of(m.get("step"), m.get("loss"), m.get("lr"), m.get("grad_norm")));
        }
        return steps;
    }

    private static String perplexityLine(Run r) {
        return r.out().lines().filter(l -> l.startsWith("held-out perplexity")).findFirst().orElseThrow();
    }

    @Test
    void ctrlCSavesACheckpointAndResumeContinuesBitForBit() throws Exception {
        int total = 12;
        Path straight = tmp.resolve("straight"), split = tmp.resolve("split");
        Run a = jtune(finetune("lora", straight, total).toArray(String[]::new));
        assertThat(a.status()).as(a.err()).isZero();

        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(), "-cp",
                System.getProperty("java.class.path"), Main.class.getName(), "--backend", "scalar"));
        cmd.addAll(finetune("lora", split, 1_000_000));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("child.log").toFile())
                .start();
        Path metrics = split.resolve("metrics.jsonl");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!(Files.exists(metrics) && Files.readAllLines(metrics).size() >= 3) && System.nanoTime() < deadline) {
            assertThat(p.isAlive()).as("child running: " + Files.readString(tmp.resolve("child.log"))).isTrue();
            Thread.sleep(10);
        }
        new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start().waitFor();
        if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroy();
        }
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        String log = Files.readString(tmp.resolve("child.log"));
        assertThat(p.exitValue()).as(log).isIn(130, 143);
        assertThat(log).contains("stopped at step", "continue with --resume");
        assertThat(split.resolve("adapter_model.safetensors")).doesNotExist();
        long stoppedAt = Long.parseLong(Checkpoint.metadata(split.resolve(Checkpoint.FILE)).get("step"));
        assertThat(stoppedAt).isBetween(3L, total - 1L);
        assertThat(steps(split)).hasSize((int) stoppedAt);

        Run b = jtune("finetune", "--resume", "--out", split.toString(), "--steps", Integer.toString(total));
        assertThat(b.status()).as(b.err()).isZero();
        assertThat(b.err()).contains("jtune: resuming from step " + stoppedAt + " of " + total).doesNotContain("note:");
        assertThat(b.out()).contains("trained steps " + (stoppedAt + 1) + ".." + total + ": loss ");
        assertThat(steps(split)).isEqualTo(steps(straight));
        assertThat(perplexityLine(b)).isEqualTo(perplexityLine(a));
        assertThat(Files.readAllBytes(split.resolve("adapter_model.safetensors")))
                .isEqualTo(Files.readAllBytes(straight.resolve("adapter_model.safetensors")));
    }

    @Test
    void aFinishedPeqaRunContinuedWithMoreStepsEqualsALongerRun() throws IOException {
        Path longer = tmp.resolve("longer"), shorter = tmp.resolve("shorter");
        Run a = jtune(with(finetune("peqa", longer, 6), "--eval-every", "2", "--eval-batches", "2"));
        assertThat(a.status()).as(a.err()).isZero();
        Run first = jtune(with(finetune("peqa", shorter, 3), "--eval-every", "2", "--eval-batches", "2"));
        assertThat(first.status()).as(first.err()).isZero();
        assertThat(first.out()).contains("trained steps 1..3").contains(Checkpoint.FILE);

        Map<String, Object> header = Json.parseObject(new String(headerBytes(shorter.resolve(Checkpoint.FILE))));
        assertThat(header.keySet()).allMatch(k -> k.equals("__metadata__") || k.contains("scales"),
                "only PEQA's scales and their AdamW moments are checkpointed: " + header.keySet())
                .anyMatch(k -> k.startsWith("optimizer.") && k.contains("scales"))
                .anyMatch(k -> !k.startsWith("optimizer.") && k.contains("scales"));
        assertThat(Integer.parseInt(Checkpoint.metadata(shorter.resolve(Checkpoint.FILE)).get(Checkpoint.FROZEN)))
                .isPositive();

        Run asModel = jtune("eval", "--model", shorter.toString(), "--data", text.toString());
        assertThat(asModel.status()).isEqualTo(1);
        assertThat(asModel.err()).contains("holds only the trained part of a model, not its frozen weights")
                .contains("load the model it was trained over (" + STORIES.toAbsolutePath().normalize() + ")");

        // The text may move: its CRC-32, not its path, says it is the same.
        Path moved = Files.move(text, tmp.resolve("moved.txt"));
        Run b = jtune("finetune", "--resume", "--out", shorter.toString(), "--steps", "6", "--data", moved.toString());
        assertThat(b.status()).as(b.err()).isZero();
        assertThat(b.out()).contains("trained steps 4..6");
        // The first part also evaluated at its own end, step 3; the rest matches the longer run, evaluations included.
        assertThat(steps(shorter)).filteredOn(l -> !(l.size() == 2 && ((Number) l.get(0)).longValue() == 3))
                .isEqualTo(steps(longer));
        assertThat(steps(longer)).filteredOn(l -> l.size() == 2).hasSize(3);
        assertThat(perplexityLine(b)).isEqualTo(perplexityLine(a));
        assertThat(Files.readAllBytes(shorter.resolve("peqa_scales.safetensors")))
                .isEqualTo(Files.readAllBytes(longer.resolve("peqa_scales.safetensors")));

        // As if written with 7 threads: the same bytes but one digit of the header's metadata.
        Path ckpt = shorter.resolve(Checkpoint.FILE);
        String bytes = new String(Files.readAllBytes(ckpt), StandardCharsets.ISO_8859_1);
        assertThat(bytes).contains("\"threads\":\"1\"");
        Files.write(ckpt, bytes.replace("\"threads\":\"1\"", "\"threads\":\"7\"").getBytes(StandardCharsets.ISO_8859_1));
        Run elsewhere = jtune("finetune", "--resume", "--out", shorter.toString(), "--steps", "7");
        assertThat(elsewhere.status()).as(elsewhere.err()).isZero();
        assertThat(elsewhere.err()).contains("jtune: note: the checkpoint was written with threads 7 and this run uses "
                + "1; the losses may differ from an uninterrupted run in the last bits");
        assertThat(elsewhere.out()).contains("trained steps 7..7");
    }

    /** The JSON header of a safetensors file. */
    private static byte[] headerBytes(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        long n = 0;
        for (int i = 7; i >= 0; i--) {
            n = (n << 8) | (all[i] & 0xff);
        }
        return java.util.Arrays.copyOfRange(all, 8, 8 + (int) n);
    }

    @Test
    void wrongResumesAreRefusedByName() throws IOException {
        Path run = tmp.resolve("run");
        Run none = jtune("finetune", "--resume", "--out", run.toString());
        assertThat(none.status()).isEqualTo(2);
        assertThat(none.err()).contains("--resume: there is no checkpoint at " + run.resolve(Checkpoint.FILE));

        Run first = jtune(finetune("lora", run, 2).toArray(String[]::new));
        assertThat(first.status()).as(first.err()).isZero();
        Run again = jtune(finetune("lora", run, 2).toArray(String[]::new));
        assertThat(again.status()).isEqualTo(2);
        assertThat(again.err()).contains("already holds a run; continue it with --resume or name a new one with --out");

        Run seq = jtune("finetune", "--resume", "--out", run.toString(), "--seq", "32");
        assertThat(seq.status()).isEqualTo(2);
        assertThat(seq.err()).contains("--seq cannot change when a run is resumed (it was 64, now 32)");
        Run below = jtune("finetune", "--resume", "--out", run.toString(), "--steps", "1");
        assertThat(below.status()).isNotZero();
        assertThat(below.err()).contains("--steps 1 is below the step this run reached (2); give at least that many");
        Run asTrain = jtune("train", "--resume", "--out", run.toString());
        assertThat(asTrain.status()).isEqualTo(2);
        assertThat(asTrain.err()).contains("was written by jtune finetune; continue it with jtune finetune --out " + run
                + " --resume");
        Run zero = jtune("finetune", "--resume", "--out", run.toString(), "--steps", "0");
        assertThat(zero.status()).isEqualTo(2);
        assertThat(zero.err()).contains("--resume continues training: give --steps, the run's total updates, above 0");
        Run rank = jtune("finetune", "--resume", "--out", run.toString(), "--rank", "4");
        assertThat(rank.status()).isEqualTo(2);
        assertThat(rank.err()).contains("--rank, --alpha, --dropout, --rslora or --targets cannot change");

        Files.writeString(text, "other text\n", java.nio.file.StandardOpenOption.APPEND);
        Run changed = jtune("finetune", "--resume", "--out", run.toString(), "--steps", "4");
        assertThat(changed.status()).isNotZero();
        assertThat(changed.err()).contains("--data differs from the run in " + run).contains("CRC-32");
        assertThat(steps(run)).hasSize(2);

        Path ckpt = run.resolve(Checkpoint.FILE);
        String bytes = new String(Files.readAllBytes(ckpt), StandardCharsets.ISO_8859_1);
        assertThat(bytes).contains("\"options\":\"{");
        Files.write(ckpt, bytes.replace("\"options\":\"{", "\"options\":\"[").getBytes(StandardCharsets.ISO_8859_1));
        Run garbled = jtune("finetune", "--resume", "--out", run.toString(), "--steps", "4");
        assertThat(garbled.status()).isEqualTo(2);
        assertThat(garbled.err()).contains(ckpt + ": metadata \"options\" must be a JSON object")
                .doesNotContain("Exception");
    }
}
