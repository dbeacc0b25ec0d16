package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.ServiceLoader;
import java.util.Set;
import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.BackendProvider;
import jtune.engine.backend.Backends;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.MemoryLedger;

/** The {@code jtune} command. */
public final class Main {
    static final String VERSION = "0.1.0";

    private static final String HELP = """
            jtune %s: train and fine-tune LLaMA-family models on the JVM, in little memory.

            usage: jtune [global options] <command> [options]

            commands:
              demo                      the embedded default run: pre-trains a small LLaMA on generated stories
                  --minutes M           time budget (default 2); the steps are chosen to fit it
                  --steps N             exactly N steps instead
                  --out DIR             run folder (default runs/demo-<date>-<time>)
                  --seed S              corpus, initialisation, batches and sampling (default 1)
              info                      backend, vector width, threads, GPU, memory
              bench gemm                time C = A·B on the chosen backend
                  --m M --n N --k K     matrix sizes (default 1024 each)
                  --layout nn|nt|tn     A·B, A·Bᵀ or Aᵀ·B (default nn)
                  --dtype f32|bf16      element type of A and B (default f32; bf16 on the GPU: tensor cores)
                  --repeat R            timed runs after warm-up; the median is reported (default 10)
                  --json                one JSON object instead of text
              bench train               time full training steps (forward, backward, AdamW) on random tokens
                  --preset llama60m     the model (default llama60m)
                  --seq S --batch B     tokens per step (default 256 x 4)
                  --warmup W --steps N  untimed, then timed steps; the median is reported (default 2, 5)
                  --seed S              initialisation and tokens (default 0)
                  --checkpointing       recompute each block's activations in backward
                  --profile             time each backend call of the timed steps, a table on stderr (syncs
                                        after each call: slower, its tokens/s are not benchmark figures)
                  --json                one JSON object instead of text
              train                     pre-train a model on a text file (byte-level tokens)
                  --preset tiny|llama60m  the model (default tiny), or --config FILE: JSON of LlamaConfig fields
                  --data FILE           the training text; the last --eval-fraction (default 0.1) is held out
                  --seq S --batch B     tokens per micro-batch (default 256 x 4)
                  --accum A             micro-batches per update (default 1)
                  --steps N             updates (default 1000)
                  --optimizer adamw|sgd (default adamw); --momentum M for sgd (default 0.9)
                  --lr LR --weight-decay WD --clip C   (default 1e-3, 0.1, 1.0; --clip 0: none)
                  --schedule cosine|constant --warmup W --min-lr-ratio R   (default cosine, steps/10, 0.1)
                  --eval-every N --eval-batches N   (default steps/10, 8)
                  --checkpoint-every N  (default 1000; a checkpoint is also written at the end and on Ctrl-C)
                  --out DIR             run folder (default runs/train)
                  --resume              continue the run in --out from its checkpoint
                  --seed S              initialisation and batch order (default 0)
                  --checkpointing       recompute each block's activations in backward (less memory)
                  --json                one JSON line per step on stdout
              eval                      perplexity of a model on a text file (non-overlapping windows)
                  --model PATH          a Hugging Face folder, a llama2.c .bin or a jtune checkpoint
                  --tokenizer FILE      tokenizer.json or llama2.c tokenizer.bin (default: found with the model)
                  --scales DIR          with a PEQA scale set of jtune finetune (the model RTN-quantized as the set
                                        says, or a folder of jtune quantize as stored); needs the methods module
                  --adapter DIR         with a LoRA adapter in PEFT's layout (adapter_config.json,
                                        adapter_model.safetensors) over the model; needs the methods module
                  --data FILE           the text (CRLF read as LF), tokenized whole with the tokenizer's BOS
                  --seq N               tokens per window (default 2048, or the model's positions if fewer)
                  --json                one JSON object instead of text
              generate                  continue a prompt, streaming the text (key/value cache)
                  --model PATH --tokenizer FILE --scales DIR --adapter DIR   as for eval
                  --prompt TEXT         the start of the text (default empty: from BOS alone)
                  --steps N             new tokens at most (default 256); also stops at EOS or BOS
                  --temperature T       0 takes the most likely token (default 1.0)
                  --top-p P --top-k K   nucleus and top-k sampling (default 0.9 and 0: off)
                  --seed S              the sampling's seed (default: from the clock; printed at the end)
              export                    write a model as a Hugging Face folder (config, f32 safetensors, tokenizer)
                  --model PATH          a Hugging Face folder, a llama2.c .bin or a jtune checkpoint
                  --tokenizer FILE      tokenizer.json or llama2.c tokenizer.bin (default: found with the model)
                  --out DIR             a new or empty folder; written whole or not at all
              help                      this text

            global options:
              --backend auto|cuda|cpu-simd|scalar
                                               which backend runs the kernels (default auto: the best usable)
              --threads N                      threads for the kernels (default 0: all cores)
              --device auto|cpu|cuda           where tensors live (default auto: the GPU if one is usable; info,
                                               train, bench gemm and bench train run on it, the others on the CPU)
              --debug                          print stack traces of errors
            """;

