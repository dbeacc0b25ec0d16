package jtune.gpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.gpu.driver.CudaContext;
import jtune.gpu.driver.Kernel;
import org.junit.jupiter.api.Test;

/**
 * The host side of {@link GpuBackend} over the fake driver: kernel lookup in the shipped PTX, device tensors
 * from a pool and the counted copies, the ops that are driver calls (fill, copies), which kernel a product
 * picks and the arguments it packs. No kernel runs here; their results are checked on a GPU by the
 * conformance suites in src-test.
 */
class GpuBackendHostSideTest {
    private static final Pattern ENTRY = Pattern.compile("\\.entry (\\w+)\\(([^)]*)\\)");

    @Test
    void everyKernelExistsInThePtxWithTheArgumentCountItIsCalledWith() throws Exception {
        List<Kernel> all = new ArrayList<>();
        try (CudaContext c = CudaContext.open(FakeDriver.healthy(), 0); Kernels k = new Kernels(c)) {
            for (Field f : Kernels.class.getDeclaredFields()) {
                if (f.getType() == Kernel.class) {
                    all.add((Kernel) f.get(k));
                } else if (f.getType() == Kernel[].class) {
                    all.addAll(List.of((Kernel[]) f.get(k)));
                }
            }
        }
        StringBuilder ptx = new StringBuilder();
        for (String file : new String[]{"elementwise", "reduce", "rows", "loss", "embedding", "gemm", "gemm_sm90"}) {
            ptx.append(resource(file + ".ptx"));
        }
        // The fake GPU has compute capability 9.0, so the four Hopper GEMMs are loaded too.
        assertThat(all).hasSize(40);
        for (Kernel kernel : all) {
            Matcher m = ENTRY.matcher(ptx);
            int params = -1;
            while (m.find()) {
                if (m.group(1).equals(kernel.name())) {
                    params = m.group(2).split(",").length;
                }
            }
            assertThat(params).as("parameters of %s in the PTX", kernel.name()).isEqualTo(kernel.arguments());
        }
    }

