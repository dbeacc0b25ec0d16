package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.CRC32;
import jtune.engine.backend.Backend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.Json;
import jtune.engine.io.LlamaConfigJson;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.LrSchedule;
import jtune.engine.optim.Optimizer;
import jtune.engine.optim.Sgd;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import jtune.engine.train.Progress;
import jtune.engine.train.TokenBlocks;
import jtune.engine.train.Trainer;

/**
 * {@code jtune train}: pre-trains a LLaMA-family model (a preset or a JSON config) on a text file tokenized by
 * bytes, with AdamW or SGD, a warm-up + cosine (or constant) schedule, clipping and accumulation. It reports
 * progress on stderr, writes metrics.jsonl and checkpoint.safetensors into the run folder, stops cleanly on
 * Ctrl-C with a checkpoint, and {@code --resume} continues a run exactly where it stopped. The options a run
 * was given are stored in its checkpoint; on resume, those not given again are taken from there.
 */
final class TrainCommand {
    static final Set<String> VALUED = Set.of("--preset", "--config", "--data", "--seq", "--batch", "--accum", "--steps",
            "--lr", "--warmup", "--min-lr-ratio", "--schedule", "--weight-decay", "--clip", "--optimizer", "--momentum",
            "--seed", "--out", "--eval-every", "--eval-batches", "--eval-fraction", "--checkpoint-every");
    static final Set<String> FLAGS = Set.of("--resume", "--json", "--checkpointing");

    /** The model presets. */
    static LlamaConfig preset(String name) {
        return switch (name) {
            case "tiny" -> LlamaConfig.llama(64, 176, 2, 4, 2, ByteTokenizer.VOCAB, 256, true);
            case "llama60m" -> LlamaConfig.llama60m();
            default -> throw new Args.UsageException("--preset must be tiny or llama60m, got '" + name + "'");
        };
    }

    private TrainCommand() {
    }