    private Main() {
    }

    public static void main(String[] argv) {
        System.exit(run(List.of(argv), System.out, System.err));
    }

    /**
     * Runs one command, as {@link #main} does but without exiting (for embedding, and for the tests of commands that
     * other modules provide); returns the exit status (0 ok, 1 failure, 2 wrong usage).
     */
    public static int run(List<String> argv, PrintStream out, PrintStream err) {
        boolean debug = argv.contains("--debug");
        try {
            return dispatch(argv, out, err);
        } catch (Args.UsageException e) {
            err.println("jtune: " + e.getMessage() + " (see jtune --help)");
            return 2;
        } catch (RuntimeException | IOException e) {
            err.println("jtune: " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            if (debug) {
                e.printStackTrace(err);
            }
            return 1;
        }
    }

    private static int dispatch(List<String> argv, PrintStream out, PrintStream err) throws IOException {
        String command = command(argv);
        if (argv.contains("--help") || argv.contains("-h") || command.equals("help")) {
            out.print(help());
            return 0;
        }
        return switch (command) {
            case "info" -> info(parse(argv, Set.of(), Set.of("--json")), out, err);
            case "bench" -> bench(argv, out, err);
            case "demo" -> demo(parse(argv, DemoCommand.VALUED, Set.of()), out, err);
            case "train" -> train(parse(argv, TrainCommand.VALUED, TrainCommand.FLAGS), out, err);
            case "eval" -> eval(parse(argv, EvalCommand.VALUED, EvalCommand.FLAGS), out, err);
            case "generate" -> generate(parse(argv, GenerateCommand.VALUED, Set.of()), out, err);
            case "export" -> export(parse(argv, ExportCommand.VALUED, Set.of()), out, err);
            default -> provided(command, argv, out, err);
        };
    }

    /** The commands other modules provide, in the order {@link ServiceLoader} finds them. */
    private static List<CommandProvider> providers() {
        List<CommandProvider> list = new java.util.ArrayList<>();
        ServiceLoader.load(CommandProvider.class, Main.class.getClassLoader()).forEach(list::add);
        return list;
    }

    /** The help text: the engine's commands, then the provided ones, then the global options. */
    private static String help() {
        String text = HELP.formatted(VERSION);
        StringBuilder provided = new StringBuilder();
        providers().forEach(p -> provided.append(p.help()));
        int at = text.indexOf("  help  ");
        return text.substring(0, at) + provided + text.substring(at);
    }

    /** Runs a command another module provides, or fails naming the commands there are. */
    private static int provided(String command, List<String> argv, PrintStream out, PrintStream err) throws IOException {
        List<CommandProvider> providers = providers();
        for (CommandProvider p : providers) {
            if (p.name().equals(command)) {
                Args args = parse(argv, p.valued(), p.flags());
                try (Backend b = backend(args, err).backend()) {
                    return p.run(args, b, out, err);
                }
            }
        }
        StringBuilder names = new StringBuilder("demo, train, eval, generate, export, ");
        providers.forEach(p -> names.append(p.name()).append(", "));
        throw new Args.UsageException("unknown command '" + command + "'; the commands are " + names + "info, bench, help");
    }

    /**
     * The command word: the first argument that is neither a global option nor the value of one
     * ({@code jtune --threads 2 train} runs train); "help" when there is none.
     */
    private static String command(List<String> argv) {
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            if (!a.startsWith("-")) {
                return a;
            }
            if (Args.GLOBAL_VALUED.contains(a)) {
                i++;
            }
        }
        return "help";
    }

