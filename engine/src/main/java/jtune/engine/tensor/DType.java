package jtune.engine.tensor;

/**
 * Storage type of a tensor's elements. Compute on the CPU is f32; the narrower float types widen on load.
 * Sizes are given in bits so that the packed low-bit formats of the quantizers (int2/3/4, NF4) fit the
 * same accounting: {@link #bytesFor(long)} rounds a packed run up to whole bytes.
 */
public enum DType {
    F32("f32", 32, true),
    BF16("bf16", 16, true),
    F16("f16", 16, true),
    I8("int8", 8, false),
    U8("uint8", 8, false),
    I32("int32", 32, false);

    private final String label;
    private final int bits;
    private final boolean floating;

    DType(String label, int bits, boolean floating) {
        this.label = label;
        this.bits = bits;
        this.floating = floating;
    }

    /** Bits one element occupies in storage. */
    public int bits() {
        return bits;
    }

    /** True for the floating-point storage types. */
    public boolean isFloating() {
        return floating;
    }

    /** Bytes of storage that {@code elements} elements of this type occupy, rounded up to a whole byte. */
    public long bytesFor(long elements) {
        if (elements < 0) {
            throw new IllegalArgumentException("element count must be >= 0, got " + elements);
        }
        return Math.ceilDivExact(Math.multiplyExact(elements, (long) bits), 8L);
    }

    /** Bytes of one element; only for the byte-aligned types. */
    public int byteSize() {
        if (bits % 8 != 0) {
            throw new UnsupportedOperationException(label + " is a packed type with no whole-byte element size");
        }
        return bits / 8;
    }

    @Override
    public String toString() {
        return label;
    }
}
