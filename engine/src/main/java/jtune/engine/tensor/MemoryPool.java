package jtune.engine.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Tensor storage: one long-lived shared arena, carved into 64-byte aligned blocks; or, for a pool built over a
 * {@link DeviceMemory}, blocks of that device's memory, whose tensors are tagged with the device. A closed
 * tensor's block goes to a free list keyed by its size and is handed to the next allocation of that size, so a
 * training loop that allocates the same shapes every step allocates nothing new after the first.
 * Every block in use is recorded in the {@link MemoryLedger} under its {@link Category}.
 */
public final class MemoryPool implements AutoCloseable {
    /** Alignment of every block: one AVX-512 register, one cache line. */
    public static final long ALIGNMENT = 64;

    private final Arena arena = Arena.ofShared();
    private final MemoryLedger ledger;
    private final DeviceMemory deviceMemory;
    private final Map<Long, ArrayDeque<MemorySegment>> free = new HashMap<>();
    /** Every device block ever allocated, as (address, bytes), returned to the device on close. */
    private final List<long[]> deviceBlocks = new ArrayList<>();
    private long reserved;
    private volatile boolean closed;

    /** A pool of host memory. */
    public MemoryPool(MemoryLedger ledger) {
        this(ledger, null);
    }

    /** A pool of {@code deviceMemory}'s memory, or of host memory when it is null. */
    public MemoryPool(MemoryLedger ledger, DeviceMemory deviceMemory) {
        this.ledger = ledger;
        this.deviceMemory = deviceMemory;
    }

    /** Where this pool's tensors live. */
    public Device device() {
        return deviceMemory == null ? Device.CPU : deviceMemory.device();
    }

    /** The device memory this pool carves, or null for a host pool. */
    public DeviceMemory deviceMemory() {
        return deviceMemory;
    }

    /** True once {@link #close()} has run. */
    public boolean isClosed() {
        return closed;
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
        if (deviceMemory == null) {
            block.fill((byte) 0);
        } else if (bytes > 0) {
            deviceMemory.zero(block.address(), bytes);
        }
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
        if (deviceMemory == null) {
            return arena.allocate(Math.max(bytes, 1), ALIGNMENT).asSlice(0, bytes);
        }
        long held = Math.max(bytes, 1);
        long address = deviceMemory.allocate(held);
        deviceBlocks.add(new long[]{address, held});
        return MemorySegment.ofAddress(address);
    }

    /** Takes back a block of {@code bytes} bytes (a device block's segment is zero-length, so the size is given). */
    synchronized void release(MemorySegment block, long bytes, Category category) {
        ledger.released(category, bytes);
        if (!closed) {
            free.computeIfAbsent(bytes, k -> new ArrayDeque<>()).push(block);
        }
    }

    /** Frees all storage; tensors still open become unusable (their use throws). */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            free.clear();
            arena.close();
            for (long[] b : deviceBlocks) {
                deviceMemory.free(b[0], b[1]);
            }
            deviceBlocks.clear();
        }
    }
}
