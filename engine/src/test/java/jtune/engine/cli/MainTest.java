package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class MainTest {
    private record Run(int status, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void helpListsTheCommands() {
        Run r = run("--help");
        assertThat(r.status()).isZero();
        assertThat(r.out()).contains("demo", "info", "bench gemm", "--threads", "--backend");
    }

    @Test
    void infoNamesTheBackendAndLogsTheChoiceOnce() {
        Run r = run("info", "--backend", "scalar");
        assertThat(r.status()).isZero();
        assertThat(r.out()).contains("backend     scalar, 32-bit vectors, 1 thread").contains("gpu");
        assertThat(r.err().lines().filter(l -> l.startsWith("jtune: backend"))).hasSize(1);
    }

    @Test
    void globalOptionsMayComeBeforeTheCommand() {
        Run r = run("--threads", "1", "--backend", "scalar", "info");
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.out()).contains("backend     scalar");
    }

    @Test
    void benchGemmPrintsJsonWithTheFlopRate() {
        Run r = run("bench", "gemm", "--backend", "scalar", "--m", "8", "--n", "5", "--k", "3", "--layout", "tn",
                "--repeat", "3", "--json");
        assertThat(r.status()).isZero();
        assertThat(r.out().strip()).startsWith("{").endsWith("}")
                .contains("\"layout\":\"tn\"", "\"m\":8", "\"n\":5", "\"k\":3", "\"gflops_median\":");
    }

    @Test
    void wrongUsageGetsOneSentenceAndExitCodeTwo() {
        for (String[] args : new String[][]{
                {"frobnicate"}, {"bench"}, {"bench", "gemm", "--m", "zero"}, {"bench", "gemm", "--m", "0"},
                {"bench", "gemm", "--layout", "xx"}, {"info", "--nonsense"}, {"bench", "gemm", "--m"}}) {
            Run r = run(args);
            assertThat(r.status()).as(String.join(" ", args)).isEqualTo(2);
            assertThat(r.err().lines().filter(l -> l.startsWith("jtune: ")).count()).isEqualTo(1);
            assertThat(r.err()).doesNotContain("Exception", "\tat ");
            assertThat(r.out()).isEmpty();
        }
    }

    @Test
    void unknownBackendIsNamedWithTheValidOnes() {
        Run r = run("info", "--backend", "tpu");
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).contains("--backend tpu is not one of auto, scalar").doesNotContain("\tat ");
    }

    @Test
    void debugAddsTheStackTrace() {
        Run r = run("info", "--backend", "tpu", "--debug");
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).contains("\tat ");
    }
}
