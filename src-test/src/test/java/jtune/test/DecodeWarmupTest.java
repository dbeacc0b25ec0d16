package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import jtune.cpu.SimdBackend;
import jtune.engine.backend.Backend;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The matrix-vector products of decoding give the same bits on their first, interpreted calls as once C2 has
 * compiled them: the f32 product (matmul with one row of A, B transposed) and the 4-bit quantized one. A lane sum
 * through {@code reduceLanes(ADD)} changes its order when compiled; the f32 product used one and differed from its
 * first result on 19,684 of the next 20,000 calls.
 */
class DecodeWarmupTest {
    private static final int CALLS = 5_000;

    @Test
    void f32ProductIsTheSameColdAndWarm() {
        try (Backend be = new SimdBackend(1); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            int k = 1000, n = 64;
            Tensor a = random(pool, "a", 1, 1, k), b = random(pool, "b", 2, n, k);
            Tensor c = pool.allocate("c", DType.F32, Category.WORKSPACE, 1, n);
            assertSameColdAndWarm(() -> be.matmul(a, false, b, true, c, 1f, 0f), c);
        }
    }

    @Test
    void quantizedProductIsTheSameColdAndWarm() {
        try (Backend be = new SimdBackend(1); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            int k = 1024, n = 64;
            QuantizedMatrix w = QuantizedMatrix.allocate(pool, "w", QuantFormat.integer(4, 128, false, DType.F32), n, k);
            SplittableRandom r = new SplittableRandom(3);
            Tensor codes = w.codes();
            for (long i = 0; i < codes.size(); i++) {
                codes.segment().set(ValueLayout.JAVA_BYTE, codes.byteOffset() + i, (byte) r.nextInt(256));
            }
            fill(w.scales(), () -> r.nextDouble(0.001, 0.01));
            fill(w.zeros(), () -> r.nextInt(16));
            Tensor x = random(pool, "x", 4, 1, k), y = pool.allocate("y", DType.F32, Category.WORKSPACE, 1, n);
            assertSameColdAndWarm(() -> be.quantMatmul(x, w, y, 1f, 0f), y);
        }
    }

    /** Runs {@code product} once, then {@link #CALLS} more times, each of which must leave out as the first did. */
    private static void assertSameColdAndWarm(Runnable product, Tensor out) {
        product.run();
        float[] first = out.toFloatArray();
        for (int call = 0; call < CALLS; call++) {
            product.run();
            assertThat(out.toFloatArray()).as("call %d", call).containsExactly(first);
        }
    }

    private static void fill(Tensor t, DoubleSupplier v) {
        float[] values = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) v.getAsDouble();
        }
        t.copyFrom(values);
    }

    private static Tensor random(MemoryPool pool, String name, long seed, long... dims) {
        Tensor t = pool.allocate(name, DType.F32, Category.WORKSPACE, dims);
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextDouble(-1, 1);
        }
        return t.copyFrom(v);
    }
}
