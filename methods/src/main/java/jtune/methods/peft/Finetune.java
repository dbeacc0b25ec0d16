package jtune.methods.peft;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.zip.CRC32;
import jtune.engine.backend.Backend;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.CausalLM;
import jtune.engine.model.Perplexity;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.LrSchedule;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tokenizer.Tokenizer;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import jtune.engine.train.Progress;
import jtune.engine.train.ShutdownGuard;
import jtune.engine.train.TokenBlocks;
import jtune.engine.train.Trainer;
import jtune.methods.quant.QuantizedArrays;
import jtune.methods.quant.QuantizedWeight;

/**
 * Parameter-efficient fine-tuning of a model file on a text file, with the engine's {@link Trainer}:
 * <ul>
 *   <li>{@code lora}: the model stays dense f32 and frozen; LoRA adapters on the target layers train.</li>
 *   <li>{@code qlora}: every decoder-block linear layer becomes NF4 with double quantization (blocks of
 *       {@code group}, 64 by default), frozen; LoRA adapters on the target layers train (QLoRA).</li>
 *   <li>{@code peqa}: every decoder-block linear layer is quantized by round-to-nearest to {@code bits}-bit
 *       asymmetric integers in groups of {@code group} (0: per output channel); the scales of the target layers
 *       train, the codes and zero points stay frozen (PEQA).</li>
 * </ul>
 * Embeddings, norms and an untied output head stay f32 and frozen. Over a folder written by {@code jtune quantize}
 * the stored quantized layers are the frozen base as they are ({@link WeightTransform#applyQuantized}), so
 * {@code bits} and {@code group} do not apply (a line on the progress stream says so for qlora and peqa): lora and
 * qlora put their adapters over them (integer codes with or without LoRC, or NF4); peqa trains the scales of their
 * integer codes and refuses NF4 layers and LoRC-corrected ones. The text is read as UTF-8 (CRLF as LF) and
 * tokenized whole with the model's tokenizer and its special tokens, as {@code jtune eval} does; its last
 * {@code evalFraction} of tokens is held out. The held-out perplexity ({@link Perplexity}, windows of {@code seq}
 * tokens) is measured before training (for PEQA, the RTN model's) and after. Training: AdamW (β 0.9, 0.999,
 * ε 1e-8), a constant learning rate after a linear warm-up, gradient clipping, one batch per step. The result, the
 * adapter in PEFT's format ({@link LoraAdapters}) or the scale set ({@link PeqaScales}), goes into {@code out} at
 * the end (before the held-out perplexity after training, so that Ctrl-C then loses nothing; until it is written,
 * Ctrl-C waits for it). With {@code out}, the trainer also writes {@code metrics.jsonl} and a checkpoint of the trainable
 * parameters and AdamW's state there (every {@code checkpointEvery} updates, at the end, and when stopped by Ctrl-C);
 * {@code resume} continues from it with the numbers an uninterrupted run would have produced (same threads). A run
 * stopped early writes its checkpoint and neither the held-out perplexity after nor the adapter.
 */
public final class Finetune {
    /** The three methods. */
    public enum Method {
        LORA, QLORA, PEQA;