    private static String resource(String file) throws IOException {
        try (InputStream in = GpuBackend.class.getResourceAsStream("/jtune/gpu/ptx/" + file)) {
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    void deviceTensorsAreCountedAndCopiedExplicitly() {
        long before = FakeDriver.allocated();
        MemoryLedger ledger = new MemoryLedger();
        try (GpuBackend b = GpuBackend.open(FakeDriver.healthy(), 0); MemoryPool pool = b.pool(ledger)) {
            assertThat(b.describe()).isEqualTo("cuda, Fake GPU 0, compute 9.0, 4 SMs, 8.00 GiB, driver 13.0");
            assertThat(b.workspaceLedger().current(Category.WORKSPACE)).as("the error flag").isEqualTo(256);
            Tensor x = pool.allocate("x", DType.F32, Category.ACTIVATIONS, 3, 5);
            assertThat(x.device()).isEqualTo(Device.cuda(0));
            assertThat(x.segment().byteSize()).isZero();
            assertThat(ledger.current(Category.ACTIVATIONS)).isEqualTo(60);
            assertThat(x.toFloatArray()).containsOnly(0f);
            float[] v = new float[15];
            for (int i = 0; i < v.length; i++) {
                v[i] = i - 7.5f;
            }
            x.copyFrom(v);
            assertThat(x.toFloatArray()).containsExactly(v);
            assertThat(b.memory().bytesToDevice()).isEqualTo(60);
            assertThat(b.memory().bytesToHost()).isEqualTo(120);
            assertThat(b.memory().transfers()).isEqualTo(3);
            assertThatThrownBy(() -> x.get(0, 0)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("tensor 'x' [3, 5] f32 on cuda:0").hasMessageContaining("host tensors");

            b.fill(x, -2.25f);
            assertThat(x.toFloatArray()).containsOnly(-2.25f);

            try (MemoryPool host = new MemoryPool(ledger)) {
                Tensor h = host.allocate("h", DType.F32, Category.WORKSPACE, 3, 5).copyFrom(v);
                b.copy(h, x);
                Tensor y = pool.allocate("y", DType.F32, Category.WORKSPACE, 3, 5);
                b.copy(x, y);
                Tensor back = host.allocate("back", DType.F32, Category.WORKSPACE, 3, 5);
                b.copy(y, back);
                assertThat(back.toFloatArray()).containsExactly(v);
                assertThatThrownBy(() -> b.add(h, x, y)).isInstanceOf(IllegalArgumentException.class)
                        .hasMessage("add: tensor 'h' [3, 5] f32 on cpu is not on cuda:0, where the cuda backend computes;"
                                + " allocate it from the backend's pool or copy it there first");
                assertThatThrownBy(() -> b.copy(h.transpose(0, 1), pool.allocate("t", DType.F32, Category.WORKSPACE, 5, 3)))
                        .hasMessageContaining("contiguous tensors between the host and cuda:0 only");
            }
        }
        assertThat(FakeDriver.allocated()).as("device bytes still allocated after the pool and backend closed")
                .isEqualTo(before);
    }

    @Test
    void anotherThreadMakesTheContextCurrentBeforeItsDriverCalls() throws Exception {
        try (GpuBackend b = GpuBackend.open(FakeDriver.healthy(), 0); MemoryPool pool = b.pool(new MemoryLedger())) {
            Tensor x = pool.allocate("x", DType.F32, Category.WORKSPACE, 2, 3);
            Throwable[] failure = new Throwable[1];
            float[][] seen = new float[1][];
            // Allocation, zeroing, copies both ways, a driver op, a launch and the pool's blocks freed, all from a
            // thread of their own: the fake refuses memory calls and launches on a thread without a current context.
            Thread worker = new Thread(() -> {
                try (MemoryPool other = b.pool(new MemoryLedger())) {
                    Tensor y = other.allocate("y", DType.F32, Category.WORKSPACE, 2, 3)
                            .copyFrom(new float[]{1, 2, 3, 4, 5, 6});
                    b.fill(x, 0.5f);
                    b.add(x, y, y);
                    b.synchronize();
                    seen[0] = x.toFloatArray();
                } catch (Throwable e) {
                    failure[0] = e;
                }
            });
            worker.start();
            worker.join();
            assertThat(failure[0]).isNull();
            assertThat(seen[0]).containsOnly(0.5f);
            assertThat(FakeDriver.lastLaunch().name()).isEqualTo("add_f32");
        }
    }

    @Test
    void aProductOfFewTilesOverALongKIsSplitAlongKAndSummedInASecondKernel() {
        // The fake GPU has 4 multiprocessors: one 128x128 tile of C may take 8 slices of K (at most 2 tiles a
        // multiprocessor), each of 512 (4096 / 8).
        try (GpuBackend b = GpuBackend.open(FakeDriver.healthy(), 0); MemoryPool pool = b.pool(new MemoryLedger())) {
            Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 64, 4096);
            Tensor w = pool.allocate("w", DType.F32, Category.WORKSPACE, 96, 4096);
            Tensor c = pool.allocate("c", DType.F32, Category.WORKSPACE, 64, 96);
            b.matmul(a, false, w, true, c, 0.5f, 1f);
            FakeDriver.Launch l = FakeDriver.lastLaunch();
            assertThat(l.name()).isEqualTo("gemm_splitk_reduce");
            assertThat(FakeDriver.argument(1)).isEqualTo(c.segment().address());
            assertThat(new long[]{FakeDriver.argument(2), FakeDriver.argument(3), FakeDriver.argument(4),
                    FakeDriver.argument(5)}).containsExactly(64, 96, 96, 8);
            assertThat(Float.intBitsToFloat((int) FakeDriver.argument(6))).isEqualTo(0.5f);
            assertThat(Float.intBitsToFloat((int) FakeDriver.argument(7))).isEqualTo(1f);
            // The 8 partial products (64 x 96 f32 each) are the backend's own scratch, counted in its ledger.
            assertThat(b.workspaceLedger().current(Category.WORKSPACE)).isGreaterThanOrEqualTo(256 + 8L * 64 * 96 * 4);

            // A K of 4100 has no slicing into multiples of 8: one kernel.
            b.matmul(pool.allocate("a2", DType.F32, Category.WORKSPACE, 64, 4100), false,
                    pool.allocate("w2", DType.F32, Category.WORKSPACE, 96, 4100), true, c, 1f, 0f);
            assertThat(FakeDriver.lastLaunch().name()).isEqualTo("gemm_f32_nt");
            assertThat(FakeDriver.argument(5)).isEqualTo(4100);
        }
    }

    @Test
    void beforeHopperAlignedBf16GoesToTheMmaSyncKernel() {
        try (GpuBackend b = GpuBackend.open(FakeDriver.bind(0, 13000, 1, 8, 9, false), 0);
             MemoryPool pool = b.pool(new MemoryLedger())) {
            Tensor a = pool.allocate("a", DType.BF16, Category.WORKSPACE, 300, 72);
            Tensor w = pool.allocate("w", DType.BF16, Category.WORKSPACE, 200, 72);
            b.matmul(a, false, w, true, pool.allocate("c", DType.F32, Category.WORKSPACE, 300, 200), 0.5f, 0f);
            FakeDriver.Launch l = FakeDriver.lastLaunch();
            assertThat(l.name()).isEqualTo("gemm_bf16_nt_a");
            assertThat(l.grid()).containsExactly(2, 3, 1);
            assertThat(l.block()).containsExactly(256, 1, 1);
            assertThat(l.shared()).isEqualTo(65536);
        }
    }

    @Test
    void matmulPicksTheKernelForTheTypeLayoutAndAlignmentAndPacksItsArguments() {
        try (GpuBackend b = GpuBackend.open(FakeDriver.healthy(), 0); MemoryPool pool = b.pool(new MemoryLedger())) {
            Tensor a = pool.allocate("a", DType.BF16, Category.WORKSPACE, 300, 72);
            Tensor w = pool.allocate("w", DType.BF16, Category.WORKSPACE, 200, 72);
            Tensor c = pool.allocate("c", DType.F32, Category.WORKSPACE, 300, 200);
            b.matmul(a, false, w, true, c, 0.5f, 0f);
            FakeDriver.Launch l = FakeDriver.lastLaunch();
            // Compute capability 9.0: the wgmma kernel, a 128×256 tile of C a block, 4 stages of 48 KiB and 1 KiB.
            assertThat(l.name()).isEqualTo("gemm_bf16_nt_sm90");
            assertThat(l.grid()).containsExactly(1, 3, 1);
            assertThat(l.block()).containsExactly(256, 1, 1);
            assertThat(l.shared()).isEqualTo(4 * 48 * 1024 + 1024);
            assertThat(FakeDriver.argument(0)).isEqualTo(a.segment().address());
            assertThat(FakeDriver.argument(1)).isEqualTo(w.segment().address());
            assertThat(FakeDriver.argument(2)).isEqualTo(c.segment().address());
            assertThat(new long[]{FakeDriver.argument(3), FakeDriver.argument(4), FakeDriver.argument(5)})
                    .containsExactly(300, 200, 72);
            assertThat(new long[]{FakeDriver.argument(6), FakeDriver.argument(7), FakeDriver.argument(8)})
                    .containsExactly(72, 72, 200);
            assertThat(Float.intBitsToFloat((int) FakeDriver.argument(12))).isEqualTo(0.5f);
            assertThat(Float.intBitsToFloat((int) FakeDriver.argument(13))).isEqualTo(0f);

            // A view one element in: no longer 16-byte aligned, so the element-wise loader.
            b.matmul(a.slice(1, 1, 72), true, pool.allocate("b2", DType.BF16, Category.WORKSPACE, 300, 41).slice(1, 1, 41),
                    false, pool.allocate("c2", DType.F32, Category.WORKSPACE, 71, 40), 1f, 1f);
            assertThat(FakeDriver.lastLaunch().name()).isEqualTo("gemm_bf16_tn_u");
            assertThat(FakeDriver.argument(0)).isEqualTo(a.segment().address() + 2);

            Tensor x = pool.allocate("x", DType.F32, Category.WORKSPACE, 4, 64, 32);
            Tensor y = pool.allocate("y", DType.F32, Category.WORKSPACE, 4, 64, 16);
            b.matmul(x, true, y, false, pool.allocate("z", DType.F32, Category.WORKSPACE, 4, 32, 16), 1f, 0f);
            l = FakeDriver.lastLaunch();
            assertThat(l.name()).isEqualTo("gemm_f32_tn");
            assertThat(l.grid()).containsExactly(1, 1, 4);
            assertThat(l.shared()).isZero();
            assertThat(new long[]{FakeDriver.argument(9), FakeDriver.argument(10), FakeDriver.argument(11)})
                    .containsExactly(64 * 32, 64 * 16, 32 * 16);

            assertThatThrownBy(() -> b.matmul(a, false, pool.allocate("f", DType.F32, Category.WORKSPACE, 72, 5), false,
                    pool.allocate("o", DType.F32, Category.WORKSPACE, 300, 5), 1f, 0f))
                    .hasMessage("matmul: tensor 'a' [300, 72] bf16 on cuda:0 must be f32, not bf16");
        }
    }

    @Test
    void quantizedOperationsSayTheyAreNotThereYet() {
        try (GpuBackend b = GpuBackend.open(FakeDriver.healthy(), 0)) {
            assertThatThrownBy(() -> b.dequantize(null, null)).isInstanceOf(UnsupportedOperationException.class)
                    .hasMessageContaining("not supported by the cuda backend yet");
        }
    }
}
