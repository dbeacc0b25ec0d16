package jtune.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A strided view of typed storage. The tensor that allocated the storage owns it and frees it on
 * {@link #close()}; views ({@link #slice}, {@link #reshape}, {@link #transpose}) share it and fail with a
 * clear message once the owner is closed. Strides and offset are in elements. Host access through
 * {@link #get}/{@link #set} converts to and from f32 and is meant for tests and set-up, not hot loops:
 * kernels read {@link #segment()} at {@link #byteOffset()}.
 */
public final class Tensor implements AutoCloseable {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;

    /** The storage a family of views shares; closed once, by its owner. */
    private static final class Storage {
        final MemoryPool pool;
        final MemorySegment block;
        final Category category;
        volatile boolean closed;

        Storage(MemoryPool pool, MemorySegment block, Category category) {
            this.pool = pool;
            this.block = block;
            this.category = category;
        }
    }

    private final Storage storage;
    private final boolean owner;
    private final String name;
    private final DType dtype;
    private final Shape shape;
    private final long[] strides;
    private final long offset;
    private final Device device;

    private Tensor(Storage storage, boolean owner, String name, DType dtype, Shape shape, long[] strides, long offset,
                   Device device) {
        this.storage = storage;
        this.owner = owner;
        this.name = name;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        this.device = device;
    }

    static Tensor owning(MemoryPool pool, MemorySegment block, String name, DType dtype, Shape shape, Category category) {
        return new Tensor(new Storage(pool, block, category), true, name, dtype, shape, shape.contiguousStrides(), 0,
                Device.CPU);
    }

    /**
     * A tensor over memory that jtune does not own (a mapped file, a buffer of another library). It is not
     * recorded in any ledger and {@link #close()} does not free it.
     */
    public static Tensor wrap(MemorySegment segment, String name, DType dtype, Shape shape) {
        long need = dtype.bytesFor(shape.size());
        if (segment.byteSize() < need) {
            throw new IllegalArgumentException("tensor '" + name + "' " + shape + " " + dtype + " needs " + need
                    + " bytes but the segment holds " + segment.byteSize());
        }
        return new Tensor(new Storage(null, segment, Category.FROZEN_WEIGHTS), false, name, dtype, shape,
                shape.contiguousStrides(), 0, Device.CPU);
    }

    public String name() {
        return name;
    }

    public DType dtype() {
        return dtype;
    }

    public Shape shape() {
        return shape;
    }

    public int rank() {
        return shape.rank();
    }

    /** Extent of dimension {@code i}; negative counts from the end. */
    public long dim(int i) {
        return shape.dim(i);
    }

    public long size() {
        return shape.size();
    }

    public Device device() {
        return device;
    }

    public Category category() {
        return storage.category;
    }

    /** Stride of dimension {@code i} in elements; negative counts from the end. */
    public long stride(int i) {
        return strides[i < 0 ? strides.length + i : i];
    }

    public long[] strides() {
        return strides.clone();
    }

    /** Offset of the first element in elements from the start of {@link #segment()}. */
    public long offset() {
        return offset;
    }

    /** Offset of the first element in bytes; only for byte-aligned types. */
    public long byteOffset() {
        return offset * dtype.byteSize();
    }

    /** The whole storage block; fails if the owner has been closed. */
    public MemorySegment segment() {
        if (storage.closed) {
            throw new IllegalStateException("tensor '" + name + "' " + shape + " " + dtype + " is used after close");
        }
        return storage.block;
    }

    public boolean isClosed() {
        return storage.closed;
    }

    /** True when the elements are laid out row-major with no gaps. */
    public boolean isContiguous() {
        return Arrays.equals(strides, shape.contiguousStrides()) || shape.size() <= 1;
    }

    /** Elements {@code [start, end)} of dimension {@code dim}, sharing storage. */
    public Tensor slice(int dim, long start, long end) {
        int d = dim < 0 ? rank() + dim : dim;
        if (d < 0 || d >= rank()) {
            throw new IndexOutOfBoundsException("slice of dimension " + dim + " of tensor '" + name + "' " + shape);
        }
        if (start < 0 || end < start || end > shape.dim(d)) {
            throw new IndexOutOfBoundsException("slice [" + start + ", " + end + ") of dimension " + d + " of tensor '"
                    + name + "' " + shape + " is out of range [0, " + shape.dim(d) + "]");
        }
        segment();
        return new Tensor(storage, false, name, dtype, shape.with(d, end - start), strides,
                offset + start * strides[d], device);
    }

    /** The same contiguous elements seen with another shape of the same size. */
    public Tensor reshape(long... dims) {
        Shape s = Shape.of(dims);
        if (s.size() != shape.size()) {
            throw new IllegalArgumentException("cannot reshape tensor '" + name + "' " + shape + " (" + shape.size()
                    + " elements) to " + s + " (" + s.size() + " elements)");
        }
        if (!isContiguous()) {
            throw new IllegalArgumentException("cannot reshape tensor '" + name + "' " + shape
                    + ": it is a strided view; copy it to a contiguous tensor first");
        }
        segment();
        return new Tensor(storage, false, name, dtype, s, s.contiguousStrides(), offset, device);
    }

    /** Dimensions {@code a} and {@code b} swapped, sharing storage. */
    public Tensor transpose(int a, int b) {
        int i = a < 0 ? rank() + a : a;
        int j = b < 0 ? rank() + b : b;
        if (i < 0 || i >= rank() || j < 0 || j >= rank()) {
            throw new IndexOutOfBoundsException("transpose of dimensions " + a + " and " + b + " of tensor '" + name
                    + "' " + shape + " (rank " + rank() + ")");
        }
        long[] d = shape.toArray();
        long[] s = strides.clone();
        long t = d[i];
        d[i] = d[j];
        d[j] = t;
        t = s[i];
        s[i] = s[j];
        s[j] = t;
        segment();
        return new Tensor(storage, false, name, dtype, Shape.of(d), s, offset, device);
    }

    /** A view with another name (for error messages and the ledger's listings). */
    public Tensor named(String newName) {
        return new Tensor(storage, false, newName, dtype, shape, strides, offset, device);
    }

    private long elementIndex(long[] idx) {
        if (idx.length != rank()) {
            throw new IllegalArgumentException("index " + Arrays.toString(idx) + " has " + idx.length
                    + " coordinates but tensor '" + name + "' " + shape + " has rank " + rank());
        }
        long e = offset;
        for (int i = 0; i < idx.length; i++) {
            if (idx[i] < 0 || idx[i] >= shape.dim(i)) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(idx) + " is outside tensor '" + name
                        + "' " + shape);
            }
            e += idx[i] * strides[i];
        }
        return e;
    }

    /** Element at {@code idx}, converted to f32. */
    public float get(long... idx) {
        return load(segment(), dtype, elementIndex(idx));
    }

    /** Stores {@code v} (rounded to the storage type) at {@code idx}. */
    public void set(float v, long... idx) {
        store(segment(), dtype, elementIndex(idx), v);
    }

    /**
     * Element offset (from the start of {@link #segment()}) of the {@code n}-th element in row-major order,
     * following this view's strides.
     */
    public long offsetOf(long n) {
        long e = offset;
        for (int i = strides.length - 1; i >= 0; i--) {
            long d = shape.dim(i);
            e += (n % d) * strides[i];
            n /= d;
        }
        return e;
    }

    /** All elements in row-major order, as f32. */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(size())];
        MemorySegment seg = segment();
        for (int n = 0; n < out.length; n++) {
            out[n] = load(seg, dtype, offsetOf(n));
        }
        return out;
    }

    /** Fills this tensor from {@code values}, row-major, rounding to the storage type. */
    public Tensor copyFrom(float[] values) {
        if (values.length != size()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + shape + " has " + size()
                    + " elements but " + values.length + " values were given");
        }
        MemorySegment seg = segment();
        for (int n = 0; n < values.length; n++) {
            store(seg, dtype, offsetOf(n), values[n]);
        }
        return this;
    }

    /** Reads element {@code e} of a segment of type {@code t} as f32. */
    public static float load(MemorySegment seg, DType t, long e) {
        return switch (t) {
            case F32 -> seg.getAtIndex(F32, e);
            case BF16 -> Float.intBitsToFloat((seg.getAtIndex(I16, e) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(seg.getAtIndex(I16, e));
            case I8 -> seg.get(ValueLayout.JAVA_BYTE, e);
            case I32 -> seg.getAtIndex(I32, e);
        };
    }

    /** Writes {@code v} to element {@code e} of a segment of type {@code t}, rounding to nearest even. */
    public static void store(MemorySegment seg, DType t, long e, float v) {
        switch (t) {
            case F32 -> seg.setAtIndex(F32, e, v);
            case BF16 -> seg.setAtIndex(I16, e, toBf16(v));
            case F16 -> seg.setAtIndex(I16, e, Float.floatToFloat16(v));
            case I8 -> seg.set(ValueLayout.JAVA_BYTE, e, (byte) Math.max(-128, Math.min(127, Math.round(v))));
            case I32 -> seg.setAtIndex(I32, e, Math.round(v));
        }
    }

    /** f32 → bf16 bits, round to nearest even; NaN stays a (quiet) NaN. */
    public static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** Frees the storage if this tensor owns it; a view's close does nothing. Idempotent. */
    @Override
    public void close() {
        if (owner && !storage.closed) {
            storage.closed = true;
            if (storage.pool != null) {
                storage.pool.release(storage.block, storage.category);
            }
        }
    }

    @Override
    public String toString() {
        return "tensor '" + name + "' " + shape + " " + dtype + " on " + device;
    }
}