        /** "lora", "qlora" or "peqa", any case. */
        public static Method parse(String name) {
            for (Method m : values()) {
                if (m.name().equalsIgnoreCase(name)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("--method must be lora, qlora or peqa, not '" + name + "'");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * A run's settings.
     *
     * @param model         a model path {@link ModelLoader} reads
     * @param tokenizer     a tokenizer file replacing the model's own, or null
     * @param data          the text
     * @param method        what trains
     * @param lora          the adapters' settings (lora, qlora); the targets also pick PEQA's trained layers
     * @param bits          PEQA's integer bits (2, 3, 4 or 8); unused over layers stored quantized
     * @param group         PEQA: elements per scale (0: per output channel); QLoRA: the NF4 block (0: 64); unused
     *                      over layers stored quantized
     * @param steps         updates; 0 only measures the held-out perplexity
     * @param lr            peak learning rate
     * @param warmup        warm-up updates
     * @param clip          global gradient-norm clipping (0: none)
     * @param weightDecay   AdamW's decoupled decay (not applied to PEQA scales)
     * @param seq           tokens per training block and per evaluation window
     * @param batch         blocks per update
     * @param evalFraction  the held-out share of the tokens
     * @param seed          adapter initialisation, dropout masks and batch order
     * @param checkpointing recompute each block's activations in backward
     * @param out           where the adapter or scale set is written; null: nowhere
     * @param scales        PEQA: a saved scale set to start from, or null
     * @param checkpointEvery updates between checkpoints in {@code out} (0: only at the end and when stopped)
     * @param resume        continue from the checkpoint in {@code out}
     * @param evalEvery     updates between evaluations of the held-out loss during training (0: none; the held-out
     *                      perplexity before and after is measured anyway)
     * @param evalBatches   at most this many batches of held-out blocks per such evaluation (0: all)
     */
    public record Options(Path model, Path tokenizer, Path data, Method method, LoraConfig lora, int bits, int group,
                          int steps, double lr, int warmup, double clip, double weightDecay, int seq, int batch,
                          double evalFraction, long seed, boolean checkpointing, Path out, Path scales,
                          int checkpointEvery, boolean resume, int evalEvery, int evalBatches) {
        public Options {
            if (resume && out == null) {
                throw new IllegalArgumentException("resuming needs the run folder that holds the checkpoint");
            }
            if (resume && steps == 0) {
                throw new IllegalArgumentException("--resume continues training: give --steps, the run's total updates, "
                        + "above 0");
            }
            if (scales != null && method != Method.PEQA) {
                throw new IllegalArgumentException("--scales loads a PEQA scale set; it needs --method peqa");
            }
            if (method == Method.PEQA) {
                QuantFormat.integer(bits, group, false, DType.F32);
            } else if (method == Method.QLORA) {
                QuantFormat.nf4(nf4Block(group), true);
            }
            if (steps < 0 || checkpointEvery < 0 || evalEvery < 0 || evalBatches < 0 || seq < 2 || batch < 1
                    || warmup < 0 || !(lr >= 0) || !(clip >= 0) || !(weightDecay >= 0)
                    || !(evalFraction > 0 && evalFraction < 1)) {
                throw new IllegalArgumentException("fine-tuning options out of range: steps " + steps + ", seq " + seq
                        + ", batch " + batch + ", checkpoint every " + checkpointEvery + ", eval every " + evalEvery
                        + ", eval batches " + evalBatches + ", warmup " + warmup + ", lr " + lr + ", clip " + clip
                        + ", weight decay " + weightDecay + ", eval fraction " + evalFraction);
            }
        }

        private static int nf4Block(int group) {
            return group == 0 ? QuantFormat.NF4_DEFAULT_BLOCK : group;
        }

        /** The frozen base's format: PEQA's integer grid, QLoRA's NF4, null for LoRA's dense base. */
        public QuantFormat baseFormat() {
            return switch (method) {
                case PEQA -> QuantFormat.integer(bits, group, false, DType.F32);
                case QLORA -> QuantFormat.nf4(nf4Block(group), true);
                case LORA -> null;
            };
        }
    }

    /**
     * What a run did.
     *
     * @param description    the model loaded
     * @param trainable      trainable parameters (elements)
     * @param trainLayers    layers with a trained part
     * @param trainTokens    tokens of the training part
     * @param heldOutTokens  tokens held out
     * @param before         held-out perplexity before training
     * @param after          held-out perplexity after training (= before with 0 steps), null when stopped early
     * @param firstStep      the step the run started from: 0, or the checkpoint's when resumed
     * @param losses         the loss of each step it ran
     * @param stopped        stopped early (Ctrl-C): the checkpoint is written, the adapter or scale set is not
     * @param peak           the ledger's peak bytes per category during the run
     * @param memoryTable    the ledger's table at the end, with the model still loaded
     * @param saved          the files written, or empty
     */
    public record Result(String description, long trainable, int trainLayers, long trainTokens, long heldOutTokens,
                         Perplexity.Result before, Perplexity.Result after, long firstStep, float[] losses,
                         boolean stopped, Map<Category, Long> peak,
                         String memoryTable, List<Path> saved) {
    }

    /** Evaluation windows per forward pass: enough rows to keep the kernels busy. */
    private static final int EVAL_TOKENS_PER_PASS = 2048;

    private Finetune() {
    }

    /** Runs {@code o} on {@code backend}, reporting progress on {@code err}. */
    public static Result run(Backend backend, Options o, PrintStream err) throws IOException {
        return run(backend, o, err, Map.of());
    }

    /** As {@link #run(Backend, Options, PrintStream)}, storing {@code metadata} in the checkpoints as well. */
    public static Result run(Backend backend, Options o, PrintStream err, Map<String, String> metadata)
            throws IOException {
        if (!Files.isRegularFile(o.data())) {
            throw new IllegalArgumentException("--data: there is no file " + o.data());
        }
        byte[] bytes = Files.readAllBytes(o.data());
        CRC32 crc = new CRC32();
        crc.update(bytes);
        String dataCrc = Long.toHexString(crc.getValue());
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put("finetune", o.method().toString());
        meta.put("base_model", o.model().toAbsolutePath().normalize().toString());
        meta.put("data_crc32", dataCrc);
        meta.put("backend", backend.name());
        meta.put("threads", Integer.toString(backend.threads()));
        Path checkpoint = o.out() == null ? null : o.out().resolve(Checkpoint.FILE);
        if (o.resume()) {
            checkResumable(checkpoint, meta, err);
        }
        String text = new String(bytes, StandardCharsets.UTF_8).replace("\r\n", "\n");
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger)) {
            Session s = new Session(backend, pool);
            Map<String, PeqaWeight> peqa = new LinkedHashMap<>();
            LoraAdapters lora = o.method() == Method.PEQA ? null : new LoraAdapters(o.lora(), o.seed());
            boolean[] stored = new boolean[1];
            WeightTransform t = notingStored(switch (o.method()) {
                case LORA -> lora.over(WeightTransform.IDENTITY, o.seed());
                case QLORA -> lora.over(quantizer(o.baseFormat()), o.seed());
                case PEQA -> PeqaWeight.rtn(o.baseFormat(), o.lora()::targets, peqa);
            }, stored);
            try (LoadedModel loaded = ModelLoader.load(s, o.model(), o.tokenizer(), false, t, o.checkpointing())) {
                if (stored[0] && o.method() != Method.LORA) {
                    err.println("jtune: " + o.model() + " is stored quantized; " + o.method() + " takes its layers as "
                            + "they are, so --bits and --group do not apply");
                }
                int trainLayers = o.method() == Method.PEQA ? peqa.size() : lora.weights().size();
                if (trainLayers == 0) {
                    throw new IllegalArgumentException(o.model() + " has none of the target layers "
                            + o.lora().targets());
                }
                if (o.scales() != null) {
                    PeqaScales.load(o.scales(), peqa);
                }
                Tokenizer tok = loaded.tokenizer();
                if (tok == null) {
                    throw new IllegalArgumentException(o.model() + " comes with no tokenizer; give one with "
                            + "--tokenizer");
                }
                int maxSeq = loaded.model().config().maxSeq();
                if (o.seq() > maxSeq) {
                    throw new IllegalArgumentException("--seq " + o.seq() + " exceeds the model's " + maxSeq
                            + " positions");
                }
                int[] tokens = tok.encode(text, true);
                int cut = tokens.length - (int) Math.floor(tokens.length * o.evalFraction());
                int[] heldOut = Arrays.copyOfRange(tokens, cut, tokens.length);
                if (heldOut.length < o.seq()) {
                    throw new IllegalArgumentException("the held-out part of " + o.data() + " has " + heldOut.length
                            + " tokens, fewer than one window of --seq " + o.seq() + "; use more text, a larger "
                            + "--eval-fraction or a smaller --seq");
                }
                TokenBlocks train = new TokenBlocks(Arrays.copyOfRange(tokens, 0, cut), o.seq());
                TokenBlocks heldOutBlocks = new TokenBlocks(heldOut, o.seq());
                CausalLM model = lora == null ? loaded.model() : new TrainingMode(loaded.model(), lora.dropout());
                long trainable = loaded.model().parameters().stream().filter(Parameter::trainable)
                        .mapToLong(p -> p.value().size()).sum();
                err.printf(Locale.ROOT, "jtune: %s; %s: %d layers, %,d trainable parameters; %d tokens, %d for "
                                + "training and %d held out%n", loaded.description(), describe(o, stored[0]),
                        trainLayers, trainable, tokens.length, cut, heldOut.length);
                Perplexity.Result before = heldOut(s, model, heldOut, o.seq());
                Trainer.Result trained = new Trainer.Result(0, new float[0], false, Float.NaN);
                List<Path> saved = new ArrayList<>();
                // Ctrl-C from here waits for the checkpoint and the adapter or scale set to be written.
                try (ShutdownGuard _ = new ShutdownGuard(o.out() != null && o.steps() > 0, () -> { })) {
                    if (o.steps() > 0) {
                        trained = train(s, model, lora, train, heldOutBlocks, o, meta, checkpoint, err);
                    }
                    if (o.out() != null && !trained.stopped()) {
                        saved.addAll(save(o, lora, peqa, stored[0]));
                        if (o.steps() > 0) {
                            saved.add(checkpoint);
                        }
                    }
                }
                long firstStep = trained.step() - trained.losses().length;
                if (trained.stopped()) {
                    return new Result(loaded.description(), trainable, trainLayers, cut, heldOut.length, before, null,
                            firstStep, trained.losses(), true, peaks(ledger), ledger.table(), List.of(checkpoint));
                }
                Perplexity.Result after = o.steps() > 0 ? heldOut(s, model, heldOut, o.seq()) : before;
                return new Result(loaded.description(), trainable, trainLayers, cut, heldOut.length, before, after,
                        firstStep, trained.losses(), false, peaks(ledger), ledger.table(), List.copyOf(saved));
            }
        }
    }

    /**
     * "peqa over int4 g32 asym f32 (RTN)", "qlora r 8 alpha 16 over nf4 b64 dq", "lora r 8 alpha 16 (rsLoRA)";
     * {@code stored}: the model's layers came stored quantized.
     */
    static String describe(Options o, boolean stored) {
        LoraConfig c = o.lora();
        String adapter = String.format(Locale.ROOT, " r %d alpha %s%s dropout %s on %s", c.rank(), number(c.alpha()),
                c.rslora() ? " (rsLoRA)" : "", number(c.dropout()), String.join(",", c.targets()));
        if (stored) {
            return (o.method() == Method.PEQA ? "peqa: trainable scales of " + String.join(",", c.targets())
                    : o.method() + adapter) + " over the stored quantized layers";
        }
        return switch (o.method()) {
            case LORA -> "lora" + adapter + " over the dense f32 model";
            case QLORA -> "qlora" + adapter + " over " + o.baseFormat();
            case PEQA -> "peqa: trainable scales of " + String.join(",", c.targets()) + " over " + o.baseFormat()
                    + " (RTN)";
        };
    }

    private static String number(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    /**
     * Replaces each decoder-block layer by its frozen {@code format} quantization (NF4 for QLoRA); a layer stored
     * quantized stays as it is.
     */
    private static WeightTransform quantizer(QuantFormat format) {
        return new WeightTransform() {
            @Override
            public LinearWeight apply(Session s, String layer, DenseWeight dense) {
                if (!LoraConfig.isBlockLayer(layer)) {
                    return dense;
                }
                return new QuantizedWeight(QuantizedArrays.roundToNearest(dense, format, s.pool(), layer + ".weight"));
            }

            @Override
            public LinearWeight applyQuantized(Session s, String layer, LinearWeight stored) {
                return stored;
            }
        };
    }

    /** {@code t}, setting {@code stored[0]} when a layer comes stored quantized. */
    private static WeightTransform notingStored(WeightTransform t, boolean[] stored) {
        return new WeightTransform() {
            @Override
            public LinearWeight apply(Session s, String layer, DenseWeight dense) {
                return t.apply(s, layer, dense);
            }

            @Override
            public LinearWeight applyQuantized(Session s, String layer, LinearWeight base) {
                stored[0] = true;
                return t.applyQuantized(s, layer, base);
            }
        };
    }

    private static Perplexity.Result heldOut(Session s, CausalLM model, int[] tokens, int seq) {
        return Perplexity.evaluate(s, model, tokens, seq, Math.max(1, EVAL_TOKENS_PER_PASS / seq), (d, n) -> { });
    }

    /**
     * Refuses to resume from {@code checkpoint} unless it is there and was written by a fine-tuning run with the same
     * method, base model path and text ({@code meta}'s values); notes on {@code err} when the backend or its threads
     * differ, which may change the last bits of the numbers.
     */
    private static void checkResumable(Path checkpoint, Map<String, String> meta, PrintStream err) throws IOException {
        if (!Files.isRegularFile(checkpoint)) {
            throw new IllegalArgumentException("--resume: there is no checkpoint at " + checkpoint);
        }
        Map<String, String> saved = Checkpoint.metadata(checkpoint);
        if (saved.get("finetune") == null) {
            throw new IllegalArgumentException(checkpoint + " was not written by jtune finetune; resume it with the "
                    + "command that wrote it");
        }
        String[][] same = {{"finetune", "--method"}, {"base_model", "--model"}, {"data_crc32", "--data"}};
        for (String[] k : same) {
            if (!meta.get(k[0]).equals(saved.get(k[0]))) {
                throw new IllegalArgumentException(k[1] + " differs from the run in " + checkpoint.getParent()
                        + (k[0].equals("data_crc32") ? " (the text's CRC-32 is " + meta.get(k[0]) + ", the checkpoint's "
                        + saved.get(k[0]) + ")" : " (it was " + saved.get(k[0]) + ", now " + meta.get(k[0]) + ")")
                        + "; resume with the same one, or start a new run in another --out");
            }
        }
        for (String k : new String[]{"backend", "threads"}) {
            if (saved.containsKey(k) && !saved.get(k).equals(meta.get(k))) {
                err.println("jtune: note: the checkpoint was written with " + k + " " + saved.get(k) + " and this run "
                        + "uses " + meta.get(k) + "; the losses may differ from an uninterrupted run in the last bits");
            }
        }
    }

    private static Trainer.Result train(Session s, CausalLM model, LoraAdapters lora, TokenBlocks blocks,
                                        TokenBlocks heldOut, Options o, Map<String, String> meta, Path checkpoint,
                                        PrintStream err)
            throws IOException {
        try (AdamW optimizer = new AdamW(s, model.parameters(), 0.9f, 0.999f, 1e-8f, (float) o.weightDecay());
             Trainer trainer = new Trainer(s, model, optimizer, LrSchedule.constant(o.lr(), o.warmup(), o.steps()),
                     new BatchStream(blocks, o.batch(), o.seed()), heldOut,
                     new Trainer.Options(1, o.steps(), o.clip(), o.evalEvery(), o.evalBatches(), o.checkpointEvery()),
                     new Trainer.Output(o.out(), new Progress(err, Progress.stderrIsTerminal()), null, meta))) {
            if (o.resume()) {
                trainer.resume(checkpoint);
                if (o.steps() < trainer.step()) {
                    throw new IllegalArgumentException("--steps " + o.steps() + " is below the step this run reached ("
                            + trainer.step() + "); give at least that many");
                }
                // What an earlier part of the run saved is older than the checkpoint: the end of this part rewrites it.
                for (String f : new String[]{LoraAdapters.CONFIG, LoraAdapters.WEIGHTS, PeqaScales.CONFIG,
                        PeqaScales.SCALES}) {
                    Files.deleteIfExists(o.out().resolve(f));
                }
                if (lora != null) {
                    // One batch a step, so each adapter has made one training pass a step.
                    lora.weights().values().forEach(w -> w.restorePasses(trainer.step()));
                }
                err.println("jtune: resuming from step " + trainer.step() + " of " + o.steps() + " (" + checkpoint + ")");
            }
            return trainer.run(o.out() != null);
        }
    }

    private static List<Path> save(Options o, LoraAdapters lora, Map<String, PeqaWeight> peqa, boolean stored)
            throws IOException {
        Path dir = o.out();
        if (lora != null) {
            lora.save(dir, o.model().toString());
            return List.of(dir.resolve(LoraAdapters.CONFIG), dir.resolve(LoraAdapters.WEIGHTS));
        }
        PeqaScales.save(dir, peqa, o.model().toString(), stored
                ? "the codes stored there, " + peqa.values().iterator().next().matrix().format()
                : "rtn " + o.baseFormat());
        return List.of(dir.resolve(PeqaScales.CONFIG), dir.resolve(PeqaScales.SCALES));
    }

    private static Map<Category, Long> peaks(MemoryLedger ledger) {
        Map<Category, Long> m = new LinkedHashMap<>();
        for (Category c : Category.values()) {
            m.put(c, ledger.peak(c));
        }
        return m;
    }
}
