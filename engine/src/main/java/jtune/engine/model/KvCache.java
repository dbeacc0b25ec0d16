package jtune.engine.model;

import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * The keys and values of the positions a {@link LlamaModel} has seen in one sequence, for generation: per layer a
 * key and a value matrix (capacity, KVH·hd), f32, row p holding position p after q/k norm and RoPE (keys) or as
 * projected (values). {@link #length()} positions are filled. Recorded under {@link Category#WORKSPACE}: it lives as
 * long as one generation and holds no model state.
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys;
    private final Tensor[] values;
    private final int capacity;
    private int length;

    /** An empty cache for {@code capacity} positions (1 to the model's maxSeq) of a model of config {@code c}. */
    public KvCache(Session s, LlamaConfig c, int capacity) {
        if (capacity < 1 || capacity > c.maxSeq()) {
            throw new IllegalArgumentException("kv cache: capacity " + capacity + " must be between 1 and the model's "
                    + c.maxSeq() + " positions");
        }
        this.capacity = capacity;
        this.keys = new Tensor[c.layers()];
        this.values = new Tensor[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            keys[l] = s.f32("kv_cache.k." + l, Category.WORKSPACE, capacity, c.kvDim());
            values[l] = s.f32("kv_cache.v." + l, Category.WORKSPACE, capacity, c.kvDim());
        }
    }

    /** Positions the cache can hold. */
    public int capacity() {
        return capacity;
    }

    /** Positions filled: 0..length-1. */
    public int length() {
        return length;
    }

    /** Forgets every position (the storage is kept for the next sequence). */
    public void reset() {
        length = 0;
    }

    int layers() {
        return keys.length;
    }

    Tensor keys(int layer) {
        return keys[layer];
    }

    Tensor values(int layer) {
        return values[layer];
    }

    /**
     * Checks that {@code count} new positions from {@code start} can be written: start within the filled positions
     * (a smaller start rewrites from there on) and start + count within the capacity.
     */
    void checkAppend(int start, int count) {
        if (start < 0 || start > length) {
            throw new IllegalArgumentException("kv cache: new positions must start within the " + length
                    + " filled ones (0 to " + length + "), got " + start);
        }
        if (count < 1 || (long) start + count > capacity) {
            throw new IllegalArgumentException("kv cache: " + count + " new position(s) from position " + start
                    + " do not fit its " + capacity + " positions (the model's maximum sequence length is the limit;"
                    + " start a new sequence or use a shorter one)");
        }
    }

    /** Marks positions 0..end-1 as filled. */
    void filledTo(int end) {
        length = end;
    }

    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            keys[l].close();
            values[l].close();
        }
    }
}
