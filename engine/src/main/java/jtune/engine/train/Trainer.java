package jtune.engine.train;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.io.Json;
import jtune.engine.model.CausalLM;
import jtune.engine.nn.Session;
import jtune.engine.optim.Gradients;
import jtune.engine.optim.LrSchedule;
import jtune.engine.optim.Optimizer;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * The training loop. Each step zeroes the gradients, runs {@code accum} micro-batches through
 * {@link CausalLM#forwardBackward} with gradScale = 1/accum (so the gradients are those of the mean loss),
 * measures the global gradient norm and clips it when asked, and makes one optimizer update at the schedule's
 * learning rate. Around that it reports progress on stderr, appends one JSON line per step (and per
 * evaluation) to {@code metrics.jsonl} in the run folder (and to stdout when asked), evaluates every
 * {@code evalEvery} steps, and writes a checkpoint every {@code checkpointEvery} steps, at the end, and when
 * stopped ({@link #requestStop}, or Ctrl-C when {@code run(true)}). {@link #resume} loads a checkpoint; the
 * run then continues with exactly the numbers an uninterrupted run would have produced (same threads).
 */
public final class Trainer implements AutoCloseable {

    /**
     * What the loop does: accumulation steps per update, updates in all, clipping norm (0: none), evaluation
     * every evalEvery updates (0: never) over at most evalBatches batches (0: all), checkpoints every
     * checkpointEvery updates (0: only at the end).
     */
    public record Options(int accum, long steps, double clip, int evalEvery, int evalBatches, int checkpointEvery) {
        public Options {
            if (accum < 1 || steps < 1 || !(clip >= 0) || evalEvery < 0 || evalBatches < 0 || checkpointEvery < 0) {
                throw new IllegalArgumentException("trainer options out of range: " + this);
            }
        }
    }

    /**
     * Where the run reports: the run folder for metrics.jsonl and the checkpoint (null: no files), the progress
     * report, a stream for one JSON line per step (null: none), and metadata to store in checkpoints.
     */
    public record Output(Path runDir, Progress progress, PrintStream jsonLines, Map<String, String> checkpointMetadata) {
        public Output {
            checkpointMetadata = Map.copyOf(checkpointMetadata);
        }
    }

    /** What {@link #run} did: the step reached, the loss of each step it ran, whether it was stopped early. */
    public record Result(long step, float[] losses, boolean stopped, float lastEvalLoss) {
    }

    /** The metrics file's name inside a run folder. */
    public static final String METRICS = "metrics.jsonl";

    private final Session session;
    private final CausalLM model;
    private final Optimizer optimizer;
    private final LrSchedule schedule;
    private final BatchStream train;
    private final TokenBlocks eval;
    private final Options options;
    private final Output output;
    private final Tensor tokens;
    private final Tensor targets;
    private volatile boolean stopRequested;
    private long step;
    private double elapsedBefore;
    /** Set by {@link #resume} until {@link #run} has trimmed metrics.jsonl. */
    private boolean resumed;

    /** {@code eval} may be null or hold no block: evaluation is then skipped. */
    public Trainer(Session s, CausalLM model, Optimizer optimizer, LrSchedule schedule, BatchStream train,
                   TokenBlocks eval, Options options, Output output) {
        if (eval != null && eval.seq() != train.seq()) {
            throw new IllegalArgumentException("train and eval blocks must have the same sequence length");
        }
        if (train.seq() > model.config().maxSeq()) {
            throw new IllegalArgumentException("sequence length " + train.seq() + " exceeds the model's maximum of "
                    + model.config().maxSeq());
        }
        this.session = s;
        this.model = model;
        this.optimizer = optimizer;
        this.schedule = schedule;
        this.train = train;
        this.eval = eval != null && eval.blocks() > 0 ? eval : null;
        this.options = options;
        this.output = output;
        this.tokens = s.i32("train.tokens", Category.WORKSPACE, train.batch(), train.seq());
        this.targets = s.i32("train.targets", Category.WORKSPACE, train.batch(), train.seq());
    }

    /** Updates done so far (restored by {@link #resume}). */
    public long step() {
        return step;
    }

    /** Asks the loop to stop after the current step; it then writes a checkpoint and returns. */
    public void requestStop() {
        stopRequested = true;
    }

    /**
     * Loads {@code checkpoint} into the model, the optimizer, the data stream and this loop's step. When the resumed
     * run starts ({@link #run}), the run folder's metrics.jsonl loses its lines past the checkpoint's step (a run that
     * crashed after its last checkpoint had logged them), so each step is logged once; a resume refused before that
     * leaves the file as it was.
     */
    public void resume(Path checkpoint) throws IOException {
        Checkpoint.State st = Checkpoint.load(checkpoint, model, optimizer);
        try {
            train.restore(st.data());
        } catch (IllegalArgumentException e) {
            throw new IOException(checkpoint + " does not fit this run's data: " + e.getMessage(), e);
        }
        step = st.step();
        elapsedBefore = st.elapsedSeconds();
        resumed = true;
    }

    /** Drops metrics.jsonl's lines past the current step (see {@link #resume}). */
    private void trimMetrics() throws IOException {
        Path metrics = output.runDir() == null ? null : output.runDir().resolve(METRICS);
        if (metrics != null && Files.isRegularFile(metrics)) {
            // Byte for byte: a line that is not UTF-8 (a crash mid-write, a stray edit) is kept or dropped, not fatal.
            byte[] bytes = Files.readAllBytes(metrics);
            List<String> lines = new String(bytes, StandardCharsets.ISO_8859_1).lines().toList();
            List<String> kept = lines.stream().filter(l -> l.isBlank() || stepOf(l) <= step).toList();
            // A last line without its newline (a crash between the line and its end) would have the next step's
            // line written onto it, and the file would no longer be JSON lines.
            boolean unterminated = bytes.length > 0 && bytes[bytes.length - 1] != '\n';
            if (kept.size() < lines.size() || unterminated) {
                Path tmp = metrics.resolveSibling(METRICS + ".tmp");
                Files.write(tmp, kept, StandardCharsets.ISO_8859_1);
                Files.move(tmp, metrics, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
        }
    }

    /** The "step" of a metrics line; a line that is not one of ours counts as past every step. */
    private static long stepOf(String line) {
        try {
            return Json.parseObject(line).get("step") instanceof Number n ? n.longValue() : Long.MAX_VALUE;
        } catch (IllegalArgumentException e) {
            return Long.MAX_VALUE;
        }
    }

    /**
     * Trains from the current step to {@code options.steps()}. With {@code stopOnInterrupt}, Ctrl-C (or any JVM
     * shutdown) stops the loop after the current step and waits for the checkpoint to be written.
     */
    public Result run(boolean stopOnInterrupt) throws IOException {
        if (resumed) {
            trimMetrics();
            resumed = false;
        }
        try (ShutdownGuard _ = new ShutdownGuard(stopOnInterrupt, () -> stopRequested = true)) {
            return loop();
        }
    }

    private Result loop() throws IOException {
        long startStep = step;
        float[] losses = new float[(int) Math.max(0, options.steps() - step)];
        long tokensPerStep = (long) train.batch() * train.seq() * options.accum();
        long t0 = System.nanoTime();
        float lastEval = Float.NaN;
        boolean evalDoneAtStep = false;
        while (step < options.steps() && !stopRequested) {
            long ts = System.nanoTime();
            optimizer.zeroGrad();
            double lossSum = 0;
            for (int a = 0; a < options.accum(); a++) {
                train.next(tokens, targets);
                lossSum += model.forwardBackward(tokens, targets, 1f / options.accum());
            }
            float loss = (float) (lossSum / options.accum());
            step++;
            if (!Float.isFinite(loss)) {
                throw new IllegalStateException("the training loss became " + loss + " at step " + step
                        + "; lower the learning rate (--lr) or clip the gradients (--clip)");
            }
            double norm = options.clip() > 0 ? Gradients.clipGlobalNorm(session, optimizer.parameters(), options.clip())
                    : Gradients.globalNorm(session, optimizer.parameters());
            float lr = schedule.lr(step);
            optimizer.step(lr);
            losses[(int) (step - startStep - 1)] = loss;

            long now = System.nanoTime();
            double runSeconds = (now - t0) / 1e9;
            double tokPerS = tokensPerStep / Math.max(1e-9, (now - ts) / 1e9);
            long peak = session.ledger().peakTotal();
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("step", step);
            m.put("loss", loss);
            m.put("lr", lr);
            m.put("grad_norm", Double.isFinite(norm) ? norm : null);
            m.put("tokens_per_s", round(tokPerS));
            m.put("elapsed", round(elapsedBefore + runSeconds));
            m.put("peak_bytes", peak);
            metric(m);
            long done = step - startStep;
            output.progress().step(new Progress.Step(step, options.steps(), loss, lr, tokensPerStep * done / runSeconds,
                    runSeconds / done * (options.steps() - step), peak));

            evalDoneAtStep = false;
            if (options.evalEvery() > 0 && step % options.evalEvery() == 0 && eval != null) {
                lastEval = evaluateAndReport();
                evalDoneAtStep = true;
            }
            if (options.checkpointEvery() > 0 && step % options.checkpointEvery() == 0 && step < options.steps()) {
                save(elapsedBefore + runSeconds);
            }
        }
        boolean stopped = step < options.steps();
        if (!stopped && options.evalEvery() > 0 && eval != null && !evalDoneAtStep && step > startStep) {
            lastEval = evaluateAndReport();
        }
        Path file = save(elapsedBefore + (System.nanoTime() - t0) / 1e9);
        if (stopped) {
            output.progress().message("stopped at step " + step + " of " + options.steps()
                    + (file == null ? "" : "; checkpoint written to " + file + "; continue with --resume"));
        } else {
            output.progress().finish();
        }
        return new Result(step, Arrays.copyOf(losses, (int) (step - startStep)), stopped, lastEval);
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    private float evaluateAndReport() throws IOException {
        float loss = evaluate();
        if (!Float.isFinite(loss)) {
            throw new IllegalStateException("the evaluation loss became " + loss + " at step " + step
                    + "; lower the learning rate (--lr) or clip the gradients (--clip)");
        }
        double ppl = Math.exp(loss);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("step", step);
        m.put("eval_loss", loss);
        m.put("ppl", Double.isFinite(ppl) ? ppl : null);
        metric(m);
        output.progress().message(String.format(java.util.Locale.ROOT, "eval at step %d: loss %.4f, perplexity %.2f",
                step, loss, ppl));
        return loss;
    }

    /**
     * The mean cross-entropy over the evaluation blocks, taken in order in batches of the training batch size
     * (at most {@code evalBatches} of them; the last batch is padded with ignored rows). NaN without eval data.
     */
    public float evaluate() {
        if (eval == null) {
            return Float.NaN;
        }
        int b = train.batch(), t = train.seq();
        int batches = (eval.blocks() + b - 1) / b;
        if (options.evalBatches() > 0) {
            batches = Math.min(batches, options.evalBatches());
        }
        int[] in = new int[b * t];
        int[] tg = new int[b * t];
        double sum = 0;
        long count = 0;
        for (int i = 0; i < batches; i++) {
            int rows = Math.min(b, eval.blocks() - i * b);
            Arrays.fill(in, 0);
            Arrays.fill(tg, -1);
            for (int r = 0; r < rows; r++) {
                eval.copyBlock(i * b + r, in, tg, r * t);
            }
            BatchStream.write(in, tokens);
            BatchStream.write(tg, targets);
            sum += (double) model.loss(tokens, targets) * rows * t;
            count += (long) rows * t;
        }
        return (float) (sum / count);
    }

    /** Writes the checkpoint into the run folder (if there is one); returns its path or null. */
    private Path save(double elapsed) throws IOException {
        if (output.runDir() == null) {
            return null;
        }
        Path file = output.runDir().resolve(Checkpoint.FILE);
        Checkpoint.save(file, model, optimizer, new Checkpoint.State(step, train.position(), elapsed,
                output.checkpointMetadata()));
        return file;
    }

    private void metric(Map<String, Object> m) throws IOException {
        String line = Json.write(m);
        if (output.jsonLines() != null) {
            output.jsonLines().println(line);
            output.jsonLines().flush();
        }
        if (output.runDir() != null) {
            Files.createDirectories(output.runDir());
            Files.writeString(output.runDir().resolve(METRICS), line + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        }
    }

    @Override
    public void close() {
        tokens.close();
        targets.close();
    }
}
