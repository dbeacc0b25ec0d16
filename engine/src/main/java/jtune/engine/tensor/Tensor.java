package jtune.engine.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * A strided view of typed storage. The tensor that allocated the storage owns it and frees it on
 * {@link #close()}; views ({@link #slice}, {@link #reshape}, {@link #transpose}) share it and fail with a
 * clear message once the owner is closed. Strides and offset are in elements. Host access through
 * {@link #get}/{@link #set} converts to and from f32 and is meant for tests and set-up, not hot loops:
 * kernels read {@link #segment()} at {@link #byteOffset()}. A tensor from a pool over a {@link DeviceMemory} lives
 * on that device: its elements are reached by device kernels, or copied whole with {@link #toFloatArray} and
 * {@link #copyFrom(float[])}.
 */
public final class Tensor implements AutoCloseable {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;

    /** The storage a family of views shares; closed once, by its owner. */
    private static final class Storage {
        final MemoryPool pool;
        final MemoryLedger ledger;
        final MemorySegment block;
        final Category category;
        volatile boolean closed;

        Storage(MemoryPool pool, MemoryLedger ledger, MemorySegment block, Category category) {
            this.pool = pool;
            this.ledger = ledger;
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
        return new Tensor(new Storage(pool, null, block, category), true, name, dtype, shape, shape.contiguousStrides(), 0,
                pool.device());
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
        return new Tensor(new Storage(null, null, segment, Category.FROZEN_WEIGHTS), false, name, dtype, shape,
                shape.contiguousStrides(), 0, Device.CPU);
    }

    /**
     * A tensor over the first bytes of memory that jtune does not free (a mapped file), counted in
     * {@code ledger} under {@code category} while it is open. {@link #close()} releases the count and makes
     * the tensor and its views unusable; it frees nothing, the memory's owner does (the mapping's arena).
     */
    public static Tensor wrap(MemorySegment segment, String name, DType dtype, Shape shape, MemoryLedger ledger,
                              Category category) {
        long need = dtype.bytesFor(shape.size());
        if (segment.byteSize() < need) {
            throw new IllegalArgumentException("tensor '" + name + "' " + shape + " " + dtype + " needs " + need
                    + " bytes but the segment holds " + segment.byteSize());
        }
        ledger.allocated(category, need);
        return new Tensor(new Storage(null, ledger, segment.asSlice(0, need), category), true, name, dtype, shape,
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

    /**
     * The whole storage block; fails if the owner has been closed. For a tensor on a device this is a zero-length
     * segment at the block's device address: device kernels take the address, host access fails.
     */
    public MemorySegment segment() {
        if (storage.closed || device.kind() != Device.Kind.CPU && storage.pool.isClosed()) {
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

    /**
     * A view of this contiguous tensor's elements with its own shape, strides and offset (in elements, the offset
     * counted from this tensor's first element): the general form of {@link #slice}, {@link #transpose} and
     * {@link #reshape}. Strides must not be negative and every element the view reaches must be one of this
     * tensor's.
     */
    public Tensor view(long[] dims, long[] viewStrides, long viewOffset) {
        Shape s = Shape.of(dims);
        if (viewStrides.length != dims.length) {
            throw new IllegalArgumentException("view of tensor '" + name + "': " + dims.length + " dimensions but "
                    + viewStrides.length + " strides");
        }
        if (!isContiguous()) {
            throw new IllegalArgumentException("view of tensor '" + name + "' " + shape
                    + ": it is a strided view; views are taken of contiguous tensors");
        }
        long last = viewOffset;
        for (int i = 0; i < dims.length; i++) {
            if (viewStrides[i] < 0) {
                throw new IllegalArgumentException("view of tensor '" + name + "': stride " + viewStrides[i]
                        + " of dimension " + i + " is negative");
            }
            last += (dims[i] - 1) * viewStrides[i];
        }
        if (viewOffset < 0 || s.size() > 0 && last >= size()) {
            throw new IndexOutOfBoundsException("view " + s + " strides " + Arrays.toString(viewStrides) + " at offset "
                    + viewOffset + " reaches outside tensor '" + name + "' " + shape + " (" + size() + " elements)");
        }
        segment();
        return new Tensor(storage, false, name, dtype, s, viewStrides.clone(), offset + viewOffset, device);
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

    /** Element at {@code idx}, converted to f32; host tensors only. */
    public float get(long... idx) {
        return load(hostSegment("get"), dtype, elementIndex(idx));
    }

    /** Stores {@code v} (rounded to the storage type) at {@code idx}; host tensors only. */
    public void set(float v, long... idx) {
        store(hostSegment("set"), dtype, elementIndex(idx), v);
    }

    private MemorySegment hostSegment(String what) {
        if (device.kind() != Device.Kind.CPU) {
            throw new IllegalStateException(what + " of an element of " + this + ": element access is for host tensors; "
                    + "use toFloatArray() or copyFrom(float[]), which copy the whole tensor");
        }
        return segment();
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

    /**
     * All elements in row-major order, as f32. A tensor on a device is copied to the host first (one counted
     * transfer); it must be contiguous.
     */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(size())];
        if (device.kind() != Device.Kind.CPU) {
            try (Arena staging = Arena.ofConfined()) {
                MemorySegment host = staging.allocate(Math.max(1, dtype.bytesFor(size())), 8);
                storage.pool.deviceMemory().toHost(deviceAddress("read"), host.asSlice(0, dtype.bytesFor(size())));
                for (int n = 0; n < out.length; n++) {
                    out[n] = load(host, dtype, n);
                }
            }
            return out;
        }
        MemorySegment seg = segment();
        for (int n = 0; n < out.length; n++) {
            out[n] = load(seg, dtype, offsetOf(n));
        }
        return out;
    }

    /**
     * Fills this tensor from {@code values}, row-major, rounding to the storage type. A tensor on a device
     * receives them in one counted transfer from the host; it must be contiguous.
     */
    public Tensor copyFrom(float[] values) {
        if (values.length != size()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + shape + " has " + size()
                    + " elements but " + values.length + " values were given");
        }
        if (device.kind() != Device.Kind.CPU) {
            try (Arena staging = Arena.ofConfined()) {
                MemorySegment host = staging.allocate(Math.max(1, dtype.bytesFor(size())), 8);
                for (int n = 0; n < values.length; n++) {
                    store(host, dtype, n, values[n]);
                }
                storage.pool.deviceMemory().toDevice(host.asSlice(0, dtype.bytesFor(size())), deviceAddress("write"));
            }
            return this;
        }
        MemorySegment seg = segment();
        if (dtype == DType.F32 && isContiguous()) {
            MemorySegment.copy(values, 0, seg, F32, byteOffset(), values.length);
            return this;
        }
        for (int n = 0; n < values.length; n++) {
            store(seg, dtype, offsetOf(n), values[n]);
        }
        return this;
    }

    /**
     * Copies this contiguous tensor's bytes, as stored, into {@code dst}, host memory of exactly that size; a tensor on a
     * device in one counted transfer (then {@code dst} must be native memory, as a driver copies into it).
     */
    public void copyBytesTo(MemorySegment dst) {
        long bytes = dtype.bytesFor(size());
        if (!isContiguous() || dst.byteSize() != bytes) {
            throw new IllegalArgumentException("cannot copy " + this + " as bytes into " + dst.byteSize() + " bytes: "
                    + "it must be contiguous and the destination " + bytes + " bytes");
        }
        if (device.kind() != Device.Kind.CPU) {
            storage.pool.deviceMemory().toHost(deviceAddress("read"), dst);
        } else {
            MemorySegment.copy(segment(), byteOffset(), dst, 0, bytes);
        }
    }

    /**
     * Fills this contiguous tensor with the bytes of {@code src}, host memory of exactly its byte size, as stored; a
     * tensor on a device in one counted transfer (then {@code src} must be native memory).
     */
    public Tensor copyBytesFrom(MemorySegment src) {
        long bytes = dtype.bytesFor(size());
        if (!isContiguous() || src.byteSize() != bytes) {
            throw new IllegalArgumentException("cannot fill " + this + " from " + src.byteSize() + " bytes: it must be "
                    + "contiguous and the source " + bytes + " bytes");
        }
        if (device.kind() != Device.Kind.CPU) {
            storage.pool.deviceMemory().toDevice(src, deviceAddress("write"));
        } else {
            MemorySegment.copy(src, 0, segment(), byteOffset(), bytes);
        }
        return this;
    }

    /** Device address of the first element of a contiguous device tensor. */
    private long deviceAddress(String what) {
        if (!isContiguous()) {
            throw new IllegalArgumentException("cannot " + what + " " + this + " from the host: it is a strided view; "
                    + "copy it to a contiguous tensor first");
        }
        return segment().address() + byteOffset();
    }

    /** Reads element {@code e} of a segment of type {@code t} as f32. */
    public static float load(MemorySegment seg, DType t, long e) {
        return switch (t) {
            case F32 -> seg.getAtIndex(F32, e);
            case BF16 -> Float.intBitsToFloat((seg.getAtIndex(I16, e) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(seg.getAtIndex(I16, e));
            case I8 -> seg.get(ValueLayout.JAVA_BYTE, e);
            case U8 -> seg.get(ValueLayout.JAVA_BYTE, e) & 0xff;
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
            case U8 -> seg.set(ValueLayout.JAVA_BYTE, e, (byte) Math.max(0, Math.min(255, Math.round(v))));
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
                storage.pool.release(storage.block, dtype.bytesFor(shape.size()), storage.category);
            } else if (storage.ledger != null) {
                storage.ledger.released(storage.category, storage.block.byteSize());
            }
        }
    }

    @Override
    public String toString() {
        return "tensor '" + name + "' " + shape + " " + dtype + " on " + device;
    }
}
