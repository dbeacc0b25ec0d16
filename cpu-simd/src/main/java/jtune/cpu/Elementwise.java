package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.load;
import static jtune.cpu.Simd.set;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * Element-wise f32 kernels over contiguous tensors (checked by the caller), and copy. Each works on one span of a
 * {@link Chunks#elements} split: a vector body of one load/compute/store per step (memory-bound, so more
 * accumulators buy nothing) and a scalar tail. Every result is one f32 operation or one FMA, rounded exactly as
 * the scalar oracle rounds it, so they agree bit for bit.
 */
final class Elementwise {
    private Elementwise() {
    }

    /** {@code out = a + b}; out may alias a or b. */
    static void add(WorkerPool pool, Tensor a, Tensor b, Tensor out) {
        MemorySegment sa = a.segment(), sb = b.segment(), so = out.segment();
        long oa = a.byteOffset(), ob = b.byteOffset(), oo = out.byteOffset();
        Chunks.elements(pool, a.size(), (s, n) -> add(sa, oa + 4 * s, sb, ob + 4 * s, so, oo + 4 * s, n));
    }

    private static void add(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            long k = 4L * i;
            load(a, ao + k).add(load(b, bo + k)).intoMemorySegment(o, oo + k, ORDER);
        }
        for (; i < n; i++) {
            long k = 4L * i;
            set(o, oo + k, get(a, ao + k) + get(b, bo + k));
        }
    }

    /** {@code out = a ⊙ b}; out may alias a or b. */
    static void mul(WorkerPool pool, Tensor a, Tensor b, Tensor out) {
        MemorySegment sa = a.segment(), sb = b.segment(), so = out.segment();
        long oa = a.byteOffset(), ob = b.byteOffset(), oo = out.byteOffset();
        Chunks.elements(pool, a.size(), (s, n) -> mul(sa, oa + 4 * s, sb, ob + 4 * s, so, oo + 4 * s, n));
    }

    private static void mul(MemorySegment a, long ao, MemorySegment b, long bo, MemorySegment o, long oo, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            long k = 4L * i;
            load(a, ao + k).mul(load(b, bo + k)).intoMemorySegment(o, oo + k, ORDER);
        }
        for (; i < n; i++) {
            long k = 4L * i;
            set(o, oo + k, get(a, ao + k) * get(b, bo + k));
        }
    }

    /** {@code out = s · x}; out may alias x. */
    static void scale(WorkerPool pool, Tensor x, float s, Tensor out) {
        MemorySegment sx = x.segment(), so = out.segment();
        long ox = x.byteOffset(), oo = out.byteOffset();
        Chunks.elements(pool, x.size(), (st, n) -> scale(sx, ox + 4 * st, s, so, oo + 4 * st, n));
    }

    /** {@code o[i] = s · x[i]} for i &lt; n (o may be x), f32 at byte offsets xo and oo. */
    static void scale(MemorySegment x, long xo, float s, MemorySegment o, long oo, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            long k = 4L * i;
            load(x, xo + k).mul(s).intoMemorySegment(o, oo + k, ORDER);
        }
        for (; i < n; i++) {
            long k = 4L * i;
            set(o, oo + k, get(x, xo + k) * s);
        }
    }

    /** {@code y = fma(alpha, x, y)}. */
    static void axpy(WorkerPool pool, float alpha, Tensor x, Tensor y) {
        MemorySegment sx = x.segment(), sy = y.segment();
        long ox = x.byteOffset(), oy = y.byteOffset();
        Chunks.elements(pool, x.size(), (s, n) -> axpy(alpha, sx, ox + 4 * s, sy, oy + 4 * s, n));
    }

    private static void axpy(float alpha, MemorySegment x, long xo, MemorySegment y, long yo, int n) {
        FloatVector a = FloatVector.broadcast(F, alpha);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            long k = 4L * i;
            a.fma(load(x, xo + k), load(y, yo + k)).intoMemorySegment(y, yo + k, ORDER);
        }
        for (; i < n; i++) {
            long k = 4L * i;
            set(y, yo + k, Math.fma(alpha, get(x, xo + k), get(y, yo + k)));
        }
    }

    /** Every element of x set to {@code value}. */
    static void fill(WorkerPool pool, Tensor x, float value) {
        MemorySegment sx = x.segment();
        long ox = x.byteOffset();
        Chunks.elements(pool, x.size(), (s, n) -> fill(sx, ox + 4 * s, value, n));
    }

    /** {@code x[i] = value} for i &lt; n, f32 from byte offset xo. */
    static void fill(MemorySegment x, long xo, float value, int n) {
        FloatVector v = FloatVector.broadcast(F, value);
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            v.intoMemorySegment(x, xo + 4L * i, ORDER);
        }
        for (; i < n; i++) {
            set(x, xo + 4L * i, value);
        }
    }

    /**
     * {@code dst = src}, any element type. A contiguous src is copied in chunks of bytes; a strided one row by row
     * (rows of its last dimension), each row one block copy if its elements are adjacent, else element by element.
     */
    static void copy(WorkerPool pool, Tensor src, Tensor dst) {
        MemorySegment ss = src.segment(), sd = dst.segment();
        int bytes = dst.dtype().byteSize();
        if (src.isContiguous()) {
            copyBytes(pool, ss, src.byteOffset(), sd, dst.byteOffset(), src.size(), bytes);
            return;
        }
        long cols = src.dim(-1), step = src.stride(-1);
        Chunks.rows(pool, src.size() / cols, cols, (r0, rows) -> {
            for (long r = r0; r < r0 + rows; r++) {
                long from = src.offsetOf(r * cols) * bytes, to = dst.byteOffset() + r * cols * bytes;
                if (step == 1) {
                    MemorySegment.copy(ss, from, sd, to, cols * bytes);
                } else {
                    copyStrided(ss, from, step * bytes, sd, to, cols, bytes);
                }
            }
        });
    }

    /** Copies {@code n} contiguous elements of {@code bytes} bytes each, in parallel chunks. */
    static void copyBytes(WorkerPool pool, MemorySegment src, long so, MemorySegment dst, long dO, long n, int bytes) {
        Chunks.elements(pool, n, (s, c) ->
                MemorySegment.copy(src, so + s * bytes, dst, dO + s * bytes, (long) c * bytes));
    }

    private static void copyStrided(MemorySegment src, long from, long step, MemorySegment dst, long to, long n,
                                    int bytes) {
        for (long j = 0; j < n; j++, from += step, to += bytes) {
            switch (bytes) {
                case 4 -> dst.set(ValueLayout.JAVA_INT_UNALIGNED, to, src.get(ValueLayout.JAVA_INT_UNALIGNED, from));
                case 2 -> dst.set(ValueLayout.JAVA_SHORT_UNALIGNED, to, src.get(ValueLayout.JAVA_SHORT_UNALIGNED, from));
                default -> MemorySegment.copy(src, from, dst, to, bytes);
            }
        }
    }
}
