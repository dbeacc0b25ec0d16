package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import jtune.engine.backend.Backend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.data.SyntheticStories;
import jtune.engine.io.Json;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.Sampler;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.Gradients;
import jtune.engine.optim.LrSchedule;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import jtune.engine.train.Progress;
import jtune.engine.train.TokenBlocks;
import jtune.engine.train.Trainer;

/**
 * {@code jtune demo}, the embedded default: with nothing downloaded it generates a corpus of synthetic stories,
 * tokenizes it by bytes, pre-trains a small LLaMA from scratch for a couple of minutes, and shows the loss
 * falling, text sampled before and after, and the memory ledger. The run folder gets metrics.jsonl, loss.png
 * and the final checkpoint.
 */
final class DemoCommand {
    static final Set<String> VALUED = Set.of("--steps", "--minutes", "--out", "--seed");

    /** What the demo trains and how; {@link #DEFAULT} is what the command runs. */
    record Settings(LlamaConfig model, int batch, int corpusBytes, double lr, int evalBatches, int sampleTokens) {
    }

    /**
     * About 0.9 M parameters: dim 128, 4 layers of 4 heads, SwiGLU hidden 384, byte vocabulary, 128 tokens, batches
     * of 8. In two minutes on 2 (shared) cores it ran 770 steps and took the eval loss from 5.60 to 0.16 nats a byte,
     * the samples from noise to sentences. At equal tokens (268 steps), batch 16 reached only 1.0 against 0.25 for
     * batch 8; batch 4 did a little better per token but ran slower.
     */
    static final Settings DEFAULT = new Settings(LlamaConfig.llama(128, 384, 4, 4, 4, ByteTokenizer.VOCAB, 128, true),
            8, 512 * 1024, 2e-3, 8, 200);

    private static final String PROMPT = "Once upon a time";
    private static final float TEMPERATURE = 0.8f;
    private static final double EVAL_FRACTION = 0.1;
    private static final int EVALS = 8;

    private DemoCommand() {
    }

