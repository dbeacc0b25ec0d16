package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import jtune.cpu.SimdBackend;
import jtune.cpu.VectorWidth;
import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.BackendProvider;
import jtune.engine.backend.Backends;
import jtune.engine.backend.ScalarBackend;
import jtune.gpu.GpuBackend;
import jtune.gpu.GpuBackendProvider;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * With the engine, cpu-simd and the GPU backend on the class path: "auto" takes the best usable provider and says
 * why the better ones were passed over; {@code --device} narrows the choice to one kind of device.
 */
class BackendSelectionTest {
    @Test
    void bothProvidersAreFoundBestFirst() {
        assertThat(Backends.providers()).extracting(BackendProvider::name).containsSubsequence("cpu-simd", "scalar");
    }

    @Test
    void autoPicksTheSimdBackend() {
        Backends.Selection s = Backends.select(new BackendOptions("auto", 2, "cpu"));
        try (Backend b = s.backend()) {
            assertThat(b).isInstanceOf(SimdBackend.class);
            assertThat(b.threads()).isEqualTo(2);
            assertThat(s.logLine()).isEqualTo("backend cpu-simd, " + b.vectorBits() + "-bit vectors, 2 threads");
        }
    }

    @Test
    void aNamedBackendIsTakenEvenIfABetterOneExists() {
        try (Backend b = Backends.select(new BackendOptions("scalar", 0)).backend()) {
            assertThat(b).isInstanceOf(ScalarBackend.class);
        }
    }

    @Test
    void anUnusableBackendIsPassedOverWithTheReason() {
        // VectorWidth reads the property once, when first used: use it before the property is made invalid.
        assertThat(VectorWidth.BITS).isPositive();
        String before = System.getProperty(VectorWidth.PROPERTY);
        try {
            System.setProperty(VectorWidth.PROPERTY, "1024");
            Backends.Selection s = Backends.select(new BackendOptions("auto", 0, "cpu"));
            try (Backend b = s.backend()) {
                assertThat(b).isInstanceOf(ScalarBackend.class);
                assertThat(s.logLine()).startsWith("cpu-simd: ").contains("1024").endsWith("; using scalar, 32-bit vectors, 1 thread");
            }
            assertThatThrownBy(() -> Backends.select(new BackendOptions("cpu-simd", 0)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cpu-simd").hasMessageContaining("1024");
        } finally {
            if (before == null) {
                System.clearProperty(VectorWidth.PROPERTY);
            } else {
                System.setProperty(VectorWidth.PROPERTY, before);
            }
        }
    }

    @Test
    void unknownNamesAreListed() {
        assertThatThrownBy(() -> Backends.select(new BackendOptions("tpu", 0)))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--backend tpu is not one of auto, cuda, cpu-simd, scalar");
    }

    private static String gpuReason() {
        return new GpuBackendProvider().unavailableReason();
    }

    @Test
    void withoutAUsableGpuAutoPassesOverCudaWithTheReason() {
        String why = gpuReason();
        Assumptions.assumeTrue(why != null, "a GPU is usable here");
        Backends.Selection s = Backends.select(new BackendOptions("auto", 2));
        try (Backend b = s.backend()) {
            assertThat(b).isInstanceOf(SimdBackend.class);
            assertThat(s.logLine()).isEqualTo("cuda: " + why + "; using " + b.describe());
        }
        assertThatThrownBy(() -> Backends.select(new BackendOptions("auto", 0, "cuda")))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("--device cuda cannot run here: " + why);
        assertThatThrownBy(() -> Backends.select(new BackendOptions("cuda", 0)))
                .isInstanceOf(IllegalArgumentException.class).hasMessage("--backend cuda cannot run here: " + why);
    }

    @Test
    void withAUsableGpuAutoAndDeviceCudaPickIt() {
        Assumptions.assumeTrue(gpuReason() == null, "no usable GPU here: " + gpuReason());
        for (BackendOptions o : new BackendOptions[]{BackendOptions.DEFAULT, new BackendOptions("auto", 0, "cuda")}) {
            Backends.Selection s = Backends.select(o);
            try (Backend b = s.backend()) {
                assertThat(b).isInstanceOf(GpuBackend.class);
                assertThat(s.logLine()).startsWith("backend cuda, ");
            }
        }
    }

    @Test
    void aBackendOfAnotherDeviceThanTheOneAskedForIsRefused() {
        assertThatThrownBy(() -> Backends.select(new BackendOptions("cpu-simd", 0, "cuda")))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--backend cpu-simd runs on the cpu, not on the device --device cuda asks for");
        assertThatThrownBy(() -> new BackendOptions("auto", 0, "tpu")).isInstanceOf(IllegalArgumentException.class)
                .hasMessage("--device must be auto, cpu or cuda, got 'tpu'");
    }
}
