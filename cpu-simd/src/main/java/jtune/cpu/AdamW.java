package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.load;
import static jtune.cpu.Simd.set;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jtune.engine.backend.AdamWStep;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/** One AdamW step, element-wise over contiguous f32 param, grad, m, v of one shape (checked by the caller). */
final class AdamW {
    private AdamW() {
    }

    /**
     * {@code m = fma(β1, m, (1−β1)·g)}, {@code v = fma(β2, v, ((1−β2)·g)·g)}, {@code p = fma(m /
     * (sqrt(v)·(1/sqrt(1−β2^t)) + eps), −lr/(1−β1^t), p·(1 − lr·wd))}, in f32 with the scalars computed in double and
     * rounded once; error a few ulp of |p| + |update| against the double oracle. Split by {@link Chunks#elements};
     * vector body, scalar tail with the same operations.
     */
    static void step(WorkerPool pool, Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep s) {
        MemorySegment sp = param.segment(), sg = grad.segment(), sm = m.segment(), sv = v.segment();
        long op = param.byteOffset(), og = grad.byteOffset(), om = m.byteOffset(), ov = v.byteOffset();
        float b1 = s.beta1(), c1 = (float) (1 - (double) s.beta1());
        float b2 = s.beta2(), c2 = (float) (1 - (double) s.beta2());
        float decay = (float) (1 - (double) s.lr() * s.weightDecay());
        float minusStep = (float) (-s.lr() / s.biasCorrection1());
        float rsqrtBc2 = (float) (1 / Math.sqrt(s.biasCorrection2()));
        float eps = s.eps();
        Chunks.elements(pool, param.size(), (st, n) -> {
            long p0 = op + 4 * st, g0 = og + 4 * st, m0 = om + 4 * st, v0 = ov + 4 * st;
            FloatVector vb1 = FloatVector.broadcast(F, b1), vb2 = FloatVector.broadcast(F, b2);
            FloatVector vStep = FloatVector.broadcast(F, minusStep);
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += L) {
                long k = 4L * i;
                FloatVector g = load(sg, g0 + k);
                FloatVector mi = load(sm, m0 + k).fma(vb1, g.mul(c1));
                FloatVector vi = load(sv, v0 + k).fma(vb2, g.mul(c2).mul(g));
                FloatVector denom = vi.sqrt().fma(rsqrtBc2, eps);
                mi.intoMemorySegment(sm, m0 + k, ORDER);
                vi.intoMemorySegment(sv, v0 + k, ORDER);
                mi.div(denom).fma(vStep, load(sp, p0 + k).mul(decay)).intoMemorySegment(sp, p0 + k, ORDER);
            }
            for (; i < n; i++) {
                long k = 4L * i;
                float g = get(sg, g0 + k);
                float mi = Math.fma(get(sm, m0 + k), b1, g * c1);
                float vi = Math.fma(get(sv, v0 + k), b2, g * c2 * g);
                float denom = Math.fma((float) Math.sqrt(vi), rsqrtBc2, eps);
                set(sm, m0 + k, mi);
                set(sv, v0 + k, vi);
                set(sp, p0 + k, Math.fma(mi / denom, minusStep, get(sp, p0 + k) * decay));
            }
        });
    }
}
