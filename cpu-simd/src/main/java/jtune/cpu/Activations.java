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
 * SiLU and SwiGLU, forward and backward, element-wise over contiguous f32 tensors (checked by the caller), split
 * by {@link Chunks#elements}. σ is {@link Simd#sigmoid}; the rest is f32 arithmetic in the oracle's order, so
 * results are within a few ulp of the double oracle, except where σ underflows (x below about −87, where the
 * oracle's value is below 1e-36 in magnitude and this gives 0). Vector bodies; scalar tails with the same
 * operations (σ's scalar twin), so each element gets the same result wherever it falls.
 */
final class Activations {
    private Activations() {
    }

    /** {@code out = x · σ(x)}; out may alias x. */
    static void silu(WorkerPool pool, Tensor x, Tensor out) {
        MemorySegment sx = x.segment(), so = out.segment();
        long ox = x.byteOffset(), oo = out.byteOffset();
        Chunks.elements(pool, x.size(), (st, n) -> {
            long x0 = ox + 4 * st, o0 = oo + 4 * st;
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += L) {
                FloatVector v = load(sx, x0 + 4L * i);
                v.mul(Simd.sigmoid(v)).intoMemorySegment(so, o0 + 4L * i, ORDER);
            }
            for (; i < n; i++) {
                float v = get(sx, x0 + 4L * i);
                set(so, o0 + 4L * i, v * Simd.sigmoid(v));
            }
        });
    }

    /** {@code dx = dy · σ(x) · (1 + x · (1 − σ(x)))}; dx may alias dy. */
    static void siluBackward(WorkerPool pool, Tensor x, Tensor dy, Tensor dx) {
        MemorySegment sx = x.segment(), sd = dy.segment(), so = dx.segment();
        long ox = x.byteOffset(), od = dy.byteOffset(), oo = dx.byteOffset();
        Chunks.elements(pool, x.size(), (st, n) -> {
            long x0 = ox + 4 * st, d0 = od + 4 * st, o0 = oo + 4 * st;
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += L) {
                long k = 4L * i;
                FloatVector v = load(sx, x0 + k), s = Simd.sigmoid(v);
                load(sd, d0 + k).mul(s).mul(v.mul(s.neg().add(1f)).add(1f)).intoMemorySegment(so, o0 + k, ORDER);
            }
            for (; i < n; i++) {
                long k = 4L * i;
                float v = get(sx, x0 + k), s = Simd.sigmoid(v);
                set(so, o0 + k, get(sd, d0 + k) * s * (v * (1f - s) + 1f));
            }
        });
    }

    /** {@code out = gate · σ(gate) · up}. */
    static void swiglu(WorkerPool pool, Tensor gate, Tensor up, Tensor out) {
        MemorySegment sg = gate.segment(), su = up.segment(), so = out.segment();
        long og = gate.byteOffset(), ou = up.byteOffset(), oo = out.byteOffset();
        Chunks.elements(pool, gate.size(), (st, n) -> {
            long g0 = og + 4 * st, u0 = ou + 4 * st, o0 = oo + 4 * st;
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += L) {
                long k = 4L * i;
                FloatVector g = load(sg, g0 + k);
                g.mul(Simd.sigmoid(g)).mul(load(su, u0 + k)).intoMemorySegment(so, o0 + k, ORDER);
            }
            for (; i < n; i++) {
                long k = 4L * i;
                float g = get(sg, g0 + k);
                set(so, o0 + k, g * Simd.sigmoid(g) * get(su, u0 + k));
            }
        });
    }

    /** {@code dup = dout · gate · σ(gate)}, {@code dgate = dout · up · σ(gate) · (1 + gate · (1 − σ(gate)))}. */
    static void swigluBackward(WorkerPool pool, Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        MemorySegment sg = gate.segment(), su = up.segment(), sd = dout.segment();
        MemorySegment sdg = dgate.segment(), sdu = dup.segment();
        long og = gate.byteOffset(), ou = up.byteOffset(), od = dout.byteOffset();
        long odg = dgate.byteOffset(), odu = dup.byteOffset();
        Chunks.elements(pool, gate.size(), (st, n) -> {
            long g0 = og + 4 * st, u0 = ou + 4 * st, d0 = od + 4 * st, dg0 = odg + 4 * st, du0 = odu + 4 * st;
            int i = 0;
            for (int bound = F.loopBound(n); i < bound; i += L) {
                long k = 4L * i;
                FloatVector g = load(sg, g0 + k), d = load(sd, d0 + k), s = Simd.sigmoid(g);
                d.mul(g).mul(s).intoMemorySegment(sdu, du0 + k, ORDER);
                FloatVector slope = g.mul(s.neg().add(1f)).add(1f);
                d.mul(load(su, u0 + k)).mul(s).mul(slope).intoMemorySegment(sdg, dg0 + k, ORDER);
            }
            for (; i < n; i++) {
                long k = 4L * i;
                float g = get(sg, g0 + k), d = get(sd, d0 + k), s = Simd.sigmoid(g);
                set(sdu, du0 + k, d * g * s);
                set(sdg, dg0 + k, d * get(su, u0 + k) * s * (g * (1f - s) + 1f));
            }
        });
    }
}
