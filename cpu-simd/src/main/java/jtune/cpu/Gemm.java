package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.IntConsumer;
import jdk.incubator.vector.FloatVector;
import jtune.engine.backend.Checks;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * f32 matrix product {@code C = alpha · op(A) · op(B) + beta · C} ({@link jtune.engine.backend.Backend#matmul}),
 * blocked as in BLIS. An MC × KC block of op(A) is packed row by row (it lives in L3), a KC × NC block of op(B)
 * into NR-wide k-major micro-panels (L2), and the micro-kernel multiplies an MR-row strip of the A block (L1) by one
 * micro-panel into an MR × NR tile held in registers. {@link GemmPack} reads either layout of each operand, so one
 * kernel serves A·B, A·Bᵀ, Aᵀ·B and Aᵀ·Bᵀ; packed strips and panels are zero-padded to whole tiles, and a partial
 * tile at an edge is written back element by element. The tile sizes follow the vector length L: NR = NV · L.
 * Work is split over the pool by batch and along one side of C; each task packs into buffers of its thread,
 * allocated on the thread's first product and kept. Products of at most {@link Gemv#ROWS} rows go to {@link Gemv}
 * instead.
 * {@link QuantKernels} runs the same blocking and micro-kernel with B decoded from quantized weights.
 *
 * <p>Measured on Zen 5 (512-bit): the 12 × 2 kernel runs at about 215 GFLOP/s on one core with its operands in L1
 * (6 × 4 and 10 × 2 about the same, 8 × 3 and 14 × 2 slower: C2 spills). The kernel hands its tile to
 * {@link #store} through an array: written to C from the kernel itself, alpha and beta stay live across the loop
 * and C2 spills an accumulator, which cost a third of the speed.
 */
final class Gemm {
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    /** Register tile: MR rows of C by NV vectors, NR = NV · L columns; with NV loads and a broadcast, 27 registers. */
    static final int MR = 12, NV = 2, NR = NV * L;
    /**
     * Cache blocks: at most KC deep (K is cut into equal blocks); MC rows of A; NC columns of B, so that KC × NC
     * floats take about half of L2.
     */
    static final int KC = 512, MC = MR * 96, NC = 256 / NR * NR;
    /** Products of fewer flops than this run on the calling thread alone. */
    static final double PARALLEL_FLOPS = 4e6;

    /** One thread's packed blocks, tile and transpose scratch. */
    static final class Workspace {
        final float[] a = new float[MC * KC];
        final float[] b = new float[KC * NC];
        final float[] tile = new float[MR * NR];
        final float[] x = new float[L * L], y = new float[L * L];
    }

    static final ThreadLocal<Workspace> WORKSPACE = ThreadLocal.withInitial(Workspace::new);

    private Gemm() {
    }

    /** The product of tensors that {@link Checks.Gemm#of} accepted as g. */
    static void multiply(WorkerPool pool, Checks.Gemm g, Tensor a, boolean transA, Tensor b, boolean transB, Tensor c,
                         float alpha, float beta) {
        if (g.batch() == 0 || g.m() == 0 || g.n() == 0) {
            return;
        }
        MemorySegment sa = a.segment(), sb = b.segment(), sc = c.segment();
        int threads = pool.threads();
        int parts = g.flops() < PARALLEL_FLOPS || g.batch() >= threads ? 1 : ceilDiv(threads, g.batch());
        // Each part packs all of the operand along the side it does not split: split the side whose other operand
        // is cheaper to pack again (a transposing pack costs two to three times a straight copy).
        boolean alongM = (long) g.n() * (transB ? 2 : 1) <= (long) g.m() * (transA ? 1 : 2);
        int extent = alongM ? g.m() : g.n();
        int chunk = ceilDiv(ceilDiv(extent, parts), alongM ? MR : NR) * (alongM ? MR : NR);
        int split = ceilDiv(extent, chunk);
        IntConsumer task = t -> {
            int p = t / split, lo = t % split * chunk, hi = Math.min(extent, lo + chunk);
            int m0 = alongM ? lo : 0, m1 = alongM ? hi : g.m(), n0 = alongM ? 0 : lo, n1 = alongM ? g.n() : hi;
            block(WORKSPACE.get(), g, transA, transB, alpha, beta, sa, a.offset() + p * g.strideA(),
                    sb, b.offset() + p * g.strideB(), sc, c.offset() + p * g.strideC(), m0, m1, n0, n1);
        };
        if (g.flops() < PARALLEL_FLOPS) {
            for (int t = 0; t < g.batch() * split; t++) {
                task.accept(t);
            }
        } else {
            pool.parallelFor(g.batch() * split, task);
        }
    }

    /** Rows [m0, m1) and columns [n0, n1) of one product; oa, ob, oc are element offsets of its matrices. */
    private static void block(Workspace w, Checks.Gemm g, boolean transA, boolean transB, float alpha, float beta,
                              MemorySegment sa, long oa, MemorySegment sb, long ob, MemorySegment sc, long oc,
                              int m0, int m1, int n0, int n1) {
        int k = g.k(), kb = k == 0 ? 1 : ceilDiv(k, ceilDiv(k, KC));
        long ldc = g.ldC();
        for (int ic = m0; ic < m1; ic += MC) {
            int mc = Math.min(MC, m1 - ic);
            for (int pc = 0; pc == 0 || pc < k; pc += kb) {
                int kc = Math.min(kb, k - pc);
                float betaNow = pc == 0 ? beta : 1f;
                GemmPack.packA(sa, oa, g.ldA(), transA, ic, mc, pc, kc, w.a, w.x, w.y);
                for (int jc = n0; jc < n1; jc += NC) {
                    int nc = Math.min(NC, n1 - jc);
                    GemmPack.packB(sb, ob, g.ldB(), transB, pc, kc, jc, nc, w.b, w.x, w.y);
                    for (int ir = 0; ir < mc; ir += MR) {
                        for (int jr = 0; jr < nc; jr += NR) {
                            long at = oc + (ic + ir) * ldc + jc + jr;
                            int rows = Math.min(MR, mc - ir), cols = Math.min(NR, nc - jr);
                            kernel(w.a, ir * KC, w.b, jr * kc, kc, w.tile);
                            if (rows == MR && cols == NR) {
                                store(w.tile, sc, at, ldc, alpha, betaNow);
                            } else {
                                merge(w.tile, sc, at, ldc, rows, cols, alpha, betaNow);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * {@code C[r, j] = alpha · t[r, j] + beta · C[r, j]} over a whole MR × NR tile t, C at element offset at with rows
     * ldc apart; C is not read when beta is 0.
     */
    static void store(float[] t, MemorySegment c, long at, long ldc, float alpha, float beta) {
        FloatVector va = FloatVector.broadcast(F, alpha), vb = FloatVector.broadcast(F, beta);
        for (int r = 0; r < MR; r++) {
            long row = (at + r * ldc) * Float.BYTES;
            for (int v = 0; v < NR; v += L) {
                FloatVector x = FloatVector.fromArray(F, t, r * NR + v).mul(va);
                long e = row + v * Float.BYTES;
                if (beta != 0) {
                    x = FloatVector.fromMemorySegment(F, c, e, ORDER).fma(vb, x);
                }
                x.intoMemorySegment(c, e, ORDER);
            }
        }
    }

    /** As {@link #store}, for the first rows × cols elements of the tile only, one at a time. */
    static void merge(float[] t, MemorySegment c, long at, long ldc, int rows, int cols, float alpha,
                      float beta) {
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                long e = at + r * ldc + j;
                float x = alpha * t[r * NR + j];
                c.setAtIndex(FLOAT, e, beta == 0 ? x : x + beta * c.getAtIndex(FLOAT, e));
            }
        }
    }

    /**
     * One MR × NR tile, {@code tile = Astrip · Bpanel} over kc steps: A is MR packed rows (stride KC), B a k-major
     * micro-panel of NR columns; f32 accumulation in MR · NV vector registers, one broadcast of A per row and step.
     */
    static void kernel(float[] a, int ao, float[] b, int bo, int kc, float[] tile) {
        FloatVector c0a = FloatVector.zero(F), c0b = FloatVector.zero(F);
        FloatVector c1a = FloatVector.zero(F), c1b = FloatVector.zero(F);
        FloatVector c2a = FloatVector.zero(F), c2b = FloatVector.zero(F);
        FloatVector c3a = FloatVector.zero(F), c3b = FloatVector.zero(F);
        FloatVector c4a = FloatVector.zero(F), c4b = FloatVector.zero(F);
        FloatVector c5a = FloatVector.zero(F), c5b = FloatVector.zero(F);
        FloatVector c6a = FloatVector.zero(F), c6b = FloatVector.zero(F);
        FloatVector c7a = FloatVector.zero(F), c7b = FloatVector.zero(F);
        FloatVector c8a = FloatVector.zero(F), c8b = FloatVector.zero(F);
        FloatVector c9a = FloatVector.zero(F), c9b = FloatVector.zero(F);
        FloatVector c10a = FloatVector.zero(F), c10b = FloatVector.zero(F);
        FloatVector c11a = FloatVector.zero(F), c11b = FloatVector.zero(F);
        for (int p = 0; p < kc; p++) {
            int ap = ao + p, bp = bo + p * NR;
            FloatVector ba = FloatVector.fromArray(F, b, bp); FloatVector bb = FloatVector.fromArray(F, b, bp + 1 * L);
            FloatVector x;
            x = FloatVector.broadcast(F, a[ap]);
            c0a = x.fma(ba, c0a); c0b = x.fma(bb, c0b);
            x = FloatVector.broadcast(F, a[ap + 1 * KC]);
            c1a = x.fma(ba, c1a); c1b = x.fma(bb, c1b);
            x = FloatVector.broadcast(F, a[ap + 2 * KC]);
            c2a = x.fma(ba, c2a); c2b = x.fma(bb, c2b);
            x = FloatVector.broadcast(F, a[ap + 3 * KC]);
            c3a = x.fma(ba, c3a); c3b = x.fma(bb, c3b);
            x = FloatVector.broadcast(F, a[ap + 4 * KC]);
            c4a = x.fma(ba, c4a); c4b = x.fma(bb, c4b);
            x = FloatVector.broadcast(F, a[ap + 5 * KC]);
            c5a = x.fma(ba, c5a); c5b = x.fma(bb, c5b);
            x = FloatVector.broadcast(F, a[ap + 6 * KC]);
            c6a = x.fma(ba, c6a); c6b = x.fma(bb, c6b);
            x = FloatVector.broadcast(F, a[ap + 7 * KC]);
            c7a = x.fma(ba, c7a); c7b = x.fma(bb, c7b);
            x = FloatVector.broadcast(F, a[ap + 8 * KC]);
            c8a = x.fma(ba, c8a); c8b = x.fma(bb, c8b);
            x = FloatVector.broadcast(F, a[ap + 9 * KC]);
            c9a = x.fma(ba, c9a); c9b = x.fma(bb, c9b);
            x = FloatVector.broadcast(F, a[ap + 10 * KC]);
            c10a = x.fma(ba, c10a); c10b = x.fma(bb, c10b);
            x = FloatVector.broadcast(F, a[ap + 11 * KC]);
            c11a = x.fma(ba, c11a); c11b = x.fma(bb, c11b);
        }
        c0a.intoArray(tile, 0); c0b.intoArray(tile, 0 + 1 * L);
        c1a.intoArray(tile, 1 * NR); c1b.intoArray(tile, 1 * NR + 1 * L);
        c2a.intoArray(tile, 2 * NR); c2b.intoArray(tile, 2 * NR + 1 * L);
        c3a.intoArray(tile, 3 * NR); c3b.intoArray(tile, 3 * NR + 1 * L);
        c4a.intoArray(tile, 4 * NR); c4b.intoArray(tile, 4 * NR + 1 * L);
        c5a.intoArray(tile, 5 * NR); c5b.intoArray(tile, 5 * NR + 1 * L);
        c6a.intoArray(tile, 6 * NR); c6b.intoArray(tile, 6 * NR + 1 * L);
        c7a.intoArray(tile, 7 * NR); c7b.intoArray(tile, 7 * NR + 1 * L);
        c8a.intoArray(tile, 8 * NR); c8b.intoArray(tile, 8 * NR + 1 * L);
        c9a.intoArray(tile, 9 * NR); c9b.intoArray(tile, 9 * NR + 1 * L);
        c10a.intoArray(tile, 10 * NR); c10b.intoArray(tile, 10 * NR + 1 * L);
        c11a.intoArray(tile, 11 * NR); c11b.intoArray(tile, 11 * NR + 1 * L);
    }

    static int ceilDiv(int x, int y) {
        return (x + y - 1) / y;
    }
}