    static int run(Args args, Backend backend, PrintStream out, PrintStream err) throws IOException {
        if (args.positional().size() > 1) {
            throw new Args.UsageException("unexpected argument '" + args.positional().get(1) + "' after 'train'");
        }
        Map<String, String> given = new LinkedHashMap<>();
        for (String name : new TreeSet<>(VALUED)) {
            if (args.flag(name)) {
                given.put(name, args.string(name, null));
            }
        }
        if (args.flag("--checkpointing")) {
            given.put("--checkpointing", "true");
        }
        boolean resume = args.flag("--resume");
        Path dir = Path.of(given.getOrDefault("--out", "runs/train"));
        Path ckpt = dir.resolve(Checkpoint.FILE);
        Map<String, String> saved = Map.of();
        Map<String, String> opts = new LinkedHashMap<>();
        LlamaConfig config;
        if (resume) {
            if (!Files.isRegularFile(ckpt)) {
                throw new Args.UsageException("--resume: there is no checkpoint at " + ckpt);
            }
            if (given.containsKey("--preset") || given.containsKey("--config")) {
                throw new Args.UsageException("--resume takes the model from the checkpoint; drop --preset and --config");
            }
            saved = Checkpoint.metadata(ckpt);
            if (saved.containsKey("finetune")) {
                throw new Args.UsageException(ckpt + " was written by jtune finetune; continue it with jtune finetune --out "
                        + dir + " --resume");
            }
            config = Checkpoint.config(saved, ckpt);
            opts.putAll(Args.storedOptions(ckpt, saved.getOrDefault("options", "{}"), "train", VALUED, FLAGS));
        } else {
            if (Files.exists(ckpt) || Files.exists(dir.resolve("metrics.jsonl"))) {
                throw new Args.UsageException("the folder " + dir + " already holds a run; continue it with --resume or "
                        + "name a new one with --out");
            }
            if (given.containsKey("--preset") && given.containsKey("--config")) {
                throw new Args.UsageException("give --preset or --config, not both");
            }
            config = given.containsKey("--config") ? readConfig(Path.of(given.get("--config")))
                    : preset(given.getOrDefault("--preset", "tiny"));
        }
        Options before = null;
        if (resume) {
            try {
                before = Options.parse(opts, config);
            } catch (Args.UsageException e) {
                throw new Args.UsageException(ckpt + " holds options that are not valid: " + e.getMessage());
            }
        }
        opts.putAll(given);
        Options o = Options.parse(opts, config);
        if (before != null) {
            o.checkSameData(before);
        }

        Path dataFile = Path.of(o.data);
        if (!Files.isRegularFile(dataFile)) {
            throw new Args.UsageException("--data: there is no file " + dataFile);
        }
        byte[] bytes = Files.readAllBytes(dataFile);
        CRC32 crc = new CRC32();
        crc.update(bytes);
        String dataCrc = Long.toHexString(crc.getValue());
        if (resume && !dataCrc.equals(saved.get("data_crc32"))) {
            throw new Args.UsageException("--data " + dataFile + " is not the file this run was trained on (its CRC-32 is "
                    + dataCrc + ", the checkpoint's " + Json.write(saved.get("data_crc32")) + ")");
        }
        if (resume && saved.containsKey("backend") && !saved.get("backend").equals(backend.name())) {
            err.println("jtune: note: the checkpoint was written by the " + saved.get("backend") + " backend and this run "
                    + "uses " + backend.name() + "; the losses may differ from an uninterrupted run in the last bits");
        } else if (resume && saved.containsKey("threads")
                && !saved.get("threads").equals(Integer.toString(backend.threads()))) {
            err.println("jtune: note: the checkpoint was written with " + saved.get("threads") + " threads and this run "
                    + "uses " + backend.threads() + "; the losses may differ from an uninterrupted run in the last bits");
        }
        int[] tokens = new ByteTokenizer().encode(bytes);
        if (ByteTokenizer.VOCAB > config.vocab()) {
            throw new Args.UsageException("the model's vocabulary (" + config.vocab() + (resume ? ", in " + ckpt : "")
                    + ") is smaller than the byte tokenizer's (" + ByteTokenizer.VOCAB + ")");
        }
        TokenBlocks[] split = TokenBlocks.split(tokens, o.seq, o.evalFraction);

        Map<String, String> meta = new LinkedHashMap<>();
        Map<String, Object> optionsJson = new LinkedHashMap<>(opts);
        optionsJson.remove("--out");
        meta.put("options", Json.write(optionsJson));
        meta.put("data_crc32", dataCrc);
        meta.put("backend", backend.name());
        meta.put("threads", Integer.toString(backend.threads()));

        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger, backend.memory())) {
            Session s = new Session(backend, pool);
            try (LlamaModel model = LlamaModel.create(s, config, o.seed, WeightTransform.IDENTITY, o.checkpointing);
                 Optimizer optimizer = o.optimizer(s, model);
                 Trainer trainer = new Trainer(s, model, optimizer, o.schedule(), new BatchStream(split[0], o.batch, o.seed),
                         split[1], new Trainer.Options(o.accum, o.steps, o.clip, o.evalEvery, o.evalBatches, o.checkpointEvery),
                         new Trainer.Output(dir, new Progress(err, Progress.stderrIsTerminal()),
                                 args.flag("--json") ? out : null, meta))) {
                if (resume) {
                    trainer.resume(ckpt);
                    if (o.steps < trainer.step()) {
                        throw new Args.UsageException("--steps " + o.steps + " is below the step this run reached ("
                                + trainer.step() + "); give at least that many");
                    }
                }
                long params = model.parameters().stream().mapToLong(p -> p.value().size()).sum();
                err.printf(Locale.ROOT, "jtune: %s %s (%.2fM parameters) on %s: %d tokens, %d for training and %d "
                                + "held out; steps %d to %d, %d tokens each (batch %d x seq %d x accum %d); %s, lr %.1e %s%n",
                        resume ? "resuming" : "training", opts.getOrDefault("--config", opts.getOrDefault("--preset", "tiny")),
                        params / 1e6, dataFile, tokens.length, split[0].tokenCount(), split[1].tokenCount(),
                        trainer.step() + 1, o.steps, o.batch * o.seq * o.accum, o.batch, o.seq, o.accum, optimizer.name(),
                        o.lr, o.scheduleName);
                Trainer.Result r = trainer.run(true);
                PrintStream summary = args.flag("--json") ? err : out;
                if (r.losses().length > 0) {
                    summary.printf(Locale.ROOT, "trained steps %d..%d: loss %.4f -> %.4f%s%n", r.step() - r.losses().length + 1,
                            r.step(), r.losses()[0], r.losses()[r.losses().length - 1], Float.isNaN(r.lastEvalLoss()) ? ""
                                    : String.format(Locale.ROOT, "; eval loss %.4f (perplexity %.2f)", r.lastEvalLoss(),
                                    Math.exp(r.lastEvalLoss())));
                }
                summary.println("run folder " + dir + ": metrics.jsonl, " + Checkpoint.FILE);
                summary.print(ledger.table());
                summary.print(TrainBench.scratchLine(backend));
            }
        }
        return 0;
    }

    private static LlamaConfig readConfig(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new Args.UsageException("--config: there is no file " + file);
        }
        try {
            return LlamaConfigJson.read(Files.readString(file), file.toString());
        } catch (IllegalArgumentException e) {
            throw new Args.UsageException("--config " + e.getMessage());
        }
    }

    /** The run's settings, parsed and checked from the option map. */
    private record Options(String data, int seq, int batch, int accum, int steps, double lr, int warmup,
                           double minLrRatio, String scheduleName, double weightDecay, double clip, String optimizerName,
                           double momentum, long seed, int evalEvery, int evalBatches, double evalFraction,
                           int checkpointEvery, boolean checkpointing) {

        static Options parse(Map<String, String> o, LlamaConfig config) {
            String data = o.get("--data");
            if (data == null) {
                throw new Args.UsageException("train needs --data FILE, the text to train on");
            }
            int steps = integer(o, "--steps", 1000, 1);
            int seq = integer(o, "--seq", Math.min(256, config.maxSeq()), 1);
            if (seq > config.maxSeq()) {
                throw new Args.UsageException("--seq " + seq + " exceeds the model's maximum of " + config.maxSeq());
            }
            String schedule = o.getOrDefault("--schedule", "cosine");
            if (!schedule.equals("cosine") && !schedule.equals("constant")) {
                throw new Args.UsageException("--schedule must be cosine or constant, got '" + schedule + "'");
            }
            String optimizer = o.getOrDefault("--optimizer", "adamw");
            if (!optimizer.equals("adamw") && !optimizer.equals("sgd")) {
                throw new Args.UsageException("--optimizer must be adamw or sgd, got '" + optimizer + "'");
            }
            return new Options(data, seq, integer(o, "--batch", 4, 1), integer(o, "--accum", 1, 1), steps,
                    number(o, "--lr", 1e-3, 0, Float.MAX_VALUE), integer(o, "--warmup", steps / 10, 0),
                    number(o, "--min-lr-ratio", 0.1, 0, 1), schedule, number(o, "--weight-decay", 0.1, 0, Double.MAX_VALUE),
                    number(o, "--clip", 1.0, 0, Double.MAX_VALUE), optimizer,
                    number(o, "--momentum", 0.9, 0, 0.999999), integer(o, "--seed", 0, 0),
                    integer(o, "--eval-every", Math.max(1, steps / 10), 0), integer(o, "--eval-batches", 8, 0),
                    number(o, "--eval-fraction", 0.1, 0, 0.99), integer(o, "--checkpoint-every", 1000, 0),
                    o.containsKey("--checkpointing"));
        }

        /** On resume: the options that decide the data order and the optimizer's state must stay as they were. */
        void checkSameData(Options was) {
            Args.unchangedOnResume(new Object[][]{{"--seq", was.seq, seq}, {"--batch", was.batch, batch},
                    {"--accum", was.accum, accum}, {"--seed", was.seed, seed},
                    {"--eval-fraction", was.evalFraction, evalFraction},
                    {"--optimizer", was.optimizerName, optimizerName}});
        }

        LrSchedule schedule() {
            return scheduleName.equals("cosine") ? LrSchedule.cosine(lr, warmup, steps, minLrRatio)
                    : LrSchedule.constant(lr, warmup, steps);
        }

        Optimizer optimizer(Session s, LlamaModel model) {
            List<Parameter> params = model.parameters();
            return optimizerName.equals("adamw") ? new AdamW(s, params, 0.9f, 0.999f, 1e-8f, (float) weightDecay)
                    : new Sgd(s, params, (float) momentum, (float) weightDecay);
        }

        private static int integer(Map<String, String> o, String name, int fallback, int min) {
            return Args.integer(name, o.get(name), fallback, min);
        }

        private static double number(Map<String, String> o, String name, double fallback, double min, double max) {
            return Args.number(name, o.get(name), fallback, min, max);
        }
    }
}
