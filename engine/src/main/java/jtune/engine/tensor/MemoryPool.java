package jtune.engine.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;

/**
 * Host tensor storage: one long-lived shared arena, carved into 64-byte aligned blocks. A closed tensor's
 * block goes to a free list keyed by its size and is handed to the next allocation of that size, so a
 * training loop that allocates the same shapes every step allocates nothing new after the first.
 * Every block in use is recorded in the {@link MemoryLedger} under its {@link Category}.
 */
public final class MemoryPool implements AutoCloseable {
    /** Alignment of every block: one AVX-512 register, one cache line. */
    public static final long ALIGNMENT = 64;

    private final Arena arena = Arena.ofShared();
    private final MemoryLedger ledger;
    private final Map<Long, ArrayDeque<MemorySegment>> free = new HashMap<>();
    private long reserved;
    private boolean closed;

    public MemoryPool(MemoryLedger ledger) {
        this.ledger = ledger;
    }

    public MemoryLedger ledger() {
        return ledger;
    }

    /** A new contiguous f32/bf16/... tensor, zero-filled, recorded under {@code category}. */
    public Tensor allocate(String name, DType dtype, Category category, long... dims) {
        return allocate(name, dtype, category, Shape.of(dims));
    }

    public Tensor allocate(String name, DType dtype, Category category, Shape shape) {
        long bytes = dtype.bytesFor(shape.size());
        MemorySegment block = acquire(bytes);
        block.fill((byte) 0);
        ledger.allocated(category, bytes);
        return Tensor.owning(this, block, name, dtype, shape, category);
    }

    /** Bytes the arena holds, in use or waiting on a free list. */
    public synchronized long reservedBytes() {
        return reserved;
    }

    private synchronized MemorySegment acquire(long bytes) {
        if (closed) {
            throw new IllegalStateException("memory pool is closed; no tensor can be allocated from it");
        }
        ArrayDeque<MemorySegment> q = free.get(bytes);
        if (q != null && !q.isEmpty()) {
            return q.pop();
        }
        reserved += bytes;
        return arena.allocate(Math.max(bytes, 1), ALIGNMENT).asSlice(0, bytes);
    }

    synchronized void release(MemorySegment block, Category category) {
        ledger.released(category, block.byteSize());
        if (!closed) {
            free.computeIfAbsent(block.byteSize(), k -> new ArrayDeque<>()).push(block);
        }
    }

    /** Frees all storage; tensors still open become unusable (their use throws). */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            free.clear();
            arena.close();
        }
    }
}
