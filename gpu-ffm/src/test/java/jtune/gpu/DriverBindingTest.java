package jtune.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.gpu.driver.CudaContext;
import jtune.gpu.driver.CudaDriver;
import jtune.gpu.driver.CudaException;
import jtune.gpu.driver.CudaModule;
import jtune.gpu.driver.DeviceBuffer;
import jtune.gpu.driver.DriverUnavailableException;
import jtune.gpu.driver.Event;
import jtune.gpu.driver.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The binding without a GPU: a missing library or symbol is one sentence, and against the fake driver every
 * allowlisted call marshals its arguments as the C declarations say (the fake answers through the same
 * pointers, so a wrong layout reads back wrong).
 */
class DriverBindingTest {
    private static boolean driverInstalled() {
        try {
            SymbolLookup.libraryLookup(CudaDriver.LIBRARY, Arena.global());
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    @Test
    void aMissingLibraryIsOneSentence() {
        assertThatThrownBy(() -> CudaDriver.bind("libcuda-absent.so.1"))
                .isExactlyInstanceOf(DriverUnavailableException.class).hasMessage("libcuda-absent.so.1 not found");
    }

    @Test
    void aMissingSymbolIsNamed() {
        assertThatThrownBy(() -> CudaDriver.bind("libc.so.6")).isExactlyInstanceOf(DriverUnavailableException.class)
                .hasMessage("libc.so.6 has no cuGetErrorName (the driver is older than jtune needs: CUDA 12.0 or newer)");
    }

    @Test
    void withoutTheDriverTheProviderSaysSoAndLoadFailsTheSameWayEachTime() {
        Assumptions.assumeFalse(driverInstalled(), "libcuda.so.1 is installed here; this checks a machine without it");
        assertThat(new GpuBackendProvider().unavailableReason()).isEqualTo("libcuda.so.1 not found");
        for (int i = 0; i < 2; i++) {
            assertThatThrownBy(CudaDriver::load).isExactlyInstanceOf(DriverUnavailableException.class)
                    .hasMessage("libcuda.so.1 not found");
        }
    }

    @Test
    void checkCarriesTheErrorNameAndString() {
        CudaDriver d = FakeDriver.healthy();
        d.check(0, "cuInit");
        assertThatThrownBy(() -> d.check(2, "cuMemAlloc_v2")).isInstanceOfSatisfying(CudaException.class, e -> {
            assertThat(e).hasMessage("cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
            assertThat(e.result()).isEqualTo(2);
            assertThat(e.errorName()).isEqualTo("CUDA_ERROR_OUT_OF_MEMORY");
            assertThat(e.call()).isEqualTo("cuMemAlloc_v2");
        });
        assertThatThrownBy(() -> d.check(987, "cuLaunchKernel"))
                .hasMessage("cuLaunchKernel failed: CUresult 987 (unknown error)");
    }

    @Test
    void theProbeGivesOneReasonPerObstacle() {
        assertThat(GpuBackendProvider.reason(() -> FakeDriver.bind(100, 13000, 1, 9, 0, false)))
                .isEqualTo("cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)");
        assertThat(GpuBackendProvider.reason(() -> FakeDriver.bind(0, 11080, 1, 9, 0, false)))
                .isEqualTo("the driver supports CUDA 11.8, but jtune's PTX kernels (ISA 8.0) need CUDA 12.0 or newer");
        assertThat(GpuBackendProvider.reason(() -> FakeDriver.bind(0, 12040, 1, 8, 0, false))).isNull();
        assertThat(GpuBackendProvider.reason(() -> FakeDriver.bind(0, 13000, 0, 9, 0, false)))
                .isEqualTo("the driver reports no GPU");
        assertThat(GpuBackendProvider.reason(() -> FakeDriver.bind(0, 13000, 1, 7, 5, false)))
                .isEqualTo("GPU 0 (Fake GPU 0) has compute capability 7.5; jtune's kernels need 8.0 or newer");
        assertThat(GpuBackendProvider.reason(FakeDriver::healthy)).isNull();
        assertThat(GpuBackendProvider.reason(() -> CudaDriver.bind("libcuda-absent.so.1")))
                .isEqualTo("libcuda-absent.so.1 not found");
    }

    @Test
    void contextReportsTheDevice() {
        try (CudaContext c = CudaContext.open(FakeDriver.bind(0, 13010, 1, 8, 6, false), 0)) {
            assertThat(c.computeCapability()).isEqualTo(86);
            assertThat(c.multiprocessors()).isEqualTo(4);
            assertThat(c.totalMemory()).isEqualTo(8L << 30);
            assertThat(c.maxSharedMemoryOptin()).isEqualTo(227 * 1024);
            assertThat(c.describe()).isEqualTo("Fake GPU 0, compute 8.6, 4 SMs, 8.00 GiB");
            assertThat(c.driver().driverVersion()).isEqualTo(13010);
            assertThat(c.driver().memInfo()).containsExactly(7L << 30, 8L << 30);
        }
        assertThatThrownBy(() -> CudaContext.open(FakeDriver.healthy(), 1))
                .hasMessage("GPU 1 does not exist; this machine has 1 GPU");
    }

    @Test
    void aThreadDrivingTwoGpusSwitchesToTheContextOfEach() {
        CudaDriver d = FakeDriver.bind(0, 13000, 2, 9, 0, false);
        try (CudaContext c0 = CudaContext.open(d, 0); CudaContext c1 = CudaContext.open(d, 1)) {
            assertThat(FakeDriver.currentDevice()).as("after opening GPU 1").isEqualTo(1);
            for (int round = 0; round < 2; round++) {
                c0.makeCurrent();
                assertThat(FakeDriver.currentDevice()).isEqualTo(0);
                c1.makeCurrent();
                assertThat(FakeDriver.currentDevice()).isEqualTo(1);
            }
        }
    }

    @Test
    void theFakeLikeTheDriverRefusesMemoryCallsOnAThreadWithoutAContext() throws Exception {
        try (CudaContext c = CudaContext.open(FakeDriver.healthy(), 0)) {
            Throwable[] got = new Throwable[1];
            Thread t = new Thread(() -> {
                try {
                    c.driver().memAlloc(16);
                } catch (Throwable e) {
                    got[0] = e;
                }
            });
            t.start();
            t.join();
            assertThat(got[0]).isInstanceOf(CudaException.class)
                    .hasMessage("cuMemAlloc_v2 failed: CUDA_ERROR_INVALID_CONTEXT (invalid device context)");
        }
    }

    @Test
    void streamsAndEventsTime() {
        try (CudaContext c = CudaContext.open(FakeDriver.healthy(), 0);
             Stream s = new Stream(c); Event start = new Event(c); Event end = new Event(c)) {
            start.record(s);
            end.record(s);
            end.synchronize();
            s.synchronize();
            assertThat(end.millisSince(start)).isEqualTo(1.5f);
        }
    }

    @Test
    void buffersAreCountedAndTheSynchronousCopiesMoveBytes() {
        MemoryLedger ledger = new MemoryLedger();
        try (CudaContext c = CudaContext.open(FakeDriver.healthy(), 0); Arena a = Arena.ofConfined()) {
            CudaDriver d = c.driver();
            try (DeviceBuffer x = DeviceBuffer.allocate(c, 16, ledger, Category.WORKSPACE);
                 DeviceBuffer y = DeviceBuffer.allocate(c, 16, ledger, Category.WORKSPACE)) {
                assertThat(ledger.current(Category.WORKSPACE)).isEqualTo(32);
                d.memcpyHtoD(x.address(), a.allocateFrom(ValueLayout.JAVA_INT, 1, 2, 3, 4), 16);
                d.memcpyDtoD(y.address(), x.address(), 8);
                d.memsetD32(y.address() + 8, 0xdeadbeef, 2);
                MemorySegment back = a.allocate(16);
                d.memcpyDtoH(back, y.address(), 16);
                assertThat(back.toArray(ValueLayout.JAVA_INT)).containsExactly(1, 2, 0xdeadbeef, 0xdeadbeef);
            }
            assertThat(ledger.current(Category.WORKSPACE)).isZero();
            assertThatThrownBy(() -> DeviceBuffer.allocate(c, 0, ledger, Category.WORKSPACE))
                    .hasMessage("a device buffer needs at least 1 byte, got 0");
        }
    }

    @Test
    void moduleLoadCapturesTheJitLogs() {
        String ptx = ".version 9.0\n.target sm_80\n.address_size 64\n.visible .entry k(\n.param .u64 p\n)\n{\nret;\n}\n";
        try (CudaContext c = CudaContext.open(FakeDriver.healthy(), 0);
             CudaModule m = CudaModule.load(c, "k.ptx", ptx)) {
            assertThat(m.jitLog()).isEqualTo("fake JIT: " + ptx.length() + " bytes of PTX");
            assertThat(m.kernel("k", 1).name()).isEqualTo("k");
            assertThatThrownBy(() -> m.kernel("absent", 1))
                    .hasMessage("cuModuleGetFunction(absent) failed: CUDA_ERROR_NOT_FOUND (named symbol not found)");
        }
        try (CudaContext c = CudaContext.open(FakeDriver.bind(0, 13000, 1, 9, 0, true), 0)) {
            assertThatThrownBy(() -> CudaModule.load(c, "bad.ptx", ptx)).isInstanceOf(CudaException.class)
                    .hasMessage("cuModuleLoadDataEx failed: CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed; "
                            + "loading bad.ptx; JIT log: ptxas fatal: line 1: fake syntax error)");
        }
    }
}
