package jtune.cpu;

import static jtune.cpu.Simd.BLOCK;
import static jtune.cpu.Simd.D;
import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.load;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * Reductions of contiguous f32 tensors (checked by the caller), and the same kernels over one span for the row
 * kernels. A span is read as four streams, its four quarters side by side (one stream per core left the memory system
 * idle: a sum read 15 GB/s from one stream and 22 from four), two f32 vector accumulators each, eight in all, enough
 * to cover the add and FMA latencies ({@link #dot} has one per stream: with sixteen loads a step C2 stopped
 * intrinsifying them and boxed every vector). Every {@link Simd#BLOCK} elements the accumulators are added as a tree
 * and widened into f64 lanes; at the end the f64 lanes are added in lane order (reduceLanes(ADD) would add in a tree
 * once C2 has compiled it and in lane order before, so its result would depend on the JIT's state). The leftover
 * whole vectors go first, through one accumulator that seeds the f64 lanes, then the last elements one at a time in
 * double (with the leftover loop after the streams instead, C2 boxed its accumulator). The widening and the lane sum
 * are written out in each kernel: as helpers, called once a block, C2 left them out of line and boxed. So an f32
 * partial chains at most BLOCK / (8·L) additions per lane (32 at 128 bits, 8 at 512): the error is below about 3e-6
 * of Σ|terms| at worst and far less in practice. Every step is in a fixed order, and {@link Chunks#partials} adds the
 * chunks in chunk order, so the result is the same with any thread count and in every JIT state.
 */
final class Reductions {
    private Reductions() {
    }

    /** Σ x. */
    static float sum(WorkerPool pool, Tensor x) {
        MemorySegment s = x.segment();
        long o = x.byteOffset();
        return (float) total(Chunks.partials(pool, x.size(), (st, n) -> sum(s, o + 4 * st, n)));
    }

    /** Σ x². */
    static float sumOfSquares(WorkerPool pool, Tensor x) {
        MemorySegment s = x.segment();
        long o = x.byteOffset();
        return (float) total(Chunks.partials(pool, x.size(), (st, n) -> sumOfSquares(s, o + 4 * st, n)));
    }

    /** Σ a ⊙ b. */
    static float dot(WorkerPool pool, Tensor a, Tensor b) {
        MemorySegment sa = a.segment(), sb = b.segment();
        long oa = a.byteOffset(), ob = b.byteOffset();
        return (float) total(Chunks.partials(pool, a.size(), (st, n) -> dot(sa, oa + 4 * st, sb, ob + 4 * st, n)));
    }

    /** max x, NaN if any element is NaN (x is not empty). */
    static float max(WorkerPool pool, Tensor x) {
        MemorySegment s = x.segment();
        long o = x.byteOffset();
        double m = Double.NEGATIVE_INFINITY;
        for (double p : Chunks.partials(pool, x.size(), (st, n) -> max(s, o + 4 * st, n))) {
            m = Math.max(m, p);
        }
        return (float) m;
    }

    private static double total(double[] parts) {
        double t = 0;
        for (double p : parts) {
            t += p;
        }
        return t;
    }

    /** Σ x[i], i &lt; n, f32 from byte offset xo. */
    static double sum(MemorySegment x, long xo, int n) {
        int q = n / (8 * L) * (2 * L);
        int i = 4 * q;
        FloatVector s = FloatVector.zero(F);
        for (; i < n - L + 1; i += L) {
            s = s.add(load(x, xo + 4L * i));
        }
        double total = 0;
        for (; i < n; i++) {
            total += get(x, xo + 4L * i);
        }
        DoubleVector d0 = (DoubleVector) s.convertShape(VectorOperators.F2D, D, 0);
        DoubleVector d1 = (DoubleVector) s.convertShape(VectorOperators.F2D, D, 1);
        long x1 = xo + 4L * q, x2 = x1 + 4L * q, x3 = x2 + 4L * q;
        for (i = 0; i < q; ) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            for (int stop = Math.min(q, i + BLOCK / 4); i < stop; i += 2 * L) {
                long k = 4L * i, k1 = k + 4L * L;
                s0 = s0.add(load(x, xo + k));
                s1 = s1.add(load(x, xo + k1));
                s2 = s2.add(load(x, x1 + k));
                s3 = s3.add(load(x, x1 + k1));
                s4 = s4.add(load(x, x2 + k));
                s5 = s5.add(load(x, x2 + k1));
                s6 = s6.add(load(x, x3 + k));
                s7 = s7.add(load(x, x3 + k1));
            }
            FloatVector f = s0.add(s1).add(s2.add(s3)).add(s4.add(s5).add(s6.add(s7)));
            d0 = d0.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 0));
            d1 = d1.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 1));
        }
        DoubleVector d = d0.add(d1);
        for (int j = 0; j < D.length(); j++) {
            total += d.lane(j);
        }
        return total;
    }

    /** Σ x[i]², i &lt; n, f32 from byte offset xo. */
    static double sumOfSquares(MemorySegment x, long xo, int n) {
        int q = n / (8 * L) * (2 * L);
        int i = 4 * q;
        FloatVector s = FloatVector.zero(F);
        for (; i < n - L + 1; i += L) {
            FloatVector v = load(x, xo + 4L * i);
            s = v.fma(v, s);
        }
        double total = 0;
        for (; i < n; i++) {
            double v = get(x, xo + 4L * i);
            total += v * v;
        }
        DoubleVector d0 = (DoubleVector) s.convertShape(VectorOperators.F2D, D, 0);
        DoubleVector d1 = (DoubleVector) s.convertShape(VectorOperators.F2D, D, 1);
        long x1 = xo + 4L * q, x2 = x1 + 4L * q, x3 = x2 + 4L * q;
        for (i = 0; i < q; ) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
            for (int stop = Math.min(q, i + BLOCK / 4); i < stop; i += 2 * L) {
                long k = 4L * i, k1 = k + 4L * L;
                FloatVector v0 = load(x, xo + k), v1 = load(x, xo + k1), v2 = load(x, x1 + k), v3 = load(x, x1 + k1);
                FloatVector v4 = load(x, x2 + k), v5 = load(x, x2 + k1), v6 = load(x, x3 + k), v7 = load(x, x3 + k1);
                s0 = v0.fma(v0, s0);
                s1 = v1.fma(v1, s1);
                s2 = v2.fma(v2, s2);
                s3 = v3.fma(v3, s3);
                s4 = v4.fma(v4, s4);
                s5 = v5.fma(v5, s5);
                s6 = v6.fma(v6, s6);
                s7 = v7.fma(v7, s7);
            }
            FloatVector f = s0.add(s1).add(s2.add(s3)).add(s4.add(s5).add(s6.add(s7)));
            d0 = d0.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 0));
            d1 = d1.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 1));
        }
        DoubleVector d = d0.add(d1);
        for (int j = 0; j < D.length(); j++) {
            total += d.lane(j);
        }
        return total;
    }

    /** Σ a[i]·b[i], i &lt; n, f32 from byte offsets ao and bo. */
    static double dot(MemorySegment a, long ao, MemorySegment b, long bo, int n) {
        int q = n / (8 * L) * (2 * L);
        int i = 4 * q;
        FloatVector s = FloatVector.zero(F);
        for (; i < n - L + 1; i += L) {
            s = load(a, ao + 4L * i).fma(load(b, bo + 4L * i), s);
        }
        double total = 0;
        for (; i < n; i++) {
            total += (double) get(a, ao + 4L * i) * get(b, bo + 4L * i);
        }
        DoubleVector d0 = (DoubleVector) s.convertShape(VectorOperators.F2D, D, 0);
        DoubleVector d1 = (DoubleVector) s.convertShape(VectorOperators.F2D, D, 1);
        long a1 = ao + 4L * q, a2 = a1 + 4L * q, a3 = a2 + 4L * q;
        long b1 = bo + 4L * q, b2 = b1 + 4L * q, b3 = b2 + 4L * q;
        for (i = 0; i < q; ) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0, s2 = s0, s3 = s0;
            for (int stop = Math.min(q, i + BLOCK / 4); i < stop; i += L) {
                long k = 4L * i;
                s0 = load(a, ao + k).fma(load(b, bo + k), s0);
                s1 = load(a, a1 + k).fma(load(b, b1 + k), s1);
                s2 = load(a, a2 + k).fma(load(b, b2 + k), s2);
                s3 = load(a, a3 + k).fma(load(b, b3 + k), s3);
            }
            FloatVector f = s0.add(s1).add(s2.add(s3));
            d0 = d0.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 0));
            d1 = d1.add((DoubleVector) f.convertShape(VectorOperators.F2D, D, 1));
        }
        DoubleVector d = d0.add(d1);
        for (int j = 0; j < D.length(); j++) {
            total += d.lane(j);
        }
        return total;
    }

    /** Σ a[i]·b[i]·c[i], i &lt; n, f32 from byte offsets ao, bo, co; (a·b) rounded to f32; one stream (a row's sum). */
    static double dot3(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment c, long co, int n) {
        DoubleVector d0 = DoubleVector.zero(D), d1 = d0;
        int i = 0;
        int bound = n - n % (2 * L);
        while (i < bound) {
            FloatVector s0 = FloatVector.zero(F), s1 = s0;
            for (int stop = Math.min(bound, i + BLOCK); i < stop; i += 2 * L) {
                long k = 4L * i, k1 = k + 4L * L;
                s0 = load(a, ao + k).mul(load(b, bo + k)).fma(load(c, co + k), s0);
                s1 = load(a, ao + k1).mul(load(b, bo + k1)).fma(load(c, co + k1), s1);
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
            long k = 4L * i;
            total += (double) (get(a, ao + k) * get(b, bo + k)) * get(c, co + k);
        }
        return total;
    }

    /**
     * max x[i], i &lt; n (−∞ for n = 0), NaN if any is NaN, +0.0 over −0.0 (Math.max); f32 from byte offset xo. Max
     * is exact, so any order does. Each accumulator takes a lane only where it is greater (m = v &gt; m ? v : m: one
     * compare and one blend; FloatVector.max, with its NaN and signed-zero rules, was several instructions a vector
     * and left the loop compute-bound), so NaN never enters and is caught instead by a mask of lanes unequal to
     * themselves; and as a lane keeps a −0.0 met before a +0.0, a −0.0 maximum is checked by a second pass that looks
     * for +0.0.
     */
    static float max(MemorySegment x, long xo, int n) {
        int q = n / (8 * L) * (2 * L);
        int i = 4 * q;
        FloatVector m0 = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        VectorMask<Float> nan = m0.compare(VectorOperators.NE, m0);
        for (; i < n - L + 1; i += L) {
            FloatVector v = load(x, xo + 4L * i);
            m0 = m0.blend(v, v.compare(VectorOperators.GT, m0));
            nan = nan.or(v.compare(VectorOperators.NE, v));
        }
        float m = Float.NEGATIVE_INFINITY;
        for (; i < n; i++) {
            m = Math.max(m, get(x, xo + 4L * i));
        }
        long x1 = xo + 4L * q, x2 = x1 + 4L * q, x3 = x2 + 4L * q;
        FloatVector m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0;
        for (i = 0; i < q; i += 2 * L) {
            long k = 4L * i, k1 = k + 4L * L;
            FloatVector v0 = load(x, xo + k), v1 = load(x, xo + k1), v2 = load(x, x1 + k), v3 = load(x, x1 + k1);
            FloatVector v4 = load(x, x2 + k), v5 = load(x, x2 + k1), v6 = load(x, x3 + k), v7 = load(x, x3 + k1);
            m0 = m0.blend(v0, v0.compare(VectorOperators.GT, m0));
            m1 = m1.blend(v1, v1.compare(VectorOperators.GT, m1));
            m2 = m2.blend(v2, v2.compare(VectorOperators.GT, m2));
            m3 = m3.blend(v3, v3.compare(VectorOperators.GT, m3));
            m4 = m4.blend(v4, v4.compare(VectorOperators.GT, m4));
            m5 = m5.blend(v5, v5.compare(VectorOperators.GT, m5));
            m6 = m6.blend(v6, v6.compare(VectorOperators.GT, m6));
            m7 = m7.blend(v7, v7.compare(VectorOperators.GT, m7));
            nan = nan.or(v0.compare(VectorOperators.NE, v0).or(v1.compare(VectorOperators.NE, v1))
                    .or(v2.compare(VectorOperators.NE, v2).or(v3.compare(VectorOperators.NE, v3)))
                    .or(v4.compare(VectorOperators.NE, v4).or(v5.compare(VectorOperators.NE, v5))
                    .or(v6.compare(VectorOperators.NE, v6).or(v7.compare(VectorOperators.NE, v7)))));
        }
        if (nan.anyTrue() || Float.isNaN(m)) {
            return Float.NaN;
        }
        m = Math.max(m, m0.max(m1).max(m2.max(m3)).max(m4.max(m5).max(m6.max(m7))).reduceLanes(VectorOperators.MAX));
        if (Float.floatToRawIntBits(m) != Float.floatToRawIntBits(-0f)) {
            return m;
        }
        for (i = 0; i < n - L + 1; i += L) {
            if (load(x, xo + 4L * i).reinterpretAsInts().compare(VectorOperators.EQ, 0).anyTrue()) {
                return 0f;
            }
        }
        for (; i < n; i++) {
            if (Float.floatToRawIntBits(get(x, xo + 4L * i)) == 0) {
                return 0f;
            }
        }
        return m;
    }
}
