package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import jtune.gpu.GpuBackendProvider;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * {@code --device} of the jtune command with the GPU backend on the class path: where it cannot run, auto says
 * why and uses the CPU, and {@code --device cuda} stops with that reason (exit 1). In this package because
 * {@link Main#run} is package-private.
 */
class DeviceOptionTest {
    private record Run(int status, String out, String err) {
    }

    private static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static String unusable() {
        String why = new GpuBackendProvider().unavailableReason();
        Assumptions.assumeTrue(why != null, "a GPU is usable here; this checks a machine without one");
        return why;
    }

    @Test
    void infoSaysWhyCudaIsNotUsed() {
        String why = unusable();
        Run r = run("info");
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.err().lines().toList()).anySatisfy(l -> assertThat(l).startsWith("jtune: cuda: " + why + "; using "));
        assertThat(r.out()).contains("cuda unavailable (" + why + ")").contains("gpu         not used: cuda: " + why);
    }

    @Test
    void deviceCudaStopsWithTheReason() {
        String why = unusable();
        for (String[] command : new String[][]{{"info"}, {"train", "--steps", "1"}, {"bench", "gemm", "--m", "8"},
                {"bench", "train", "--steps", "1"}}) {
            String[] args = new String[command.length + 2];
            args[0] = "--device";
            args[1] = "cuda";
            System.arraycopy(command, 0, args, 2, command.length);
            Run r = run(args);
            assertThat(r.status()).isEqualTo(1);
            assertThat(r.err()).isEqualTo("jtune: --device cuda cannot run here: " + why + "\n");
        }
    }

    @Test
    void deviceCpuNeverLooksAtTheGpu() {
        Run r = run("--device", "cpu", "info");
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.err()).startsWith("jtune: backend ");
    }

    @Test
    void commandsThatKeepHostTensorsRefuseTheGpu() {
        Run r = run("--device", "cuda", "export", "--model", "x", "--out", "y");
        assertThat(r.status()).isEqualTo(1);
        assertThat(r.err()).contains("--device cuda: this command does not run on the GPU yet");
    }

    @Test
    void anUnknownDeviceIsAUsageError() {
        Run r = run("--device", "tpu", "info");
        assertThat(r.status()).isEqualTo(2);
        assertThat(r.err()).contains("--device must be auto, cpu or cuda, got 'tpu'");
    }
}
