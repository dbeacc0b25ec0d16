package jtune.test;

import static org.assertj.core.api.Assertions.fail;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/**
 * The tensors of one conformance test. Every tensor is a view inside a larger allocation: it starts 16 or
 * 19 elements in (so both 64-byte aligned and unaligned starts occur, and a kernel that ignores the view's
 * offset reads the wrong data), and every element of the allocation outside the view holds a guard pattern
 * (all bits set: NaN for the float types, -1 for int32). {@link #checkGuards} fails if any guard changed,
 * i.e. if a kernel wrote outside its output. The storage comes from a pool shared by the tests of a class, so
 * blocks of the sizes the tests repeat are reused rather than allocated afresh.
 */
final class Operands implements AutoCloseable {
    private static final int GUARD = 16;

    private record Guarded(Tensor buffer, Tensor view, boolean[] inView) {
    }

    final long seed;
    final SplittableRandom rng;
    private final MemoryPool pool;
    private final List<Guarded> live = new ArrayList<>();

    Operands(long seed, MemoryPool pool) {
        this.seed = seed;
        this.rng = new SplittableRandom(seed);
        this.pool = pool;
    }

    /**
     * A view made by {@code carve} from a guarded allocation of {@code bufferDims}; the view's elements are
     * poisoned (NaN, or -1 for int32) until filled.
     */
    Tensor carve(String name, DType type, long[] bufferDims, UnaryOperator<Tensor> carve) {
        long n = 1;
        for (long d : bufferDims) {
            n = Math.multiplyExact(n, d);
        }
        int front = rng.nextBoolean() ? GUARD : GUARD + 3;
        Tensor flat = pool.allocate(name + "-buffer", type, Category.WORKSPACE, n + 2 * GUARD + 3);
        flat.segment().fill((byte) 0xff);
        Tensor view = carve.apply(flat.slice(0, front, front + n).reshape(bufferDims)).named(name);
        boolean[] inView = new boolean[Math.toIntExact(flat.size())];
        if (view.isContiguous()) {
            Arrays.fill(inView, (int) view.offset(), (int) (view.offset() + view.size()), true);
        } else {
            for (long e = 0; e < view.size(); e++) {
                inView[Math.toIntExact(view.offsetOf(e))] = true;
            }
        }
        live.add(new Guarded(flat, view, inView));
        return view;
    }

    /** A contiguous tensor, poisoned. */
    Tensor poisoned(String name, DType type, long... dims) {
        return carve(name, type, dims, t -> t);
    }

    Tensor poisoned(String name, long... dims) {
        return poisoned(name, DType.F32, dims);
    }

    /** A contiguous f32 tensor, uniform in [lo, hi). */
    Tensor uniform(String name, double lo, double hi, long... dims) {
        return fillUniform(poisoned(name, dims), lo, hi);
    }

    /** A contiguous f32 tensor of integers uniform in [-r, r]. */
    Tensor integers(String name, int r, long... dims) {
        Tensor t = poisoned(name, dims);
        float[] v = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = rng.nextInt(-r, r + 1);
        }
        return write(t, v);
    }

    Tensor fillUniform(Tensor t, double lo, double hi) {
        float[] v = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        return write(t, v);
    }

    /** An int32 tensor (N) holding {@code ids}. */
    Tensor ids(String name, int[] ids) {
        Tensor t = poisoned(name, DType.I32, ids.length);
        MemorySegment seg = t.segment();
        for (int i = 0; i < ids.length; i++) {
            seg.setAtIndex(ValueLayout.JAVA_INT, t.offset() + i, ids[i]);
        }
        return t;
    }

    /** A new guarded tensor with the shape, type and contents of {@code src} (bit for bit). */
    Tensor copyOf(String name, Tensor src) {
        Tensor t = poisoned(name, src.dtype(), src.shape().toArray());
        long bytes = src.dtype().byteSize();
        if (src.isContiguous()) {
            MemorySegment.copy(src.segment(), src.byteOffset(), t.segment(), t.byteOffset(), src.size() * bytes);
            return t;
        }
        for (long e = 0; e < src.size(); e++) {
            MemorySegment.copy(src.segment(), src.offsetOf(e) * bytes, t.segment(), t.offsetOf(e) * bytes, bytes);
        }
        return t;
    }

    /** The elements of {@code t} in row-major order, as f32 (what {@link Tensor#toFloatArray} gives, faster). */
    static float[] read(Tensor t) {
        float[] v = new float[Math.toIntExact(t.size())];
        if (t.dtype() == DType.F32 && hasUnitRows(t)) {
            int cols = (int) t.dim(-1);
            for (int r = 0; r < v.length / cols; r++) {
                MemorySegment.copy(t.segment(), ValueLayout.JAVA_FLOAT, 4 * t.offsetOf((long) r * cols), v, r * cols, cols);
            }
        } else if (!t.isContiguous()) {
            return t.toFloatArray();
        } else {
            MemorySegment seg = t.segment();
            for (int i = 0; i < v.length; i++) {
                v[i] = Tensor.load(seg, t.dtype(), t.offset() + i);
            }
        }
        return v;
    }

    /** Stores {@code v} into {@code t} in row-major order (what {@link Tensor#copyFrom} does, faster). */
    static Tensor write(Tensor t, float[] v) {
        if (t.dtype() != DType.F32 || !hasUnitRows(t) || v.length != t.size()) {
            return t.copyFrom(v);
        }
        int cols = (int) t.dim(-1);
        for (int r = 0; r < v.length / cols; r++) {
            MemorySegment.copy(v, r * cols, t.segment(), ValueLayout.JAVA_FLOAT, 4 * t.offsetOf((long) r * cols), cols);
        }
        return t;
    }

    /** True when t is non-empty with unit stride in its last dimension: each row is one run of memory. */
    private static boolean hasUnitRows(Tensor t) {
        return t.rank() > 0 && t.size() > 0 && t.stride(-1) == 1;
    }

    /** An f32 tensor that has been closed: every use of it must fail. */
    Tensor closed(String name, long... dims) {
        Tensor t = pool.allocate(name, DType.F32, Category.WORKSPACE, dims);
        t.close();
        return t;
    }

    /** Fails naming {@code what} if any guard element of any live tensor changed. */
    void checkGuards(String what) {
        for (Guarded g : live) {
            MemorySegment seg = g.buffer().segment();
            int bytes = g.buffer().dtype().byteSize();
            for (int e = 0; e < g.inView().length; e++) {
                if (g.inView()[e]) {
                    continue;
                }
                for (int b = 0; b < bytes; b++) {
                    if (seg.get(ValueLayout.JAVA_BYTE, (long) e * bytes + b) != (byte) 0xff) {
                        fail("%s: wrote outside %s: element %d of its buffer, %d elements from the view's start "
                                + "(seed %d)", what, g.view(), e, e - g.view().offset(), seed);
                    }
                }
            }
        }
    }

    /** Checks the guards, then frees every tensor made so far. */
    void release(String what) {
        checkGuards(what);
        for (Guarded g : live) {
            g.buffer().close();
        }
        live.clear();
    }

    /** Frees every tensor made so far, without checking the guards (a failed test may leave them broken). */
    @Override
    public void close() {
        for (Guarded g : live) {
            g.buffer().close();
        }
        live.clear();
    }
}
