package jtune.engine.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.LrSchedule;
import jtune.engine.optim.Optimizer;
import jtune.engine.optim.Sgd;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class TrainerTest {
    private static final int VOCAB = 48, SEQ = 16, BATCH = 4, ACCUM = 2, STEPS = 12;

    @TempDir
    Path dir;

    /** A learnable stream: mostly "next = 3·prev + 1 mod V" with some noise, from a fixed seed. */
    static int[] corpus(int n) {
        SplitMix64 r = new SplitMix64(99);
        int[] t = new int[n];
        for (int i = 1; i < n; i++) {
            t[i] = r.nextInt(10) < 7 ? (3 * t[i - 1] + 1) % VOCAB : r.nextInt(VOCAB);
        }
        return t;
    }

    /** Everything one training process holds. */
    final class Setup implements AutoCloseable {
        final MemoryPool pool = new MemoryPool(new MemoryLedger());
        final Session s = new Session(new ScalarBackend(), pool);
        final BigramLM model = new BigramLM(s, VOCAB, 64, 5);
        final Optimizer opt;
        final Trainer trainer;
        final ByteArrayOutputStream json = new ByteArrayOutputStream();
        final ByteArrayOutputStream err = new ByteArrayOutputStream();

        Setup(Path out, String optimizer, int accum, int evalEvery, int checkpointEvery) {
            TokenBlocks[] split = TokenBlocks.split(corpus(1200), SEQ, 0.1);
            opt = optimizer.equals("adamw") ? new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f)
                    : new Sgd(s, model.parameters(), 0.9f, 0.01f);
            trainer = new Trainer(s, model, opt, LrSchedule.cosine(optimizer.equals("adamw") ? 0.05 : 5.0, 3, STEPS, 0.1),
                    new BatchStream(split[0], BATCH, 1234), split[1],
                    new Trainer.Options(accum, STEPS, 1.0, evalEvery, 0, checkpointEvery),
                    new Trainer.Output(out, new Progress(new PrintStream(err, true, StandardCharsets.UTF_8), false),
                            new PrintStream(json, true, StandardCharsets.UTF_8), Map.of("options", "{}")));
        }

        float[] weights() {
            List<Float> all = new ArrayList<>();
            for (Parameter p : model.parameters()) {
                for (float f : p.value().toFloatArray()) {
                    all.add(f);
                }
            }
            float[] out = new float[all.size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = all.get(i);
            }
            return out;
        }

        @Override
        public void close() {
            trainer.close();
            opt.close();
            model.close();
            pool.close();
        }
    }

    private static float[] concat(float[] a, float[] b) {
        float[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Lines of metrics.jsonl with "loss", as maps, less the timing fields. */
    private static List<Map<String, Object>> lossLines(Path runDir) throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        for (String line : Files.readAllLines(runDir.resolve("metrics.jsonl"))) {
            Map<String, Object> m = Json.parseObject(line);
            m.remove("tokens_per_s");
            m.remove("elapsed");
            m.remove("peak_bytes");
            out.add(m);
        }
        return out;
    }

    @ParameterizedTest(name = "stop after {0} of " + STEPS + " steps, {1}")
    @org.junit.jupiter.params.provider.CsvSource({"5, adamw", "9, adamw", "7, sgd"})
    void interruptedAndResumedRunEqualsTheStraightRunBitForBit(int stopAt, String optimizer) throws IOException {
        Path straightDir = dir.resolve("straight"), splitDir = dir.resolve("split");
        Trainer.Result straight;
        float[] straightWeights;
        try (Setup a = new Setup(straightDir, optimizer, ACCUM, 4, 0)) {
            straight = a.trainer.run(false);
            straightWeights = a.weights();
        }
        assertThat(straight.losses()).hasSize(STEPS);
        assertThat(straight.stopped()).isFalse();
        assertThat(straight.losses()[STEPS - 1]).as("it learns").isLessThan(straight.losses()[0] - 0.3f);

        Trainer.Result first;
        try (Setup b = new Setup(splitDir, optimizer, ACCUM, 4, 0)) {
            int[] calls = {0};
            b.model.afterForward = () -> {
                if (++calls[0] == stopAt * ACCUM) {
                    b.trainer.requestStop();
                }
            };
            first = b.trainer.run(false);
            assertThat(b.err.toString(StandardCharsets.UTF_8)).contains("stopped at step " + stopAt + " of " + STEPS,
                    "continue with --resume");
        }
        assertThat(first.stopped()).isTrue();
        assertThat(first.step()).isEqualTo(stopAt);
        Trainer.Result second;
        float[] resumedWeights;
        try (Setup c = new Setup(splitDir, optimizer, ACCUM, 4, 0)) {
            c.trainer.resume(splitDir.resolve(Checkpoint.FILE));
            assertThat(c.trainer.step()).isEqualTo(stopAt);
            assertThat(c.opt.steps()).isEqualTo(stopAt);
            second = c.trainer.run(false);
            resumedWeights = c.weights();
        }
        assertThat(second.step()).isEqualTo(STEPS);
        assertThat(concat(first.losses(), second.losses())).containsExactly(straight.losses());
        assertThat(resumedWeights).containsExactly(straightWeights);
        assertThat(second.lastEvalLoss()).isEqualTo(straight.lastEvalLoss());
        assertThat(lossLines(splitDir)).isEqualTo(lossLines(straightDir));
    }

    /**
     * A straight run (evaluations every 4 steps) into straightDir, and the same run with checkpoints every 5 steps into
     * crashDir, crashed in the forward of step {@code crashStep}.
     */
    private void straightAndCrashedRuns(Path straightDir, Path crashDir, int crashStep) throws IOException {
        try (Setup a = new Setup(straightDir, "adamw", 1, 4, 0)) {
            a.trainer.run(false);
        }
        try (Setup b = new Setup(crashDir, "adamw", 1, 4, 5)) {
            int[] calls = {0};
            b.model.afterForward = () -> {
                if (++calls[0] == crashStep) {
                    throw new IllegalStateException("crash in step " + crashStep);
                }
            };
            assertThatThrownBy(() -> b.trainer.run(false)).hasMessage("crash in step " + crashStep);
        }
    }

    @Test
    void aResumeAfterACrashLogsEachStepOnce() throws IOException {
        Path straightDir = dir.resolve("straight"), crashDir = dir.resolve("crash");
        straightAndCrashedRuns(straightDir, crashDir, 9);
        // Steps 1..8 and the evaluations at 4 and 8 were logged; the checkpoint is that of step 5.
        assertThat(lossLines(crashDir)).hasSize(10);
        List<Map<String, Object>> crashed = lossLines(crashDir);
        try (Setup c = new Setup(crashDir, "adamw", 1, 4, 5)) {
            c.trainer.resume(crashDir.resolve(Checkpoint.FILE));
            assertThat(c.trainer.step()).isEqualTo(5);
            // A resume that a command refuses after loading the checkpoint has not touched the log yet.
            assertThat(lossLines(crashDir)).isEqualTo(crashed);
            c.trainer.run(false);
        }
        assertThat(lossLines(crashDir)).isEqualTo(lossLines(straightDir));
    }

    @Test
    void aResumeAfterACrashThatCutTheLastNewlineStillLogsJsonLines() throws IOException {
        Path straightDir = dir.resolve("straight"), crashDir = dir.resolve("crash");
        straightAndCrashedRuns(straightDir, crashDir, 6);
        // The log ends with step 5's line, the checkpoint's step; the crash took that line's newline with it.
        Path metrics = crashDir.resolve("metrics.jsonl");
        byte[] bytes = Files.readAllBytes(metrics);
        assertThat(bytes[bytes.length - 1]).isEqualTo((byte) '\n');
        Files.write(metrics, Arrays.copyOf(bytes, bytes.length - 1));
        try (Setup c = new Setup(crashDir, "adamw", 1, 4, 5)) {
            c.trainer.resume(crashDir.resolve(Checkpoint.FILE));
            c.trainer.run(false);
        }
        assertThat(lossLines(crashDir)).isEqualTo(lossLines(straightDir));
    }

    @Test
    void metricsGoToTheRunFolderAndStdoutAsJsonLines() throws IOException {
        try (Setup a = new Setup(dir, "adamw", 1, 5, 4)) {
            Trainer.Result r = a.trainer.run(false);
            List<String> lines = Files.readAllLines(dir.resolve("metrics.jsonl"));
            assertThat(a.json.toString(StandardCharsets.UTF_8).lines().toList()).isEqualTo(lines);
            // 12 step lines, and eval lines after steps 5, 10 and at the end (12)
            assertThat(lines).hasSize(STEPS + 3);
            Map<String, Object> step1 = Json.parseObject(lines.getFirst());
            assertThat(step1.keySet()).containsExactly("step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed",
                    "peak_bytes");
            assertThat(step1.get("step")).isEqualTo(1L);
            assertThat(((Number) step1.get("loss")).floatValue()).isEqualTo(r.losses()[0]);
            assertThat(((Number) step1.get("lr")).doubleValue()).isCloseTo(0.05 / 3, within(1e-8));
            assertThat((Long) step1.get("peak_bytes")).isEqualTo(a.pool.ledger().peakTotal());
            Map<String, Object> eval = Json.parseObject(lines.get(5));
            assertThat(eval.keySet()).containsExactly("step", "eval_loss", "ppl");
            assertThat(eval.get("step")).isEqualTo(5L);
            double evalLoss = ((Number) Json.parseObject(lines.getLast()).get("eval_loss")).doubleValue();
            assertThat((double) r.lastEvalLoss()).isEqualTo((double) (float) evalLoss);
            assertThat(((Number) Json.parseObject(lines.getLast()).get("ppl")).doubleValue())
                    .isCloseTo(Math.exp(evalLoss), within(1e-6 * Math.exp(evalLoss)));
            String err = a.err.toString(StandardCharsets.UTF_8);
            assertThat(err).contains("step 1/12", "step 12/12", "eval at step 5: loss").doesNotContain("\r");
            assertThat(dir.resolve(Checkpoint.FILE)).exists();
        }
    }

    @Test
    void evaluationIsTheMeanLossOverEveryEvalBlock() {
        try (Setup a = new Setup(null, "adamw", 1, 0, 0)) {
            TokenBlocks eval = TokenBlocks.split(corpus(1200), SEQ, 0.1)[1];
            assertThat(eval.blocks()).isEqualTo(7);
            double sum = 0;
            int[] in = new int[SEQ], tg = new int[SEQ];
            try (Tensor tok = a.s.i32("t", Category.WORKSPACE, 1, SEQ); Tensor tgt = a.s.i32("g", Category.WORKSPACE, 1, SEQ)) {
                for (int b = 0; b < eval.blocks(); b++) {
                    eval.copyBlock(b, in, tg, 0);
                    BatchStream.write(in, tok);
                    BatchStream.write(tg, tgt);
                    sum += a.model.loss(tok, tgt);
                }
            }
            assertThat((double) a.trainer.evaluate()).isCloseTo(sum / eval.blocks(), within(1e-6));
        }
    }

    @Test
    void accumulationAveragesTheMicroBatchGradients() throws IOException {
        float[] expected;
        try (Setup ref = new Setup(null, "sgd", 1, 0, 0)) {
            BatchStream stream = new BatchStream(TokenBlocks.split(corpus(1200), SEQ, 0.1)[0], BATCH, 1234);
            Parameter table = ref.model.parameters().getFirst();
            double[] mean = new double[Math.toIntExact(table.value().size())];
            try (Tensor tok = ref.s.i32("t", Category.WORKSPACE, BATCH, SEQ);
                 Tensor tgt = ref.s.i32("g", Category.WORKSPACE, BATCH, SEQ)) {
                for (int micro = 0; micro < 2; micro++) {
                    ref.s.backend().fill(table.grad(ref.s), 0f);
                    stream.next(tok, tgt);
                    ref.model.forwardBackward(tok, tgt, 1f);
                    float[] g = table.grad(ref.s).toFloatArray();
                    for (int i = 0; i < g.length; i++) {
                        mean[i] += g[i] / 2.0;
                    }
                }
            }
            expected = new float[mean.length];
            for (int i = 0; i < mean.length; i++) {
                expected[i] = (float) mean[i];
            }
        }
        try (Setup a = new Setup(null, "sgd", 2, 0, 0)) {
            Parameter table = a.model.parameters().getFirst();
            int[] calls = {0};
            float[][] seen = new float[1][];
            a.model.afterForward = () -> {
                if (++calls[0] == 2) {
                    seen[0] = table.grad(a.s).toFloatArray();
                    a.trainer.requestStop();
                }
            };
            a.trainer.run(false);
            assertThat(seen[0]).hasSize(expected.length);
            for (int i = 0; i < expected.length; i++) {
                assertThat(seen[0][i]).isCloseTo(expected[i], within(1e-7f));
            }
        }
    }

    @Test
    void checkpointsRefuseTheWrongModelOrOptimizer() throws IOException {
        try (Setup a = new Setup(dir, "adamw", 1, 0, 0)) {
            a.model.afterForward = a.trainer::requestStop;
            a.trainer.run(false);
        }
        Path ckpt = dir.resolve(Checkpoint.FILE);
        Map<String, String> meta = Checkpoint.metadata(ckpt);
        assertThat(meta).containsEntry("step", "1").containsEntry("optimizer", "adamw").containsEntry("options", "{}")
                .containsKeys("data_rng_state", "data_epoch", "data_index", "config", "elapsed_s");
        assertThat(Checkpoint.config(meta, ckpt).vocab()).isEqualTo(VOCAB);
        try (Setup b = new Setup(dir, "sgd", 1, 0, 0)) {
            assertThatThrownBy(() -> b.trainer.resume(ckpt)).hasMessageContaining("optimizer 'adamw' but this run uses 'sgd'");
        }
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(new ScalarBackend(), pool);
            BigramLM other = new BigramLM(s, VOCAB + 1, 64, 5);
            AdamW opt = new AdamW(s, other.parameters(), 0.9f, 0.95f, 1e-8f, 0f);
            assertThatThrownBy(() -> Checkpoint.load(ckpt, other, opt)).hasMessageContaining("was written for the model");
            Path plain = dir.resolve("plain.safetensors");
            new SafeTensorsWriter().add("x", s.f32("x", Category.WORKSPACE, 2)).write(plain);
            assertThatThrownBy(() -> Checkpoint.load(plain, other, opt)).isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageContaining("is not a jtune checkpoint");
        }
    }

    @Test
    void aDamagedCheckpointIsRefusedAndOneWithoutAChecksumStillLoads() throws IOException {
        try (Setup a = new Setup(dir, "adamw", 1, 0, 0)) {
            a.model.afterForward = a.trainer::requestStop;
            a.trainer.run(false);
        }
        Path ckpt = dir.resolve(Checkpoint.FILE);
        assertThat(Checkpoint.metadata(ckpt)).containsKey("tensors_crc32c");
        byte[] bytes = Files.readAllBytes(ckpt);
        bytes[bytes.length - 3] ^= 0x10; // in the last tensor's data
        Path flipped = Files.write(dir.resolve("flipped.safetensors"), bytes);
        Path old = dir.resolve("old.safetensors");
        try (SafeTensorsReader r = SafeTensorsReader.open(ckpt); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            SafeTensorsWriter w = new SafeTensorsWriter();
            r.metadata().forEach((k, v) -> {
                if (!k.equals("tensors_crc32c")) {
                    w.metadata(k, v);
                }
            });
            for (SafeTensors.Entry e : r.entries()) {
                w.add(e.name(), r.tensor(e.name(), pool, Category.WORKSPACE));
            }
            w.write(old);
        }
        try (Setup b = new Setup(dir, "adamw", 1, 0, 0)) {
            assertThatThrownBy(() -> b.trainer.resume(flipped)).isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageContaining("flipped.safetensors: its tensors do not match the CRC-32C recorded when it "
                            + "was written");
        }
        try (Setup c = new Setup(dir, "adamw", 1, 0, 0)) {
            c.trainer.resume(old);
            assertThat(c.trainer.step()).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void progressIsABarOnATerminalAndPlainLinesElsewhere(boolean terminal) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Progress p = new Progress(new PrintStream(buf, true, StandardCharsets.UTF_8), terminal);
        for (int i = 1; i <= 100; i++) {
            p.step(new Progress.Step(i, 100, 2.5f, 1e-3f, 1234, 100 - i, 3L << 20));
        }
        p.message("eval");
        String out = buf.toString(StandardCharsets.UTF_8);
        if (terminal) {
            assertThat(out).contains("\r[########################] step 100/100  loss 2.5000  lr 1.00e-03  1234 tok/s"
                    + "  eta 0s  peak 3.00 MiB");
            assertThat(out.chars().filter(c -> c == '\n').count()).isEqualTo(2);
        } else {
            assertThat(out).doesNotContain("\r").startsWith("step 1/100  loss 2.5000");
            assertThat(out.lines().count()).isEqualTo(21 + 1);
        }
        assertThat(Progress.duration(3725)).isEqualTo("1h02m");
        assertThat(Progress.duration(187)).isEqualTo("3m07s");
    }

    @Test
    void batchesShiftTargetsByOneAndCoverEachBlockOncePerEpoch() {
        int[] tokens = new int[41];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = i;
        }
        TokenBlocks blocks = new TokenBlocks(tokens, 4);
        assertThat(blocks.blocks()).isEqualTo(10);
        BatchStream s = new BatchStream(blocks, 3, 42);
        assertThat(s.batchesPerEpoch()).isEqualTo(3);
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Tensor tok = pool.allocate("t", DType.I32, Category.WORKSPACE, 3, 4);
            Tensor tgt = pool.allocate("g", DType.I32, Category.WORKSPACE, 3, 4);
            java.util.Set<Integer> starts = new java.util.HashSet<>();
            List<float[]> epoch1 = new ArrayList<>();
            BatchStream.Position saved = null;
            for (int b = 0; b < 6; b++) {
                if (b == 4) {
                    saved = s.position();
                }
                s.next(tok, tgt);
                float[] t = tok.toFloatArray(), g = tgt.toFloatArray();
                for (int i = 0; i < t.length; i++) {
                    assertThat(g[i]).isEqualTo(t[i] + 1);
                }
                for (int r = 0; r < 3; r++) {
                    assertThat(t[r * 4] % 4).isZero();
                    if (b < 3) {
                        starts.add((int) t[r * 4]);
                    }
                }
                if (b >= 4) {
                    epoch1.add(t);
                }
            }
            assertThat(starts).hasSize(9);
            assertThat(saved.epoch()).isEqualTo(1);
            BatchStream again = new BatchStream(blocks, 3, 42);
            again.restore(saved);
            for (float[] expected : epoch1) {
                again.next(tok, tgt);
                assertThat(tok.toFloatArray()).containsExactly(expected);
            }
        }
        assertThatThrownBy(() -> new BatchStream(new TokenBlocks(new int[10], 4), 3, 1))
                .hasMessageContaining("fewer than one batch of 3");
    }
}
