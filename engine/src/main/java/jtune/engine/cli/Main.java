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
              demo                      the embedded default run: machine info, then a GEMM benchmark
              info                      backend, vector width, threads, GPU, memory
              bench gemm                time C = A·B (f32) on the chosen backend
                  --m M --n N --k K     matrix sizes (default 1024 each)
                  --layout nn|nt|tn     A·B, A·Bᵀ or Aᵀ·B (default nn)
                  --repeat R            timed runs after warm-up; the median is reported (default 10)
                  --json                one JSON object instead of text
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
        List<String> words = argv.stream().filter(a -> !a.startsWith("-")).toList();
        String command = words.isEmpty() ? "help" : words.getFirst();
        if (argv.contains("--help") || argv.contains("-h") || command.equals("help")) {
            out.print(HELP.formatted(VERSION));
            return 0;
        }
        return switch (command) {
            case "info" -> info(parse(argv, Set.of(), Set.of("--json")), out, err);
            case "bench" -> bench(argv, out, err);
            case "demo" -> demo(parse(argv, Set.of(), Set.of()), out, err);
            default -> throw new Args.UsageException("unknown command '" + command + "'; the commands are demo, info, bench, help");
        };
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
        Args args = parse(argv, Set.of("--m", "--n", "--k", "--layout", "--repeat"), Set.of("--json"));
        List<String> pos = args.positional();
        if (pos.size() < 2 || !pos.get(1).equals("gemm")) {
            throw new Args.UsageException("bench needs a benchmark name; the benchmarks are: gemm");
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

    private static int demo(Args args, PrintStream out, PrintStream err) {
        info(args, out, err);
        out.println();
        out.println("GEMM, f32, C = A·B at 1024³ (median of 10 runs):");
        MemoryLedger ledger = new MemoryLedger();
        try (Backend b = backend(args, err).backend()) {
            out.println("  " + GemmBench.run(b, ledger, 1024, 1024, 1024, GemmBench.Layout.NN, 10).text());
        }
        out.println();
        out.println("memory ledger of that run:");
        out.print(ledger.table());
        return 0;
    }

}
