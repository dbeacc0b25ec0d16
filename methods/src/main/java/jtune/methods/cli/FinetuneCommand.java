package jtune.methods.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jtune.engine.backend.Backend;
import jtune.engine.cli.Args;
import jtune.engine.cli.CommandProvider;
import jtune.engine.io.Json;
import jtune.engine.train.Checkpoint;
import jtune.methods.peft.Finetune;
import jtune.methods.peft.LoraAdapters;
import jtune.methods.peft.LoraConfig;
import jtune.methods.peft.PeqaScales;

/**
 * {@code jtune finetune}: LoRA, QLoRA or PEQA fine-tuning of a model on a text file ({@link Finetune}), printing the
 * held-out perplexity before and after and the memory ledger, and writing the adapter (PEFT's format) or the PEQA
 * scale set into {@code --out}, with the trainer's metrics.jsonl and checkpoint. The options a run was given are
 * stored in its checkpoint; {@code --resume} takes those not given again from there, and refuses a change to those
 * that decide the model, the adapters and the order of the data.
 */
public final class FinetuneCommand implements CommandProvider {
    private static final Set<String> VALUED = Set.of("--model", "--tokenizer", "--data", "--method", "--rank",
            "--alpha", "--dropout", "--targets", "--bits", "--group", "--steps", "--lr", "--warmup", "--clip",
            "--weight-decay", "--seq", "--batch", "--eval-fraction", "--seed", "--out", "--scales", "--checkpoint-every",
            "--eval-every", "--eval-batches");
    private static final Set<String> FLAGS = Set.of("--rslora", "--checkpointing", "--resume");

    @Override
    public String name() {
        return "finetune";
    }

    @Override
    public String help() {
        return """
                  finetune                  fine-tune a model on a text file: LoRA, QLoRA or PEQA
                      --model PATH --tokenizer FILE   as for eval; a folder written by jtune quantize is taken
                                            as stored: lora and qlora put adapters over its layers, peqa trains
                                            their scales (integer codes without LoRC only), --bits and --group do
                                            not apply
                      --data FILE           the text, tokenized whole; its last --eval-fraction (default 0.1) is
                                            held out
                      --method lora|qlora|peqa  lora: adapters over the frozen f32 model; qlora: adapters over NF4
                                            (double-quantized) layers; peqa: RTN integer layers, only their scales train
                      --rank R --alpha A --dropout P   LoRA's r, lora_alpha, lora_dropout (default 8, 16, 0.05)
                      --rslora              scale the adapters by alpha/sqrt(r) instead of alpha/r
                      --targets LIST        layers that train, of q,k,v,o,gate,up,down (default all)
                      --bits B --group G    peqa: 2/3/4/8 bits, groups of 32..256 or 0 per channel (default 4, 64);
                                            qlora: the NF4 block (default 64)
                      --steps N             updates (default 200; 0: only the held-out perplexity)
                      --lr LR --warmup W --clip C --weight-decay WD   (default 2e-4 for lora and qlora, 3e-4 for
                                            peqa; warm-up 3% of the steps; clip 1.0; decay 0)
                      --seq S --batch B     tokens per block and blocks per update (default 256 x 4)
                      --seed S              adapter initialisation, dropout and batch order (default 0)
                      --checkpointing       recompute each block's activations in backward (less memory)
                      --out DIR             where the adapter (adapter_config.json, adapter_model.safetensors) or the
                                            scale set (peqa_config.json, peqa_scales.safetensors) goes (default
                                            runs/finetune); eval and generate take it with --adapter or --scales;
                                            metrics.jsonl and checkpoint.safetensors (the trained part and AdamW's
                                            state) go there too
                      --eval-every N --eval-batches N   the held-out loss every N updates, over at most that many
                                            batches (default 0: only the perplexity before and after; 8)
                      --checkpoint-every N  (default 100; a checkpoint is also written at the end and on Ctrl-C)
                      --resume              continue the run in --out from its checkpoint; options not given are
                                            the run's; --steps, --lr, --warmup, --clip, --weight-decay and the
                                            evaluation and checkpoint intervals may change
                      --scales DIR          peqa: start from a saved scale set (with --steps 0: evaluate it)
                """;
    }

