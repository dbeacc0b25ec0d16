package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.laneSum;
import static jtune.cpu.Simd.load;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.IntConsumer;
import jdk.incubator.vector.FloatVector;
import jtune.engine.backend.Checks;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * The matrix product {@code C = alpha · op(A) · op(B) + beta · C} ({@link jtune.engine.backend.Backend#matmul}) when
 * op(A) has at most {@link #ROWS} rows: the matrix-vector products of generation, one token at a time. Such a product
 * does two flops per element of B and is bound by reading B from memory, so B is read once, straight from its tensor,
 * with no packing: {@link Gemm}'s packing and 12-row tiles would read and write B more than once and waste most of
 * each tile. op(A) is first copied into an array, row by row (it is small).
 *
 * <p>With B stored (N, K) (transB, as a linear layer's weight is), each output is a dot product of an A row with a
 * contiguous B row: four B rows at a time, one f32 accumulator vector each, its lanes added in lane order (not
 * reduceLanes, whose order changes when C2 compiles it), then a scalar tail over k. With B stored (K, N), each output
 * row is a sum of B rows scaled by A's elements: four vectors of columns at a time held in registers over all of k,
 * then single vectors, then scalar columns. Every output is computed whole by one task, and the tasks depend on the
 * sizes only (about {@link Chunks#ELEMENTS} elements of B each: part of one product, or several small products of a
 * batch), so the result depends neither on the number of threads nor on how far the JIT has compiled this code.
 */
final class Gemv {
    /** Most rows of op(A) this path takes. */
    static final int ROWS = 4;
    /** B rows (transB) or vectors of columns (not transB) a kernel call covers. */
    private static final int GROUP = 4;
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[][]{new float[0],
            new float[GROUP * L]});

    private Gemv() {
    }

    /** The product of tensors that {@link Checks.Gemm#of} accepted as g, with {@code g.m() <= ROWS}. */
    static void multiply(WorkerPool pool, Checks.Gemm g, Tensor a, boolean transA, Tensor b, boolean transB, Tensor c,
                         float alpha, float beta) {
        int batch = g.batch(), m = g.m(), n = g.n(), k = g.k();
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        float[][] scratch = SCRATCH.get();
        if (scratch[0].length < batch * m * k) {
            scratch[0] = new float[batch * m * k];
        }
        float[] rows = scratch[0];
        MemorySegment sa = a.segment(), sb = b.segment(), sc = c.segment();
        for (int p = 0; p < batch; p++) {
            for (int i = 0; i < m; i++) {
                for (int l = 0; l < k; l++) {
                    long e = a.offset() + p * g.strideA() + (transA ? l * g.ldA() + i : i * g.ldA() + l);
                    rows[(p * m + i) * k + l] = sa.getAtIndex(ValueLayout.JAVA_FLOAT, e);
                }
            }
        }
        int per = transB ? Math.max(GROUP, Chunks.rowsPerTask(k) / GROUP * GROUP)
                : Math.max(GROUP * L, Chunks.rowsPerTask(k) / (GROUP * L) * GROUP * L);
        int tasksPerProduct = (n + per - 1) / per;
        int together = tasksPerProduct == 1 ? Math.max(1, Chunks.rowsPerTask(k) / n) : 1;
        int tasks = tasksPerProduct == 1 ? (batch + together - 1) / together : batch * tasksPerProduct;
        IntConsumer task = t -> {
            int p0 = tasksPerProduct == 1 ? t * together : t / tasksPerProduct;
            int p1 = Math.min(batch, p0 + together);
            int j0 = tasksPerProduct == 1 ? 0 : t % tasksPerProduct * per, j1 = Math.min(n, j0 + per);
            for (int p = p0; p < p1; p++) {
                long ob = (b.offset() + p * g.strideB()) * Float.BYTES, oc = c.offset() + p * g.strideC();
                int ao = p * m * k;
                if (transB) {
                    dotRows(rows, ao, m, k, sb, ob, g.ldB() * Float.BYTES, sc, oc, g.ldC(), j0, j1, alpha, beta);
                } else {
                    sumRows(rows, ao, m, k, sb, ob, g.ldB() * Float.BYTES, sc, oc, g.ldC(), j0, j1, alpha, beta);
                }
            }
        };
        if (tasks == 1) {
            task.accept(0);
        } else {
            pool.parallelFor(tasks, task);
        }
    }

    /** C[i, j] for j in [j0, j1), B (N, K) at byte offset ob with rows ldb bytes apart. */
    private static void dotRows(float[] a, int ao, int m, int k, MemorySegment b, long ob, long ldb, MemorySegment c,
                                long oc, long ldc, int j0, int j1, float alpha, float beta) {
        float[] out = SCRATCH.get()[1];
        int j = j0;
        for (; j + GROUP <= j1; j += GROUP) {
            for (int i = 0; i < m; i++) {
                dot4(a, ao + i * k, k, b, ob + j * ldb, ldb, out);
                for (int r = 0; r < GROUP; r++) {
                    store(c, oc + i * ldc + j + r, out[r], alpha, beta);
                }
            }
        }
        for (; j < j1; j++) {
            for (int i = 0; i < m; i++) {
                store(c, oc + i * ldc + j, dot(a, ao + i * k, k, b, ob + j * ldb), alpha, beta);
            }
        }
    }

    /**
     * {@code out[r] = Σ_l a[ao + l] · B[r, l]} for the four B rows r at byte offsets {@code o + r · ldb}: one
     * accumulator vector per row, its lanes added in lane order, then the scalar tail.
     */
    private static void dot4(float[] a, int ao, int k, MemorySegment b, long o, long ldb, float[] out) {
        FloatVector s0 = FloatVector.zero(F), s1 = FloatVector.zero(F), s2 = FloatVector.zero(F), s3 = FloatVector.zero(F);
        long r0 = o, r1 = o + ldb, r2 = o + 2 * ldb, r3 = o + 3 * ldb;
        int l = 0;
        for (int bound = F.loopBound(k); l < bound; l += L) {
            FloatVector x = FloatVector.fromArray(F, a, ao + l);
            long e = 4L * l;
            s0 = x.fma(load(b, r0 + e), s0);
            s1 = x.fma(load(b, r1 + e), s1);
            s2 = x.fma(load(b, r2 + e), s2);
            s3 = x.fma(load(b, r3 + e), s3);
        }
        // out (4L floats) holds each sum's lanes in turn before it receives the four sums.
        float t0 = laneSum(s0, out), t1 = laneSum(s1, out), t2 = laneSum(s2, out), t3 = laneSum(s3, out);
        for (; l < k; l++) {
            float x = a[ao + l];
            long e = 4L * l;
            t0 = Math.fma(x, get(b, r0 + e), t0);
            t1 = Math.fma(x, get(b, r1 + e), t1);
            t2 = Math.fma(x, get(b, r2 + e), t2);
            t3 = Math.fma(x, get(b, r3 + e), t3);
        }
        out[0] = t0;
        out[1] = t1;
        out[2] = t2;
        out[3] = t3;
    }

    /** {@code Σ_l a[ao + l] · B[l]} for one B row at byte offset o: two accumulator vectors, then the scalar tail. */
    private static float dot(float[] a, int ao, int k, MemorySegment b, long o) {
        FloatVector s0 = FloatVector.zero(F), s1 = FloatVector.zero(F);
        int l = 0;
        for (int bound = k - 2 * L; l <= bound; l += 2 * L) {
            s0 = FloatVector.fromArray(F, a, ao + l).fma(load(b, o + 4L * l), s0);
            s1 = FloatVector.fromArray(F, a, ao + l + L).fma(load(b, o + 4L * (l + L)), s1);
        }
        for (int bound = F.loopBound(k); l < bound; l += L) {
            s0 = FloatVector.fromArray(F, a, ao + l).fma(load(b, o + 4L * l), s0);
        }
        float t = laneSum(s0.add(s1), SCRATCH.get()[1]);
        for (; l < k; l++) {
            t = Math.fma(a[ao + l], get(b, o + 4L * l), t);
        }
        return t;
    }

    /** C[i, j] for j in [j0, j1), B (K, N) at byte offset ob with rows ldb bytes apart. */
    private static void sumRows(float[] a, int ao, int m, int k, MemorySegment b, long ob, long ldb, MemorySegment c,
                                long oc, long ldc, int j0, int j1, float alpha, float beta) {
        float[] out = SCRATCH.get()[1];
        for (int i = 0; i < m; i++) {
            int j = j0;
            for (; j + GROUP * L <= j1; j += GROUP * L) {
                columns4(a, ao + i * k, k, b, ob + 4L * j, ldb, out);
                for (int r = 0; r < GROUP * L; r++) {
                    store(c, oc + i * ldc + j + r, out[r], alpha, beta);
                }
            }
            for (; j + L <= j1; j += L) {
                columns1(a, ao + i * k, k, b, ob + 4L * j, ldb, out);
                for (int r = 0; r < L; r++) {
                    store(c, oc + i * ldc + j + r, out[r], alpha, beta);
                }
            }
            for (; j < j1; j++) {
                float t = 0;
                for (int l = 0; l < k; l++) {
                    t = Math.fma(a[ao + i * k + l], get(b, ob + l * ldb + 4L * j), t);
                }
                store(c, oc + i * ldc + j, t, alpha, beta);
            }
        }
    }

    /** {@code out[0, 4L) = Σ_l a[ao + l] · B[l, 0..4L)}, B's row l at byte offset {@code o + l · ldb}, in registers. */
    private static void columns4(float[] a, int ao, int k, MemorySegment b, long o, long ldb, float[] out) {
        FloatVector c0 = FloatVector.zero(F), c1 = FloatVector.zero(F), c2 = FloatVector.zero(F), c3 = FloatVector.zero(F);
        for (int l = 0; l < k; l++) {
            FloatVector x = FloatVector.broadcast(F, a[ao + l]);
            long r = o + l * ldb;
            c0 = x.fma(load(b, r), c0);
            c1 = x.fma(load(b, r + 4L * L), c1);
            c2 = x.fma(load(b, r + 8L * L), c2);
            c3 = x.fma(load(b, r + 12L * L), c3);
        }
        c0.intoArray(out, 0);
        c1.intoArray(out, L);
        c2.intoArray(out, 2 * L);
        c3.intoArray(out, 3 * L);
    }

    /** As {@link #columns4} for one vector of columns. */
    private static void columns1(float[] a, int ao, int k, MemorySegment b, long o, long ldb, float[] out) {
        FloatVector c0 = FloatVector.zero(F);
        for (int l = 0; l < k; l++) {
            c0 = FloatVector.broadcast(F, a[ao + l]).fma(load(b, o + l * ldb), c0);
        }
        c0.intoArray(out, 0);
    }

    /** {@code C[e] = alpha · t + beta · C[e]} (element index e); C is not read when beta is 0. */
    private static void store(MemorySegment c, long e, float t, float alpha, float beta) {
        float x = alpha * t;
        c.setAtIndex(ValueLayout.JAVA_FLOAT, e, beta == 0 ? x : x + beta * c.getAtIndex(ValueLayout.JAVA_FLOAT, e));
    }
}
