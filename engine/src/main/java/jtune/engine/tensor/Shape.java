package jtune.engine.tensor;

import java.util.Arrays;

/** The extents of a tensor, outermost first. Immutable; every extent is zero or more. */
public final class Shape {
    private final long[] dims;
    private final long size;

    private Shape(long[] dims) {
        long n = 1;
        for (long d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException("shape " + Arrays.toString(dims) + " has a negative extent");
            }
            n = Math.multiplyExact(n, d);
        }
        this.dims = dims;
        this.size = n;
    }

    public static Shape of(long... dims) {
        return new Shape(dims.clone());
    }

    public int rank() {
        return dims.length;
    }

    /** Extent of dimension {@code i}; negative {@code i} counts from the end (-1 is the last). */
    public long dim(int i) {
        int j = i < 0 ? dims.length + i : i;
        if (j < 0 || j >= dims.length) {
            throw new IndexOutOfBoundsException("dimension " + i + " of shape " + this + " (rank " + dims.length + ")");
        }
        return dims[j];
    }

    /** Number of elements. */
    public long size() {
        return size;
    }

    public long[] toArray() {
        return dims.clone();
    }

    /** Row-major strides in elements. */
    public long[] contiguousStrides() {
        long[] s = new long[dims.length];
        long acc = 1;
        for (int i = dims.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= dims[i];
        }
        return s;
    }

    /** This shape with dimension {@code i} replaced by {@code extent}. */
    public Shape with(int i, long extent) {
        long[] d = dims.clone();
        d[i < 0 ? d.length + i : i] = extent;
        return new Shape(d);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(dims, s.dims);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(dims);
    }

    @Override
    public String toString() {
        return Arrays.toString(dims);
    }
}
