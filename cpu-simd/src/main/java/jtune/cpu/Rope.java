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

/** Rotary position embedding over contiguous f32 tensors (checked by the caller). */
final class Rope {
    private Rope() {
    }

    /**
     * In place on x (..., T, H, D), rotate-half pairing, cos and sin (T, D/2): for each head row (position p) and
     * i &lt; D/2, {@code x1' = fma(x1, c, −(x2·s))}, {@code x2' = fma(x1, s, x2·c)} with c = cos[p, i] and
     * s = ±sin[p, i] (− for {@code inverse}); error about ulp(|x1·c| + |x2·s|). Head rows are split by
     * {@link Chunks#rows}; vector body, scalar tail.
     */
    static void rope(WorkerPool pool, Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        MemorySegment sx = x.segment(), sc = cos.segment(), ss = sin.segment();
        long ox = x.byteOffset(), oc = cos.byteOffset(), os = sin.byteOffset();
        long t = x.dim(-3), h = x.dim(-2), d = x.dim(-1);
        int half = (int) (d / 2);
        float sign = inverse ? -1f : 1f;
        Chunks.rows(pool, x.size() / Math.max(d, 1), d, (r0, count) -> {
            for (long r = r0; r < r0 + count; r++) {
                long x1 = ox + 4 * r * d, x2 = x1 + 4L * half;
                long p = (r / h) % t;
                long c0 = oc + 4 * p * half, s0 = os + 4 * p * half;
                int i = 0;
                for (int bound = F.loopBound(half); i < bound; i += L) {
                    long k = 4L * i;
                    FloatVector c = load(sc, c0 + k), s = load(ss, s0 + k).mul(sign);
                    FloatVector a = load(sx, x1 + k), b = load(sx, x2 + k);
                    a.fma(c, b.mul(s).neg()).intoMemorySegment(sx, x1 + k, ORDER);
                    a.fma(s, b.mul(c)).intoMemorySegment(sx, x2 + k, ORDER);
                }
                for (; i < half; i++) {
                    long k = 4L * i;
                    float c = get(sc, c0 + k), s = get(ss, s0 + k) * sign;
                    float a = get(sx, x1 + k), b = get(sx, x2 + k);
                    set(sx, x1 + k, Math.fma(a, c, -(b * s)));
                    set(sx, x2 + k, Math.fma(a, s, b * c));
                }
            }
        });
    }
}
