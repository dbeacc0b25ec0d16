package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.BackendProvider;
import jtune.engine.backend.Backends;
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
              bench gemm                time C = A·B (f32) on the chosen backend
                  --m M --n N --k K     matrix sizes (default 1024 each)
                  --layout nn|nt|tn     A·B, A·Bᵀ or Aᵀ·B (default nn)
                  --repeat R            timed runs after warm-up; the median is reported (default 10)
                  --json                one JSON object instead of text
              bench train               time full training steps (forward, backward, AdamW) on random tokens
                  --preset llama60m     the model (default llama60m)
                  --seq S --batch B     tokens per step (default 256 x 4)
                  --warmup W --steps N  untimed, then timed steps; the median is reported (default 2, 5)
                  --seed S              initialisation and tokens (default 0)
                  --checkpointing       recompute each block's activations in backward
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
              help                      this text

            global options:
              --backend auto|cpu-simd|scalar   which backend runs the kernels (default auto: the best usable)
              --threads N                      threads for the kernels (default 0: all cores)
              --debug                          print stack traces of errors
            """;

    private Main() {
    }

    public static void main(String[] argv) {
        System.exit(run(List.of(argv), System.out, System.err));
    }

    /** Runs one command; returns the exit status (0 ok, 1 failure, 2 wrong usage). */
    static int run(List<String> argv, PrintStream out, PrintStream err) {
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

    private static final Set<String> GLOBAL_VALUED = Set.of("--backend", "--threads");
    private static final Set<String> GLOBAL_FLAGS = Set.of("--debug", "--help", "-h");

    private static int dispatch(List<String> argv, PrintStream out, PrintStream err) throws IOException {
        String command = command(argv);
        if (argv.contains("--help") || argv.contains("-h") || command.equals("help")) {
            out.print(HELP.formatted(VERSION));
            return 0;
        }
        return switch (command) {
            case "info" -> info(parse(argv, Set.of(), Set.of("--json")), out, err);
            case "bench" -> bench(argv, out, err);
            case "demo" -> demo(parse(argv, DemoCommand.VALUED, Set.of()), out, err);
            case "train" -> train(parse(argv, TrainCommand.VALUED, TrainCommand.FLAGS), out, err);
            default -> throw new Args.UsageException("unknown command '" + command + "'; the commands are demo, train, info, bench, help");
        };
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
            if (GLOBAL_VALUED.contains(a)) {
                i++;
            }
        }
        return "help";
    }

    private static Args parse(List<String> argv, Set<String> valued, Set<String> flags) {
        Set<String> v = new java.util.HashSet<>(GLOBAL_VALUED);
        v.addAll(valued);
        Set<String> f = new java.util.HashSet<>(GLOBAL_FLAGS);
        f.addAll(flags);
        return new Args(argv, v, f);
    }

    private static Backends.Selection backend(Args args, PrintStream err) {
        BackendOptions options = new BackendOptions(args.string("--backend", "auto"), args.integer("--threads", 0, 0));
        Backends.Selection s = Backends.select(options);
        err.println("jtune: " + s.logLine());
        return s;
    }

    private static int info(Args args, PrintStream out, PrintStream err) {
        try (Backend b = backend(args, err).backend()) {
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

    /** Whether a CUDA driver is present; this build has no GPU backend yet either way. */
    private static String gpu() {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup.libraryLookup("libcuda.so.1", arena);
            return "libcuda.so.1 found, but this build has no GPU backend (the gpu-ffm module is not built yet)";
        } catch (IllegalArgumentException e) {
            return "none: libcuda.so.1 not found";
        } catch (IllegalCallerException e) {
            return "not probed: native access is not enabled (--enable-native-access=jtune.engine)";
        }
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
        Set<String> gemmOptions = Set.of("--m", "--n", "--k", "--layout", "--repeat");
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
        try (Backend b = backend(args, err).backend()) {
            GemmBench.Result r = GemmBench.run(b, new MemoryLedger(), m, n, k, layout, repeat);
            out.println(args.flag("--json") ? r.json() : r.text());
        }
        return 0;
    }

    private static int benchTrain(Args args, PrintStream out, PrintStream err) {
        if (args.positional().size() > 2) {
            throw new Args.UsageException("unexpected argument '" + args.positional().get(2) + "' after 'bench train'");
        }
        try (Backend b = backend(args, err).backend()) {
            TrainBench.Result r = TrainBench.run(b, args.string("--preset", "llama60m"), args.integer("--seq", 256, 1),
                    args.integer("--batch", 4, 1), args.integer("--warmup", 2, 0), args.integer("--steps", 5, 1),
                    args.integer("--seed", 0, 0), args.flag("--checkpointing"), err);
            out.println(args.flag("--json") ? r.json() : r.text());
            if (!args.flag("--json")) {
                out.print(r.ledger().table());
            }
        }
        return 0;
    }

    private static int train(Args args, PrintStream out, PrintStream err) throws IOException {
        try (Backend b = backend(args, err).backend()) {
            return TrainCommand.run(args, b, out, err);
        }
    }

    private static int demo(Args args, PrintStream out, PrintStream err) throws IOException {
        try (Backend b = backend(args, err).backend()) {
            return DemoCommand.run(args, b, out, err);
        }
    }

}