    @Override
    public Set<String> valued() {
        return VALUED;
    }

    @Override
    public Set<String> flags() {
        return FLAGS;
    }

    @Override
    public int run(Args args, Backend backend, PrintStream out, PrintStream err) throws IOException {
        Map<String, String> given = new LinkedHashMap<>(args.values());
        given.remove("--out");
        given.remove("--resume");
        // Stored as absolute paths, so that a resume from another folder finds them; --checkpointing (memory only) is
        // not stored, so a resume may leave it off.
        for (String file : new String[]{"--model", "--data", "--tokenizer", "--scales"}) {
            given.computeIfPresent(file, (k, v) -> Path.of(v).toAbsolutePath().normalize().toString());
        }
        given.remove("--checkpointing");
        Path dir = Path.of(args.string("--out", "runs/finetune"));
        Path checkpoint = dir.resolve(Checkpoint.FILE);
        Finetune.Options o;
        if (args.flag("--resume")) {
            Map<String, String> stored = storedOptions(checkpoint);
            // The text may have moved: its CRC-32 decides whether it is the same (Finetune checks it).
            Map<String, String> before = new LinkedHashMap<>(stored);
            if (given.containsKey("--data")) {
                before.put("--data", given.get("--data"));
            }
            Finetune.Options was = options(Args.of(before));
            o = options(args.withDefaults(stored));
            checkUnchanged(was, o);
            stored.putAll(given);
            given = stored;
        } else {
            o = options(args);
            // The warm-up's default follows --steps; a resumed run with other --steps keeps this run's.
            given.putIfAbsent("--warmup", Integer.toString(o.warmup()));
            if (Files.exists(checkpoint)) {
                throw new Args.UsageException("the folder " + dir + " already holds a run; continue it with --resume or "
                        + "name a new one with --out");
            }
            if (Files.exists(dir.resolve("metrics.jsonl"))) {
                throw new Args.UsageException("the folder " + dir + " holds the metrics.jsonl of a run that wrote no "
                        + "checkpoint; remove it or name a new folder with --out");
            }
            if (Files.exists(dir.resolve(LoraAdapters.CONFIG)) || Files.exists(dir.resolve(PeqaScales.CONFIG))) {
                throw new Args.UsageException("the folder " + dir + " already holds an adapter or a scale set; "
                        + "name a new one with --out");
            }
        }
        Map<String, Object> options = new LinkedHashMap<>(given);
        Finetune.Result r = Finetune.run(backend, o, err, Map.of("options", Json.write(options)));
        if (r.stopped()) {
            // Stopped by Ctrl-C: the trainer has said where the checkpoint is, and the JVM is on its way out.
            return 0;
        }
        out.printf(Locale.ROOT, "held-out perplexity  %.4f -> %.4f (%d windows of %d tokens, %d held-out tokens)%n",
                r.before().perplexity(), r.after().perplexity(), r.after().windows(), r.after().seq(),
                r.heldOutTokens());
        if (r.losses().length > 0) {
            out.printf(Locale.ROOT, "trained steps %d..%d: loss %.4f -> %.4f%n", r.firstStep() + 1,
                    r.firstStep() + r.losses().length, r.losses()[0], r.losses()[r.losses().length - 1]);
        }
        out.printf(Locale.ROOT, "trainable parameters %,d in %d layers%n", r.trainable(), r.trainLayers());
        if (!r.saved().isEmpty()) {
            out.println("saved " + r.saved().stream().map(Path::toString).reduce((a, b) -> a + ", " + b).orElseThrow());
        }
        out.print(r.memoryTable());
        return 0;
    }