    private static Args parse(List<String> argv, Set<String> valued, Set<String> flags) {
        Set<String> v = new java.util.HashSet<>(Args.GLOBAL_VALUED);
        v.addAll(valued);
        Set<String> f = new java.util.HashSet<>(Args.GLOBAL_FLAGS);
        f.addAll(flags);
        return new Args(argv, v, f);
    }

    /** The backend for a command that computes on host tensors: {@code --device auto} means the CPU here. */
    private static Backends.Selection backend(Args args, PrintStream err) {
        return backend(args, err, false);
    }

    /**
     * The backend the global options ask for. {@code onDevice}: the command allocates its tensors from the
     * backend's memory, so it can run on a GPU; otherwise {@code --device cuda} fails with that sentence.
     */
    private static Backends.Selection backend(Args args, PrintStream err, boolean onDevice) {
        String device = args.string("--device", "auto");
        if (!List.of("auto", "cpu", "cuda").contains(device)) {
            throw new Args.UsageException("--device must be auto, cpu or cuda, got '" + device + "'");
        }
        if (!onDevice && device.equals("cuda")) {
            throw new IllegalArgumentException("--device cuda: this command does not run on the GPU yet (info, "
                    + "train, bench gemm and bench train do); use --device cpu");
        }
        BackendOptions options = new BackendOptions(args.string("--backend", "auto"), args.integer("--threads", 0, 0),
                onDevice ? device : "cpu");
        Backends.Selection s = Backends.select(options);
        err.println("jtune: " + s.logLine());
        return s;
    }

    private static int info(Args args, PrintStream out, PrintStream err) {
        try (Backend b = backend(args, err, true).backend()) {
            out.printf(Locale.ROOT, "jtune       %s%n", VERSION);
            out.printf(Locale.ROOT, "java        %s (%s) at %s%n", Runtime.version(), System.getProperty("java.vm.vendor"),
                    System.getProperty("java.home"));
            out.printf(Locale.ROOT, "backend     %s%n", b.describe());
            out.printf(Locale.ROOT, "backends    %s%n", availability());
            out.printf(Locale.ROOT, "cores       %d%n", Runtime.getRuntime().availableProcessors());
            out.printf(Locale.ROOT, "gpu         %s%n", gpu());
            out.printf(Locale.ROOT, "memory      %s physical, %s JVM heap limit%n", physicalMemory(),
                    MemoryLedger.human(Runtime.getRuntime().maxMemory()));
        }
        return 0;
    }

    /** Each provider with "ok" or the reason it cannot run here. */
    private static String availability() {
        StringBuilder sb = new StringBuilder();
        for (BackendProvider p : Backends.providers()) {
            String why = p.unavailableReason();
            if (!sb.isEmpty()) {
                sb.append("; ");
            }
            sb.append(p.name()).append(why == null ? " ok" : " unavailable (" + why + ")");
        }
        return sb.toString();
    }

    /** Whether a GPU backend can run here, or why not ("not used: cuda: libcuda.so.1 not found"). */
    private static String gpu() {
        for (BackendProvider p : Backends.providers()) {
            if (p.device() == Device.Kind.CUDA) {
                String why = p.unavailableReason();
                return why == null ? p.name() + " usable (--device cuda)" : "not used: " + p.name() + ": " + why;
            }
        }
        return "not used: this build has no GPU backend (the jtune.gpu module is not on the module path)";
    }

