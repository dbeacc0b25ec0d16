package jtune.engine.cli;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.StringJoiner;
import jtune.engine.backend.Backend;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/**
 * {@code jtune bench train}: times full training steps of a LLaMA (zero the gradients, forward, backward, AdamW)
 * on one batch of random tokens, as bench/train-vs-torch's PyTorch half does: Hugging Face init, AdamW lr 1e-3,
 * betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on the 2-D weights. Reports the median tokens/s over the measured
 * steps and the memory ledger's peak by category. With {@code --profile} the measured steps' backend calls are
 * timed one by one (see {@link ProfilingBackend}) and their table goes to the progress stream at the end.
 */
final class TrainBench {
    static final Set<String> OPTIONS = Set.of("--preset", "--seq", "--batch", "--warmup", "--steps", "--seed");
    static final Set<String> FLAGS = Set.of("--json", "--checkpointing", "--profile");

    private TrainBench() {
    }

    /** {@code backendName} as "cpu-simd", {@code backend} as the backend describes itself (width, threads). */
    record Result(String backendName, String backend, int threads, String preset, int seq, int batch, int warmup,
                  int steps, long parameters, boolean checkpointing, double[] tokensPerS, float[] losses,
                  MemoryLedger ledger, MemoryLedger backendScratch) {
        double median() {
            return TrainBench.median(tokensPerS);
        }

        String text() {
            return String.format(Locale.ROOT, "%s: %s seq %d batch %d%s: %.1f tokens/s median of %d steps, "
                            + "ledger peak %s", backend, preset, seq, batch, checkpointing ? " checkpointed" : "",
                    median(), steps, MemoryLedger.human(ledger.peakTotal()));
        }

        String json() {
            StringJoiner rates = new StringJoiner(",", "[", "]");
            Arrays.stream(tokensPerS).forEach(r -> rates.add(String.format(Locale.ROOT, "%.2f", r)));
            StringJoiner loss = new StringJoiner(",", "[", "]");
            for (float l : losses) {
                loss.add(String.format(Locale.ROOT, "%.5f", l));
            }
            StringJoiner peaks = new StringJoiner(",", "{", "}");
            for (Category c : Category.values()) {
                peaks.add("\"" + c.label() + "\":" + ledger.peak(c));
            }
            return String.format(Locale.ROOT, "{\"engine\":\"jtune %s %s\",\"backend\":\"%s\",\"preset\":\"%s\","
                            + "\"seq\":%d,\"batch\":%d,\"threads\":%d,\"warmup\":%d,\"steps\":%d,\"checkpointing\":%b,"
                            + "\"parameters\":%d,\"tokens_per_s\":%.2f,\"tokens_per_s_each\":%s,\"losses\":%s,"
                            + "\"ledger\":%s,\"ledger_peak_bytes\":%d%s}", Main.VERSION, backendName, backend, preset,
                    seq, batch, threads, warmup, steps, checkpointing, parameters, median(), rates, loss, peaks,
                    ledger.peakTotal(), backendScratch == null ? ""
                            : ",\"backend_scratch_peak_bytes\":" + backendScratch.peakTotal());
        }
    }

    static LlamaConfig preset(String name) {
        return switch (name) {
            case "llama60m" -> LlamaConfig.llama60m();
            default -> throw new Args.UsageException("--preset must be llama60m, got '" + name + "'");
        };
    }

    /**
     * Runs {@code warmup + steps} steps; each step's loss and rate go to {@code progress} as they come. With
     * {@code profile} the steps run on a {@link ProfilingBackend} over {@code backend}, recording the measured steps
     * only, and its table goes to {@code progress} at the end.
     */
    static Result run(Backend backend, String presetName, int seq, int batch, int warmup, int steps, long seed,
                      boolean checkpointing, boolean profile, PrintStream progress) {
        LlamaConfig c = preset(presetName);
        if (seq > c.maxSeq()) {
            throw new Args.UsageException("--seq " + seq + " exceeds the preset's maximum of " + c.maxSeq());
        }
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger, backend.memory())) {
            ProfilingBackend profiler = profile ? new ProfilingBackend(backend) : null;
            Session s = new Session(profiler == null ? backend : profiler.backend(), pool);
            try (LlamaModel model = LlamaModel.create(s, c, seed, WeightTransform.IDENTITY, checkpointing);
                 AdamW adamw = new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f);
                 Tensor tokens = s.i32("tokens", Category.WORKSPACE, batch, seq);
                 Tensor targets = s.i32("targets", Category.WORKSPACE, batch, seq)) {
                randomBatch(tokens, targets, c.vocab(), new SplittableRandom(seed + 1));
                double[] rates = new double[steps];
                double[] stepMs = new double[steps];
                float[] losses = new float[warmup + steps];
                for (int step = 0; step < warmup + steps; step++) {
                    if (profiler != null) {
                        profiler.recording(step >= warmup);
                    }
                    long t0 = System.nanoTime();
                    adamw.zeroGrad();
                    losses[step] = model.forwardBackward(tokens, targets, 1f);
                    adamw.step(1e-3f);
                    backend.synchronize();
                    long nanos = System.nanoTime() - t0;
                    double rate = (double) batch * seq / (nanos / 1e9);
                    if (step >= warmup) {
                        rates[step - warmup] = rate;
                        stepMs[step - warmup] = nanos / 1e6;
                    }
                    progress.printf(Locale.ROOT, "jtune step %d/%d%s: loss %.4f, %.1f tokens/s%n", step + 1,
                            warmup + steps, step < warmup ? " (warm-up)" : "", losses[step], rate);
                }
                if (profiler != null) {
                    profiler.recording(false);
                    progress.print(profiler.table(steps, median(stepMs)));
                }
                long parameters = model.parameters().stream().mapToLong(p -> p.value().size()).sum();
                return new Result(backend.name(), backend.describe(), backend.threads(), presetName, seq, batch,
                        warmup, steps, parameters, checkpointing, rates, losses, ledger, backend.workspaceLedger());
            }
        }
    }

    /**
     * The line that follows a run's ledger table for a backend that holds memory of its own outside the pool (a GPU
     * backend's partial sums), or "" for one that holds none.
     */
    static String scratchLine(Backend backend) {
        MemoryLedger own = backend.workspaceLedger();
        return own == null ? "" : String.format(Locale.ROOT, "%-22s %12s %12s   (the %s backend's own partial sums, "
                + "outside the pool above)%n", "backend scratch", MemoryLedger.human(own.currentTotal()),
                MemoryLedger.human(own.peakTotal()), backend.name());
    }

    private static double median(double[] values) {
        double[] r = values.clone();
        Arrays.sort(r);
        int n = r.length;
        return n % 2 == 1 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
    }

    /** A random sequence of seq + 1 tokens per row: tokens are its first seq, targets its last seq. */
    private static void randomBatch(Tensor tokens, Tensor targets, int vocab, SplittableRandom r) {
        int batch = Math.toIntExact(tokens.dim(0)), seq = Math.toIntExact(tokens.dim(1));
        float[] t = new float[batch * seq], y = new float[batch * seq];
        for (int b = 0; b < batch; b++) {
            float previous = r.nextInt(vocab);
            for (int i = 0; i < seq; i++) {
                t[b * seq + i] = previous;
                previous = r.nextInt(vocab);
                y[b * seq + i] = previous;
            }
        }
        tokens.copyFrom(t);
        targets.copyFrom(y);
    }
}