    /** The options a finetune run stored in {@code checkpoint}, which must be there. */
    private static Map<String, String> storedOptions(Path checkpoint) throws IOException {
        if (!Files.isRegularFile(checkpoint)) {
            throw new Args.UsageException("--resume: there is no checkpoint at " + checkpoint);
        }
        Map<String, String> meta = Checkpoint.metadata(checkpoint);
        if (meta.get("finetune") == null || meta.get("options") == null) {
            throw new Args.UsageException(checkpoint + " was not written by jtune finetune; resume it with the command "
                    + "that wrote it");
        }
        Map<String, String> stored = Args.storedOptions(checkpoint, meta.get("options"), "finetune", VALUED, FLAGS);
        // A resume cannot supply these (a change of them is refused), so a checkpoint without them cannot be resumed.
        for (String k : new String[]{"--model", "--method"}) {
            if (!stored.containsKey(k)) {
                throw new Args.UsageException(checkpoint + ": metadata \"options\" lacks " + k + ", which every "
                        + "finetune run stores; the checkpoint was damaged or changed since it was written");
            }
        }
        return stored;
    }

    /** On resume: the options that decide the model, its trained part and the data order stay as they were. */
    private static void checkUnchanged(Finetune.Options was, Finetune.Options now) {
        Args.unchangedOnResume(new Object[][]{{"--model", abs(was.model()), abs(now.model())},
                {"--tokenizer", abs(was.tokenizer()), abs(now.tokenizer())}, {"--method", was.method(), now.method()},
                {"--rank, --alpha, --dropout, --rslora or --targets", was.lora(), now.lora()},
                {"--bits", was.bits(), now.bits()}, {"--group", was.group(), now.group()},
                {"--seq", was.seq(), now.seq()}, {"--batch", was.batch(), now.batch()},
                {"--eval-fraction", was.evalFraction(), now.evalFraction()}, {"--seed", was.seed(), now.seed()},
                {"--scales", abs(was.scales()), abs(now.scales())}});
    }

    private static Path abs(Path p) {
        return p == null ? null : p.toAbsolutePath().normalize();
    }

    /** The options, checked before anything is loaded. */
    static Finetune.Options options(Args args) {
        if (args.positional().size() > 1) {
            throw new Args.UsageException("unexpected argument '" + args.positional().get(1) + "' after 'finetune'");
        }
        Path model = path(args, "--model", "the model to fine-tune");
        Path data = path(args, "--data", "the text to train on");
        if (!Files.isRegularFile(data)) {
            throw new Args.UsageException("--data: there is no file " + data);
        }
        String method = args.string("--method", null);
        if (method == null) {
            throw new Args.UsageException("finetune needs --method lora, qlora or peqa");
        }
        try {
            Finetune.Method m = Finetune.Method.parse(method);
            LoraConfig lora = new LoraConfig(args.integer("--rank", 8, 1), args.number("--alpha", 16, 1e-9, 1e9),
                    args.number("--dropout", 0.05, 0, 0.99), args.flag("--rslora"),
                    LoraConfig.parseTargets(args.string("--targets", String.join(",", LoraConfig.MODULES))));
            int steps = args.integer("--steps", 200, 0);
            String tokenizer = args.string("--tokenizer", null);
            String scales = args.string("--scales", null);
            return new Finetune.Options(model, tokenizer == null ? null : Path.of(tokenizer), data, m, lora,
                    args.integer("--bits", 4, 2), args.integer("--group", 64, 0), steps,
                    args.number("--lr", m == Finetune.Method.PEQA ? 3e-4 : 2e-4, 0, 1),
                    args.integer("--warmup", (int) Math.ceil(steps * 0.03), 0), args.number("--clip", 1.0, 0, 1e9),
                    args.number("--weight-decay", 0, 0, 1e9), args.integer("--seq", 256, 2),
                    args.integer("--batch", 4, 1),
                    args.number("--eval-fraction", 0.1, 0.001, 0.99), args.integer("--seed", 0, 0),
                    args.flag("--checkpointing"), Path.of(args.string("--out", "runs/finetune")),
                    scales == null ? null : Path.of(scales), args.integer("--checkpoint-every", 100, 0),
                    args.flag("--resume"), args.integer("--eval-every", 0, 0), args.integer("--eval-batches", 8, 0));
        } catch (IllegalArgumentException e) {
            throw new Args.UsageException(e.getMessage());
        }
    }

    private static Path path(Args args, String option, String what) {
        String v = args.string(option, null);
        if (v == null) {
            throw new Args.UsageException("finetune needs " + option + ", " + what);
        }
        return Path.of(v);
    }
}
