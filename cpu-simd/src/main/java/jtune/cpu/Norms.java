package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.load;
import static jtune.cpu.Simd.set;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * RMSNorm forward and backward over contiguous f32 tensors (checked by the caller), rows split by
 * {@link Chunks#rows}; vector bodies, scalar tails.
 */
final class Norms {
    private Norms() {
    }

    /**
     * x, out (N, D), weight (D), rstd (N); out may alias x. Per row: Σx² as {@link Reductions#sumOfSquares} (double),
     * {@code k = (float) (1 / sqrt(Σx²/D + eps))}, {@code rstd = k}, {@code out = (x·k)·w} rounded as the oracle
     * rounds it (equal to it wherever k is).
     */
    static void rmsNorm(WorkerPool pool, Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        MemorySegment sx = x.segment(), sw = weight.segment(), so = out.segment(), sr = rstd.segment();
        long ox = x.byteOffset(), ow = weight.byteOffset(), oo = out.byteOffset(), orr = rstd.byteOffset();
        long d = x.dim(-1);
        long rows = x.size() / Math.max(d, 1);
        int n = (int) d;
        Chunks.rows(pool, rows, d, (r0, count) -> {
            for (long r = r0; r < r0 + count; r++) {
                long xr = ox + 4 * r * d, outr = oo + 4 * r * d;
                float k = (float) (1.0 / Math.sqrt(Reductions.sumOfSquares(sx, xr, n) / d + eps));
                set(sr, orr + 4 * r, k);
                int i = 0;
                for (int bound = F.loopBound(n); i < bound; i += L) {
                    long j = 4L * i;
                    load(sx, xr + j).mul(k).mul(load(sw, ow + j)).intoMemorySegment(so, outr + j, ORDER);
                }
                for (; i < n; i++) {
                    long j = 4L * i;
                    set(so, outr + j, get(sx, xr + j) * k * get(sw, ow + j));
                }
            }
        });
    }

    /**
     * Backward of {@link #rmsNorm}; x, dy, dx (N, D), weight and dweight (D), rstd (N). Per row, with k = rstd:
     * {@code c = k³·Σ(dy·w·x)/D} (sum as {@link Reductions}, in double) and {@code dx = fma(x, −c, (dy·w)·k)},
     * which is {@code k·(g − x̂·mean(g ⊙ x̂))} (error about ulp(|k·g| + |c·x|)). {@code dweight += Σ_rows dy ⊙ (x·k)}:
     * each task of the row split sums its rows in f32 FMAs into its own partial, and the partials are added to
     * dweight in double, in task order. Vector body, scalar tail.
     */
    static void rmsNormBackward(WorkerPool pool, Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx,
                                Tensor dweight) {
        MemorySegment sx = x.segment(), sw = weight.segment(), sr = rstd.segment(), sd = dy.segment();
        MemorySegment sdx = dx.segment();
        long ox = x.byteOffset(), ow = weight.byteOffset(), orr = rstd.byteOffset(), od = dy.byteOffset();
        long odx = dx.byteOffset();
        long d = x.dim(-1);
        long rows = x.size() / Math.max(d, 1);
        int n = (int) d;
        int per = Chunks.rowsPerTask(d);
        float[][] partial = new float[Chunks.rowTasks(rows, d)][n];
        Chunks.rows(pool, rows, d, (r0, count) -> {
            float[] dw = partial[(int) (r0 / per)];
            for (long r = r0; r < r0 + count; r++) {
                long xr = ox + 4 * r * d, dr = od + 4 * r * d, dxr = odx + 4 * r * d;
                float k = get(sr, orr + 4 * r);
                double sum = Reductions.dot3(sd, dr, sw, ow, sx, xr, n);
                float minusC = (float) (-(double) k * k * k * sum / d);
                FloatVector c = FloatVector.broadcast(F, minusC);
                int i = 0;
                for (int bound = F.loopBound(n); i < bound; i += L) {
                    long j = 4L * i;
                    FloatVector xv = load(sx, xr + j), dyv = load(sd, dr + j);
                    dyv.fma(xv.mul(k), FloatVector.fromArray(F, dw, i)).intoArray(dw, i);
                    xv.fma(c, dyv.mul(load(sw, ow + j)).mul(k)).intoMemorySegment(sdx, dxr + j, ORDER);
                }
                for (; i < n; i++) {
                    long j = 4L * i;
                    float xs = get(sx, xr + j), dys = get(sd, dr + j);
                    dw[i] = Math.fma(dys, xs * k, dw[i]);
                    set(sdx, dxr + j, Math.fma(xs, minusC, dys * get(sw, ow + j) * k));
                }
            }
        });
        MemorySegment sdw = dweight.segment();
        long odw = dweight.byteOffset();
        for (int j = 0; j < n; j++) {
            double t = get(sdw, odw + 4L * j);
            for (float[] p : partial) {
                t += p[j];
            }
            set(sdw, odw + 4L * j, (float) t);
        }
    }
}
