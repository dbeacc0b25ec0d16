package jtune.engine.tokenizer;

import java.util.Arrays;

/** A growable list of ints. */
final class IntBuffer {
    private int[] a;
    private int size;

    IntBuffer(int capacity) {
        a = new int[Math.max(4, capacity)];
    }

    void add(int v) {
        if (size == a.length) {
            a = Arrays.copyOf(a, size * 2);
        }
        a[size++] = v;
    }

    void addAll(int[] v) {
        if (size + v.length > a.length) {
            a = Arrays.copyOf(a, Math.max(size + v.length, size * 2));
        }
        System.arraycopy(v, 0, a, size, v.length);
        size += v.length;
    }

    int size() {
        return size;
    }

    /** The backing array, of which the first {@link #size()} are the elements. */
    int[] array() {
        return a;
    }

    int[] toArray() {
        return Arrays.copyOf(a, size);
    }
}
