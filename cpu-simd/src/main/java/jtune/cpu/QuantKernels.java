package jtune.cpu;

import static jtune.cpu.Gemm.KC;
import static jtune.cpu.Gemm.MC;
import static jtune.cpu.Gemm.MR;
import static jtune.cpu.Gemm.NC;
import static jtune.cpu.Gemm.NR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.IntConsumer;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * The products with quantized weights ({@link jtune.engine.backend.Backend#quantMatmul} and the rest), fused with
 * the dequantization so that the f32 matrix never exists whole.
 *
 * <ul>
 *   <li>Products over many rows of activations run {@link Gemm}'s blocking and micro-kernel: where {@code Gemm}
 *       packs a KC × NC block of B, these decode it, a group at a time through a table of the 2^bits values its
 *       codes stand for ({@link QuantSource#table}), straight into the k-major micro-panels. The decoded values are
 *       exactly {@link jtune.engine.tensor.QuantizedMatrix#weight}'s. Work is split over the columns of C, so each
 *       weight is decoded once per MC rows of activations. The K blocks depend on the shape only.</li>
 *   <li>The forward product of at most {@link #MATVEC_ROWS} rows (decoding) streams the codes once instead:
 *       {@link QuantMatvec}.</li>
 *   <li>The scale gradient of PEQA runs the GEMM on the unscaled codes {@code q − z} and, instead of storing each
 *       tile of partial products, reduces it per group against the output gradient.</li>
 * </ul>
 * Sums have a fixed order whatever the number of threads: the K blocking and the row order of each output depend on
 * the shape only, and threads only choose which outputs they compute.
 */
final class QuantKernels {
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;
    /** Forward products of at most this many rows of x take the streaming matrix-vector path, {@link QuantMatvec}. */
    private static final int MATVEC_ROWS = 4;

    private enum Mode {
        /** C = A · dequant(W)ᵀ: K runs along the columns of W, C's columns are W's rows. */
        FORWARD,
        /** C = A · dequant(W): K runs along the rows of W, C's columns are W's columns. */
        INPUT_GRAD,
        /** The tiles of A · (Q − Z)ᵀ per group, reduced against dy into the scale gradient. */
        SCALE_GRAD
    }

    /** A thread's decode table and row of decoded values. */
    private static final class Scratch {
        final float[] table = new float[256];
        final float[] row = new float[NC];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private QuantKernels() {
    }

    /** {@code y = alpha · x · dequant(W)ᵀ + beta · y}; n rows of x. */
    static void matmul(WorkerPool pool, QuantSource w, Tensor x, Tensor y, int n, float alpha, float beta) {
        if (n == 0) {
            return;
        }
        if (n <= MATVEC_ROWS) {
            QuantMatvec.multiply(pool, w, x, y, n, alpha, beta);
        } else {
            gemm(pool, Mode.FORWARD, w, x, y, null, n, alpha, beta);
        }
    }

    /** {@code dx = alpha · dy · dequant(W) + beta · dx}; n rows of dy. */
    static void inputGrad(WorkerPool pool, QuantSource w, Tensor dy, Tensor dx, int n, float alpha, float beta) {
        if (n > 0) {
            gemm(pool, Mode.INPUT_GRAD, w, dy, dx, null, n, alpha, beta);
        }
    }

    /** {@code dScales[i, k] += Σ_t dy[t, i] · Σ_{j in group k} (q_ij − z_ik) · x[t, j]}; n rows of x and dy. */
    static void scaleGrad(WorkerPool pool, QuantSource w, Tensor x, Tensor dy, Tensor dScales, int n) {
        if (n > 0) {
            gemm(pool, Mode.SCALE_GRAD, w, x, dScales, dy, n, 1f, 1f);
        }
    }

    /** {@code out = dequant(W)}, row by row. */
    static void dequantize(WorkerPool pool, QuantSource w, Tensor out) {
        MemorySegment so = out.segment();
        long base = out.offset();
        Chunks.rows(pool, w.rows, w.cols, (start, count) -> {
            Scratch s = SCRATCH.get();
            float[] row = new float[w.cols];
            for (int i = (int) start; i < start + count; i++) {
                decode(w, i, 0, w.cols, true, row, 0, 1, s.table);
                MemorySegment.copy(row, 0, so, FLOAT, (base + (long) i * w.cols) * Float.BYTES, w.cols);
            }
        });
    }

    // ---- decoding ---------------------------------------------------------------------------------

    /**
     * {@code dst[d + (j − c0) · stride]} = the value of element (row, j) for j in [c0, c1): dequantized, or
     * {@code q − z} when not scaled. c0 is a multiple of 8 (a run boundary). 8-bit codes are computed, the narrower
     * ones looked up in a table of their 2^bits values built per group.
     */
    private static void decode(QuantSource w, int row, int c0, int c1, boolean scaled, float[] dst, int d, int stride,
                               float[] table) {
        int bits = w.bits, mask = w.mask;
        for (int a = c0; a < c1; ) {
            int k = a / w.width;
            int end = (int) Math.min(c1, (long) (k + 1) * w.width);
            long at = w.runAt(row, a >>> 3);
            int o = d + (a - c0) * stride;
            if (bits == 8) {
                float s = scaled ? w.scale(row, k) : 1f, z = w.zero(row, k);
                for (int j = a; j < end; j++, o += stride) {
                    int q = w.codes.get(ValueLayout.JAVA_BYTE, w.codesAt + row * w.rowBytes + j) & 0xff;
                    dst[o] = scaled ? s * (q - z) : q - z;
                }
            } else {
                w.table(row, k, scaled, table);
                int j = a;
                for (; j + 8 <= end; j += 8, at += bits) {
                    long run = w.run(at);
                    for (int e = 0; e < 8; e++, o += stride) {
                        dst[o] = table[(int) (run >>> (e * bits)) & mask];
                    }
                }
                if (j < end) {
                    long run = w.run(at);
                    for (int e = 0; j < end; e++, j++, o += stride) {
                        dst[o] = table[(int) (run >>> (e * bits)) & mask];
                    }
                }
            }
            a = end;
        }
    }

    // ---- GEMM path --------------------------------------------------------------------------------

    /**
     * The blocked product of {@link Gemm} with B decoded from w. a is (n, K) f32 contiguous; c is the output (n, N)
     * (FORWARD, INPUT_GRAD) or the scale gradient (rows, groups) with dy (n, rows) (SCALE_GRAD).
     */
    private static void gemm(WorkerPool pool, Mode mode, QuantSource w, Tensor a, Tensor c, Tensor dy, int n,
                             float alpha, float beta) {
        int kTotal = mode == Mode.INPUT_GRAD ? w.rows : w.cols;
        int nTotal = mode == Mode.INPUT_GRAD ? w.cols : w.rows;
        int blocks = Gemm.ceilDiv(kTotal, KC);
        int kb = Math.min(KC, (Gemm.ceilDiv(kTotal, blocks) + 7) / 8 * 8);
        double flops = 2.0 * n * kTotal * nTotal;
        int parts = flops < Gemm.PARALLEL_FLOPS ? 1 : pool.threads();
        int chunk = Gemm.ceilDiv(Gemm.ceilDiv(nTotal, parts), NR) * NR;
        int split = Gemm.ceilDiv(nTotal, chunk);
        IntConsumer task = t -> block(Gemm.WORKSPACE.get(), SCRATCH.get(), mode, w, a, c, dy, n, kTotal, kb,
                t * chunk, Math.min(nTotal, (t + 1) * chunk), alpha, beta);
        if (parts == 1) {
            for (int t = 0; t < split; t++) {
                task.accept(t);
            }
        } else {
            pool.parallelFor(split, task);
        }
    }

    /** Columns [n0, n1) of C (rows of W for FORWARD and SCALE_GRAD). */
    private static void block(Gemm.Workspace ws, Scratch s, Mode mode, QuantSource w, Tensor a, Tensor c, Tensor dy,
                              int m, int k, int kb, int n0, int n1, float alpha, float beta) {
        MemorySegment sa = a.segment(), sc = c.segment();
        long oa = a.offset(), oc = c.offset(), ldc = c.dim(1);
        for (int ic = 0; ic < m; ic += MC) {
            int mc = Math.min(MC, m - ic);
            for (int pc = 0; pc < k; pc += kb) {
                int kc = Math.min(kb, k - pc);
                float betaNow = pc == 0 ? beta : 1f;
                GemmPack.packA(sa, oa, k, false, ic, mc, pc, kc, ws.a, ws.x, ws.y);
                for (int jc = n0; jc < n1; jc += NC) {
                    int nc = Math.min(NC, n1 - jc);
                    if (mode == Mode.INPUT_GRAD) {
                        packRows(w, pc, kc, jc, nc, ws.b, s);
                    } else {
                        packColumns(w, mode == Mode.FORWARD, pc, kc, jc, nc, ws.b, s.table);
                    }
                    for (int ir = 0; ir < mc; ir += MR) {
                        for (int jr = 0; jr < nc; jr += NR) {
                            int rows = Math.min(MR, mc - ir), cols = Math.min(NR, nc - jr);
                            if (mode == Mode.SCALE_GRAD) {
                                reduceScales(w, ws, dy, c, ic + ir, rows, pc, kc, jc + jr, cols, ir, jr);
                                continue;
                            }
                            long at = oc + (ic + ir) * ldc + jc + jr;
                            Gemm.kernel(ws.a, ir * KC, ws.b, jr * kc, kc, ws.tile);
                            if (rows == MR && cols == NR) {
                                Gemm.store(ws.tile, sc, at, ldc, alpha, betaNow);
                            } else {
                                Gemm.merge(ws.tile, sc, at, ldc, rows, cols, alpha, betaNow);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * B = dequant(W)ᵀ (or (Q − Z)ᵀ unscaled) rows [p0, p0 + kc), columns [j0, j0 + nc) as NR-wide k-major
     * micro-panels, {@code dst[(j / NR) · kc · NR + l · NR + j % NR] = W[j0 + j, p0 + l]}; zero past nc.
     */
    private static void packColumns(QuantSource w, boolean scaled, int p0, int kc, int j0, int nc, float[] dst,
                                    float[] table) {
        for (int j = 0; j < nc; j++) {
            decode(w, j0 + j, p0, p0 + kc, scaled, dst, j / NR * kc * NR + j % NR, NR, table);
        }
        int last = nc / NR * NR, d = last * kc;
        for (int l = 0; l < kc && nc % NR != 0; l++) {
            Arrays.fill(dst, d + l * NR + nc % NR, d + l * NR + NR, 0f);
        }
    }

    /**
     * B = dequant(W) rows [p0, p0 + kc), columns [j0, j0 + nc) as NR-wide k-major micro-panels,
     * {@code dst[(j / NR) · kc · NR + l · NR + j % NR] = W[p0 + l, j0 + j]}; zero past nc. Each row of W is decoded
     * once into the scratch row and copied a panel at a time.
     */
    private static void packRows(QuantSource w, int p0, int kc, int j0, int nc, float[] dst, Scratch s) {
        float[] row = s.row;
        for (int l = 0; l < kc; l++) {
            decode(w, p0 + l, j0, j0 + nc, true, row, 0, 1, s.table);
            for (int jr = 0; jr < nc; jr += NR) {
                int n = Math.min(NR, nc - jr), d = jr * kc + l * NR;
                System.arraycopy(row, jr, dst, d, n);
                if (n < NR) {
                    Arrays.fill(dst, d + n, d + NR, 0f);
                }
            }
        }
    }

    /**
     * One MR × NR tile of the scale gradient: for each group segment of [p0, p0 + kc), the partial products
     * {@code P[t, i] = Σ_{j in segment} x[t, j] · (q_ij − z)} by the micro-kernel, then
     * {@code dScales[i, k] += Σ_t dy[t, i] · P[t, i]} over the tile's rows t0.. and columns i0.. of W.
     */
    private static void reduceScales(QuantSource w, Gemm.Workspace ws, Tensor dy, Tensor dScales, int t0, int rows,
                                     int p0, int kc, int i0, int cols, int ir, int jr) {
        MemorySegment sd = dy.segment(), ss = dScales.segment();
        long od = dy.offset(), os = dScales.offset();
        for (int a = p0; a < p0 + kc; ) {
            int k = a / w.width;
            int end = (int) Math.min(p0 + kc, (long) (k + 1) * w.width);
            Gemm.kernel(ws.a, ir * KC + a - p0, ws.b, jr * kc + (a - p0) * NR, end - a, ws.tile);
            for (int j = 0; j < cols; j++) {
                float acc = 0f;
                for (int r = 0; r < rows; r++) {
                    acc = Math.fma(sd.getAtIndex(FLOAT, od + (long) (t0 + r) * w.rows + i0 + j), ws.tile[r * NR + j], acc);
                }
                long e = os + (long) (i0 + j) * w.groups + k;
                ss.setAtIndex(FLOAT, e, ss.getAtIndex(FLOAT, e) + acc);
            }
            a = end;
        }
    }
}
