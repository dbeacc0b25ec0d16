package jtune.cpu;

import static jtune.cpu.Simd.BLOCK;
import static jtune.cpu.Simd.D;
import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.load;
import static jtune.cpu.Simd.set;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * Row softmax and its backward over contiguous f32 tensors (checked by the caller), rows split by
 * {@link Chunks#rows}. Exponentials are {@link Simd#exp}; row sums follow {@link Reductions}. Vector bodies,
 * scalar tails.
 */
final class Softmax {
    private Softmax() {
    }

    /**
     * Softmax of each row of x (rows, cols), into out (may alias x): m = max of the row's valid prefix,
     * e = exp(x − m) stored in out, then out = e · (1/Σe) over the prefix and 0 after it. The prefix is the whole
     * row, or with {@code causalT} &gt; 0 (x is (..., T, S), T = causalT) row r's first {@code r mod T + S − T + 1}
     * columns. Error a few ulp against the double oracle.
     */
    static void softmax(WorkerPool pool, Tensor x, Tensor out, long causalT) {
        MemorySegment sx = x.segment(), so = out.segment();
        long ox = x.byteOffset(), oo = out.byteOffset();
        long cols = x.dim(-1);
        long rows = x.size() / Math.max(cols, 1);
        Chunks.rows(pool, rows, cols, (r0, count) -> {
            for (long r = r0; r < r0 + count; r++) {
                int valid = (int) (causalT > 0 ? r % causalT + cols - causalT + 1 : cols);
                long xr = ox + 4 * r * cols, or = oo + 4 * r * cols;
                float m = Reductions.max(sx, xr, valid);
                double s = expSum(sx, xr, m, so, or, valid);
                Elementwise.scale(so, or, (float) (1 / s), so, or, valid);
                Elementwise.fill(so, or + 4L * valid, 0f, (int) (cols - valid));
            }
        });
    }

    /**
     * Σ exp(x[i] − shift), i &lt; n, and e = exp(x[i] − shift) stored to out[i] unless out is null (out may alias
     * x); f32 at byte offsets xo and oo. Two f32 accumulators (exp is the cost, not the adds), widened into f64 lanes
     * every {@link Simd#BLOCK} elements and added in lane order (as in {@link Reductions}); the scalar tail adds in
     * double.
     */
    static double expSum(MemorySegment x, long xo, float shift, MemorySegment out, long oo, int n) {
        FloatVector sh = FloatVector.broadcast(F, shift);
        DoubleVector d0 = DoubleVector.zero(D), d1 = d0;
        int i = 0;
        int bound = n - n % (2 * L);
        while (i < bound) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0;
            for (int stop = Math.min(bound, i + BLOCK); i < stop; i += 2 * L) {
                FloatVector e0 = Simd.exp(load(x, xo + 4L * i).sub(sh));
                FloatVector e1 = Simd.exp(load(x, xo + 4L * (i + L)).sub(sh));
                if (out != null) {
                    e0.intoMemorySegment(out, oo + 4L * i, ORDER);
                    e1.intoMemorySegment(out, oo + 4L * (i + L), ORDER);
                }
                s0 = s0.add(e0);
                s1 = s1.add(e1);
            }
            FloatVector f = s0.add(s1);
            d0 = d0.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 0));
            d1 = d1.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 1));
        }
        DoubleVector d = d0.add(d1);
        double total = 0;
        for (int j = 0; j < D.length(); j++) {
            total += d.lane(j);
        }
        for (; i < n; i++) {
            float e = Simd.exp(get(x, xo + 4L * i) - shift);
            if (out != null) {
                set(out, oo + 4L * i, e);
            }
            total += e;
        }
        return total;
    }

    /**
     * Backward of a row softmax, y, dy, dx (rows, cols), dx may alias dy: s = Σ_row dy ⊙ y (as
     * {@link Reductions#dot}), then {@code dx = y ⊙ (dy − s)} in f32 (absolute error about ulp(|y|·(|dy| + |s|))).
     */
    static void backward(WorkerPool pool, Tensor y, Tensor dy, Tensor dx) {
        MemorySegment sy = y.segment(), sd = dy.segment(), sx = dx.segment();
        long oy = y.byteOffset(), od = dy.byteOffset(), ox = dx.byteOffset();
        long cols = y.dim(-1);
        long rows = y.size() / Math.max(cols, 1);
        int n = (int) cols;
        Chunks.rows(pool, rows, cols, (r0, count) -> {
            for (long r = r0; r < r0 + count; r++) {
                long yr = oy + 4 * r * cols, dr = od + 4 * r * cols, xr = ox + 4 * r * cols;
                float s = (float) Reductions.dot(sd, dr, sy, yr, n);
                FloatVector sv = FloatVector.broadcast(F, s);
                int i = 0;
                for (int bound = F.loopBound(n); i < bound; i += L) {
                    long k = 4L * i;
                    load(sy, yr + k).mul(load(sd, dr + k).sub(sv)).intoMemorySegment(sx, xr + k, ORDER);
                }
                for (; i < n; i++) {
                    long k = 4L * i;
                    set(sx, xr + k, get(sy, yr + k) * (get(sd, dr + k) - s));
                }
            }
        });
    }
}