    static int run(Args args, Backend backend, PrintStream out, PrintStream err) throws IOException {
        int steps = args.integer("--steps", 0, 1);
        int minutes = args.integer("--minutes", 2, 1);
        long seed = args.integer("--seed", 1, 0);
        Path dir = Path.of(args.string("--out",
                "runs/demo-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"))));
        return run(DEFAULT, steps, minutes * 60.0, seed, dir, backend, out, err);
    }

    /** {@code steps} 0: as many as fit in {@code budgetSeconds}, judged from the speed of the first steps. */
    static int run(Settings set, int steps, double budgetSeconds, long seed, Path dir, Backend backend, PrintStream out,
                   PrintStream err) throws IOException {
        long t0 = System.nanoTime();
        if (Files.exists(dir.resolve("metrics.jsonl")) || Files.exists(dir.resolve(Checkpoint.FILE))) {
            throw new IllegalArgumentException("the folder " + dir + " already holds a run; name a new one with --out");
        }
        LlamaConfig c = set.model();
        ByteTokenizer tokenizer = new ByteTokenizer();
        byte[] corpus = SyntheticStories.generate(seed, set.corpusBytes());
        String first = new String(corpus, StandardCharsets.US_ASCII).lines().findFirst().orElse("");
        out.printf(Locale.ROOT, "jtune demo: pre-training a small LLaMA from scratch on %s, nothing downloaded.%n%n",
                backend.describe());
        out.printf(Locale.ROOT, "corpus      %s of synthetic stories (seed %d), one per line, e.g.:%n", MemoryLedger.human(corpus.length), seed);
        out.println("            " + (first.length() > 150 ? first.substring(0, 150) + "…" : first));
        TokenBlocks[] split = TokenBlocks.split(tokenizer.encode(corpus), c.maxSeq(), EVAL_FRACTION);

        MemoryPool pool = new MemoryPool(new MemoryLedger());
        Session s = new Session(backend, pool);
        try (pool; LlamaModel model = LlamaModel.create(s, c, seed, WeightTransform.IDENTITY, false);
             AdamW optimizer = new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f)) {
            long params = model.parameters().stream().mapToLong(p -> p.value().size()).sum();
            out.printf(Locale.ROOT, "tokens      bytes (vocabulary %d); %d for training, %d for evaluation%n",
                    tokenizer.vocabSize(), split[0].tokenCount(), split[1].tokenCount());
            out.printf(Locale.ROOT, "model       LLaMA, %.2f M parameters: dim %d, %d layers, %d heads, SwiGLU %d, "
                    + "context %d, tied embeddings%n", params / 1e6, c.dim(), c.layers(), c.heads(), c.hiddenDim(), c.maxSeq());
            sample(s, model, tokenizer, set.sampleTokens(), seed, "before training", out);

            if (steps == 0) {
                double perStep = secondsPerStep(s, model, set.batch(), split[0], seed, Math.min(10, budgetSeconds / 12));
                // A fifth of what is left goes to the evaluations, the second sample and the chart.
                steps = (int) Math.max(10, Math.min(100_000, (budgetSeconds - elapsed(t0)) * 0.8 / perStep));
                out.printf(Locale.ROOT, "%ntraining   %d steps of %d × %d tokens (%.2f s a step, timed after a warm-up; "
                        + "%s budget), AdamW, lr %.0e cosine%n", steps, set.batch(), c.maxSeq(), perStep,
                        Progress.duration(budgetSeconds), set.lr());
            } else {
                out.printf(Locale.ROOT, "%ntraining   %d steps of %d × %d tokens, AdamW, lr %.0e cosine%n", steps,
                        set.batch(), c.maxSeq(), set.lr());
            }
            out.flush();
            LrSchedule schedule = LrSchedule.cosine(set.lr(), Math.max(1, steps / 20), steps, 0.1);
            Trainer.Options options = new Trainer.Options(1, steps, 1.0, Math.max(1, steps / EVALS), set.evalBatches(), 0);
            Trainer.Output output = new Trainer.Output(dir, new Progress(err, Progress.stderrIsTerminal()), null,
                    Map.of("command", "demo", "seed", Long.toString(seed), "corpus", "synthetic stories, "
                            + corpus.length + " bytes"));
            Trainer.Result result;
            float evalBefore;
            try (Trainer trainer = new Trainer(s, model, optimizer, schedule,
                    new BatchStream(split[0], set.batch(), seed), split[1], options, output)) {
                evalBefore = trainer.evaluate();
                Files.createDirectories(dir);
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("step", 0);
                m.put("eval_loss", evalBefore);
                m.put("ppl", Math.exp(evalBefore));
                Files.writeString(dir.resolve("metrics.jsonl"), Json.write(m) + "\n", StandardCharsets.UTF_8);
                result = trainer.run(true);
            }
            sample(s, model, tokenizer, set.sampleTokens(), seed, "after " + result.step() + " steps", out);
            out.println();
            out.println("memory ledger (bytes by category, current and peak over the run):");
            out.print(pool.ledger().table());

            Path png = dir.resolve("loss.png");
            chart(dir.resolve("metrics.jsonl"), png, params);
            float[] losses = result.losses();
            out.println();
            out.printf(Locale.ROOT, "loss        train %.3f → %.3f, eval %.3f → %.3f (a uniform guess is %.3f)%n",
                    losses.length == 0 ? Float.NaN : losses[0], losses.length == 0 ? Float.NaN : losses[losses.length - 1],
                    evalBefore, result.lastEvalLoss(), Math.log(c.vocab()));
            out.printf(Locale.ROOT, "time        %s in all%n", Progress.duration(elapsed(t0)));
            out.println("run folder  " + dir.toAbsolutePath().normalize() + "/");
            out.println("            metrics.jsonl (one JSON line per step and per evaluation), loss.png (the curves),");
            out.println("            " + Checkpoint.FILE + " (weights, AdamW state, data position)");
        }
        return 0;
    }

    /**
     * Seconds per training step: forward-backward passes over one batch are repeated for about
     * {@code warmSeconds} (at least four), which also lets the JIT compile the kernels (the first passes run
     * several times slower than the later ones); the median of the later half of the passes, plus a tenth for
     * the update, is the estimate.
     */
    private static double secondsPerStep(Session s, LlamaModel model, int batch, TokenBlocks train, long seed,
                                         double warmSeconds) {
        try (Tensor tokens = s.i32("demo.tokens", Category.WORKSPACE, batch, train.seq());
             Tensor targets = s.i32("demo.targets", Category.WORKSPACE, batch, train.seq())) {
            new BatchStream(train, batch, seed).next(tokens, targets);
            List<Double> passes = new ArrayList<>();
            long start = System.nanoTime();
            while (passes.size() < 4 || (passes.size() < 100 && elapsed(start) < warmSeconds)) {
                long t = System.nanoTime();
                model.forwardBackward(tokens, targets, 1f);
                passes.add(elapsed(t));
            }
            Gradients.zero(s, model.parameters());
            List<Double> later = new ArrayList<>(passes.subList(passes.size() / 2, passes.size()));
            later.sort(null);
            return later.get(later.size() / 2) * 1.1;
        }
    }

    private static void sample(Session s, LlamaModel model, ByteTokenizer tokenizer, int count, long seed, String when,
                               PrintStream out) {
        int[] tokens;
        try (Sampler sampler = new Sampler(s, model)) {
            tokens = sampler.generate(tokenizer.encode(PROMPT), count, TEMPERATURE, 0, new SplittableRandom(seed));
        }
        out.printf(Locale.ROOT, "%nsampled %s (temperature %.1f):%n", when, TEMPERATURE);
        StringBuilder sb = new StringBuilder("  > " + PROMPT);
        for (char ch : tokenizer.decode(tokens).toCharArray()) {
            sb.append(ch == '\n' ? "\n  > " : ch >= 32 && ch < 127 ? String.valueOf(ch) : "·");
        }
        out.println(sb);
    }

    /** The train and eval curves of metrics.jsonl as loss.png. */
    private static void chart(Path metrics, Path png, long params) throws IOException {
        List<LossChart.Point> train = new ArrayList<>(), eval = new ArrayList<>();
        for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
            Map<String, Object> m = Json.parseObject(line);
            double step = ((Number) m.get("step")).doubleValue();
            if (m.get("loss") instanceof Number loss) {
                train.add(new LossChart.Point(step, loss.doubleValue()));
            }
            if (m.get("eval_loss") instanceof Number loss) {
                eval.add(new LossChart.Point(step, loss.doubleValue()));
            }
        }
        String title = String.format(Locale.ROOT, "jtune demo: %.1fM-parameter LLaMA", params / 1e6);
        LossChart.write(png, title, train, eval, 800, 500);
    }

    private static double elapsed(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }
}
