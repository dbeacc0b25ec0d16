package jtune.engine.cli;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import jtune.engine.backend.Backend;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/**
 * {@code jtune bench gemm}: times {@link Backend#matmul} on random matrices (f32, or bf16 A and B on a backend that
 * takes them) in the backend's memory and reports the median, waiting for the backend after each product.
 */
final class GemmBench {
    private GemmBench() {
    }

    /** Which product: A·B, A·Bᵀ or Aᵀ·B. */
    enum Layout {
        NN(false, false), NT(false, true), TN(true, false);

        final boolean transA;
        final boolean transB;

        Layout(boolean transA, boolean transB) {
            this.transA = transA;
            this.transB = transB;
        }

        static Layout parse(String s) {
            for (Layout l : values()) {
                if (l.name().equalsIgnoreCase(s)) {
                    return l;
                }
            }
            throw new Args.UsageException("--layout must be nn, nt or tn, got '" + s + "'");
        }
    }

    record Result(String backend, int threads, DType dtype, int m, int n, int k, Layout layout, double medianMs,
                  double bestMs) {
        double gflops(double ms) {
            return 2.0 * m * n * k / (ms * 1e6);
        }

        String text() {
            return String.format(Locale.ROOT, "%s (%d threads) %s %s m=%d n=%d k=%d: %.1f GFLOP/s median (%.2f ms), %.1f best",
                    backend, threads, dtype, layout.name().toLowerCase(Locale.ROOT), m, n, k, gflops(medianMs), medianMs,
                    gflops(bestMs));
        }

        String json() {
            return String.format(Locale.ROOT, "{\"backend\":\"%s\",\"threads\":%d,\"dtype\":\"%s\",\"layout\":\"%s\",\"m\":%d,"
                            + "\"n\":%d,\"k\":%d,\"median_ms\":%.4f,\"best_ms\":%.4f,\"gflops_median\":%.2f,\"gflops_best\":%.2f}",
                    backend, threads, dtype, layout.name().toLowerCase(Locale.ROOT), m, n, k, medianMs, bestMs,
                    gflops(medianMs), gflops(bestMs));
        }
    }

    static Result run(Backend backend, MemoryLedger ledger, DType dtype, int m, int n, int k, Layout layout,
                      int repeat) {
        try (MemoryPool pool = new MemoryPool(ledger, backend.memory());
             Tensor a = random(pool, "A", dtype, layout.transA ? new long[]{k, m} : new long[]{m, k}, 1);
             Tensor b = random(pool, "B", dtype, layout.transB ? new long[]{n, k} : new long[]{k, n}, 2);
             Tensor c = pool.allocate("C", DType.F32, Category.WORKSPACE, m, n)) {
            double flops = 2.0 * m * n * k;
            // Warm up for at least three runs and about three seconds, so that the JIT has compiled the kernel and the
            // loops around it (after one second the blocking loops of the cpu-simd GEMM still ran in OSR code, at half
            // speed, and 200 runs of a small product took less than that).
            long warmUntil = System.nanoTime() + 3_000_000_000L;
            for (int i = 0; i < 3 || (System.nanoTime() < warmUntil && flops * i < 1e13); i++) {
                backend.matmul(a, layout.transA, b, layout.transB, c, 1f, 0f);
            }
            backend.synchronize();
            double[] ms = new double[repeat];
            for (int i = 0; i < repeat; i++) {
                long t0 = System.nanoTime();
                backend.matmul(a, layout.transA, b, layout.transB, c, 1f, 0f);
                backend.synchronize();
                ms[i] = (System.nanoTime() - t0) / 1e6;
            }
            Arrays.sort(ms);
            double median = repeat % 2 == 1 ? ms[repeat / 2] : (ms[repeat / 2 - 1] + ms[repeat / 2]) / 2;
            return new Result(backend.name(), backend.threads(), dtype, m, n, k, layout, median, ms[0]);
        }
    }

    private static Tensor random(MemoryPool pool, String name, DType dtype, long[] dims, long seed) {
        Tensor t = pool.allocate(name, dtype, Category.WORKSPACE, dims);
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextDouble() * 2 - 1);
        }
        t.copyFrom(v);
        return t;
    }
}