    private static String physicalMemory() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    String[] parts = line.trim().split("\\s+");
                    return MemoryLedger.human(Long.parseLong(parts[1]) * 1024);
                }
            }
        } catch (IOException | RuntimeException e) {
            return "unknown (" + e.getMessage() + ")";
        }
        return "unknown";
    }

    private static int bench(List<String> argv, PrintStream out, PrintStream err) {
        Set<String> gemmOptions = Set.of("--m", "--n", "--k", "--layout", "--repeat", "--dtype");
        Set<String> anyOptions = new java.util.HashSet<>(gemmOptions);
        anyOptions.addAll(TrainBench.OPTIONS);
        List<String> which = parse(argv, anyOptions, TrainBench.FLAGS).positional();
        if (which.size() >= 2 && which.get(1).equals("train")) {
            return benchTrain(parse(argv, TrainBench.OPTIONS, TrainBench.FLAGS), out, err);
        }
        Args args = parse(argv, gemmOptions, Set.of("--json"));
        List<String> pos = args.positional();
        if (pos.size() < 2 || !pos.get(1).equals("gemm")) {
            throw new Args.UsageException("bench needs a benchmark name; the benchmarks are: gemm, train");
        }
        if (pos.size() > 2) {
            throw new Args.UsageException("unexpected argument '" + pos.get(2) + "' after 'bench gemm'");
        }
        GemmBench.Layout layout = GemmBench.Layout.parse(args.string("--layout", "nn"));
        int m = args.integer("--m", 1024, 1), n = args.integer("--n", 1024, 1), k = args.integer("--k", 1024, 1);
        int repeat = args.integer("--repeat", 10, 1);
        String dtype = args.string("--dtype", "f32");
        if (!dtype.equals("f32") && !dtype.equals("bf16")) {
            throw new Args.UsageException("--dtype must be f32 or bf16, got '" + dtype + "'");
        }
        try (Backend b = backend(args, err, true).backend()) {
            GemmBench.Result r = GemmBench.run(b, new MemoryLedger(), dtype.equals("f32") ? DType.F32 : DType.BF16, m, n,
                    k, layout, repeat);
            out.println(args.flag("--json") ? r.json() : r.text());
        }
        return 0;
    }

    private static int benchTrain(Args args, PrintStream out, PrintStream err) {
        if (args.positional().size() > 2) {
            throw new Args.UsageException("unexpected argument '" + args.positional().get(2) + "' after 'bench train'");
        }
        try (Backend b = backend(args, err, true).backend()) {
            TrainBench.Result r = TrainBench.run(b, args.string("--preset", "llama60m"), args.integer("--seq", 256, 1),
                    args.integer("--batch", 4, 1), args.integer("--warmup", 2, 0), args.integer("--steps", 5, 1),
                    args.integer("--seed", 0, 0), args.flag("--checkpointing"), args.flag("--profile"), err);
            out.println(args.flag("--json") ? r.json() : r.text());
            if (!args.flag("--json")) {
                out.print(r.ledger().table());
                out.print(TrainBench.scratchLine(b));
            }
        }
        return 0;
    }

    private static int export(Args args, PrintStream out, PrintStream err) throws IOException {
        try (Backend b = backend(args, err).backend()) {
            return ExportCommand.run(args, b, out, err);
        }
    }

    private static int eval(Args args, PrintStream out, PrintStream err) throws IOException {
        EvalCommand.Options o = EvalCommand.Options.parse(args);
        try (Backend b = backend(args, err).backend()) {
            return EvalCommand.run(o, b, out, err);
        }
    }

    private static int generate(Args args, PrintStream out, PrintStream err) throws IOException {
        GenerateCommand.Options o = GenerateCommand.Options.parse(args);
        try (Backend b = backend(args, err).backend()) {
            return GenerateCommand.run(o, b, out, err);
        }
    }

    private static int train(Args args, PrintStream out, PrintStream err) throws IOException {
        try (Backend b = backend(args, err, true).backend()) {
            return TrainCommand.run(args, b, out, err);
        }
    }

    private static int demo(Args args, PrintStream out, PrintStream err) throws IOException {
        try (Backend b = backend(args, err).backend()) {
            return DemoCommand.run(args, b, out, err);
        }
    }

}
