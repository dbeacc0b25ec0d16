package jtune.gpu;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The shipped PTX against its sources and its targets: each {@code src/main/cuda/*.cu} has exactly one committed
 * {@code .ptx}; where nvcc is installed, regenerating with {@code build-ptx.sh} gives the committed bytes (same
 * nvcc release only: another release writes other PTX); where ptxas is installed, every PTX file assembles for
 * every GPU generation jtune supports (at -O0: validity, not speed, is the point). The tools are found through $NVCC/$PTXAS, PATH, then /usr/local/cuda/bin;
 * a check whose tool is absent is skipped with that message.
 */
class PtxTest {
    /** Ampere (A100, RTX 30), Ada (L4, RTX 40), Hopper (H100, H200), Blackwell (B200, RTX 50). */
    static final List<String> TARGETS = List.of("sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120");

    private static final Path SOURCES = Path.of("src/main/cuda");
    private static final Path PTX = Path.of("src/main/resources/jtune/gpu/ptx");

    private static List<String> names(Path dir, String ext) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(ext))
                    .map(n -> n.substring(0, n.length() - ext.length())).sorted().toList();
        }
    }

    /** The tool's path, or null: $ENV, then PATH, then /usr/local/cuda/bin. */
    private static Path tool(String name) {
        String env = System.getenv(name.toUpperCase(java.util.Locale.ROOT));
        List<Path> candidates = new ArrayList<>();
        if (env != null) {
            candidates.add(Path.of(env));
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty()) {
                candidates.add(Path.of(dir, name));
            }
        }
        candidates.add(Path.of("/usr/local/cuda/bin", name));
        return candidates.stream().filter(Files::isExecutable).findFirst().orElse(null);
    }

    private record Run(int status, String output) {
    }

    private static Run run(List<String> command, String... env) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        for (int i = 0; i < env.length; i += 2) {
            pb.environment().put(env[i], env[i + 1]);
        }
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor(), out);
    }

    /** A module named NAME_sm90 uses Hopper's wgmma and targets sm_90a, which no other generation runs. */
    static List<String> targets(String module) {
        return module.endsWith("_sm90") ? List.of("sm_90a") : TARGETS;
    }

    @Test
    void everySourceHasExactlyOnePtxDeclaringIsa80ForItsTarget() throws IOException {
        assertThat(names(PTX, ".ptx")).isEqualTo(names(SOURCES, ".cu")).isNotEmpty();
        for (String name : names(PTX, ".ptx")) {
            List<String> lines = Files.readAllLines(PTX.resolve(name + ".ptx"));
            assertThat(lines).as(name + ".ptx").contains(".version 8.0",
                    ".target " + (name.endsWith("_sm90") ? "sm_90a" : "sm_80"), ".address_size 64");
        }
    }

    @Test
    void theCommittedPtxIsWhatTheSourcesCompileTo() throws Exception {
        Path nvcc = tool("nvcc");
        Assumptions.assumeTrue(nvcc != null, "nvcc not found: the PTX cannot be checked against its sources here");
        String release = run(List.of(nvcc.toString(), "--version")).output().lines()
                .filter(l -> l.startsWith("Cuda compilation tools")).findFirst().orElse("?");
        String made = Files.readString(PTX.resolve(names(PTX, ".ptx").getFirst() + ".ptx")).lines()
                .filter(l -> l.startsWith("// Cuda compilation tools")).findFirst().orElse("?").substring(3);
        Assumptions.assumeTrue(release.equals(made), "nvcc here is '" + release + "' but the PTX was made by '" + made
                + "'; another release writes other PTX, so only the same one is compared");
        Path out = Files.createTempDirectory("jtune-ptx");
        try {
            Run r = run(List.of("bash", "build-ptx.sh", out.toString()), "NVCC", nvcc.toString());
            assertThat(r.status()).as("build-ptx.sh: %s", r.output()).isZero();
            for (String name : names(SOURCES, ".cu")) {
                assertThat(Files.readString(out.resolve(name + ".ptx")))
                        .as("%s.ptx is out of date with %s.cu: run gpu-ffm/build-ptx.sh and commit the result", name, name)
                        .isEqualTo(Files.readString(PTX.resolve(name + ".ptx")));
            }
        } finally {
            try (Stream<Path> files = Files.list(out)) {
                for (Path f : files.toList()) {
                    Files.delete(f);
                }
            }
            Files.delete(out);
        }
    }

    @Test
    void everyPtxAssemblesForEveryTarget() throws Exception {
        Path ptxas = tool("ptxas");
        Assumptions.assumeTrue(ptxas != null, "ptxas not found: the PTX cannot be assembled here");
        List<String> failures = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(Runtime.getRuntime().availableProcessors());
        try {
            List<Future<String>> results = new ArrayList<>();
            for (String name : names(PTX, ".ptx")) {
                for (String target : targets(name)) {
                    results.add(pool.submit(() -> {
                        Run r = run(Arrays.asList(ptxas.toString(), "-O0", "-arch=" + target, "-o", "/dev/null",
                                PTX.resolve(name + ".ptx").toString()));
                        return r.status() == 0 ? null : name + ".ptx for " + target + ": " + r.output().strip();
                    }));
                }
            }
            for (Future<String> f : results) {
                if (f.get() != null) {
                    failures.add(f.get());
                }
            }
        } finally {
            pool.shutdown();
        }
        assertThat(failures).as("ptxas failures").isEmpty();
    }
}
