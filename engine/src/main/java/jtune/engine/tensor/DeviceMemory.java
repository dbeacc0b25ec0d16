package jtune.engine.tensor;

import java.lang.foreign.MemorySegment;

/**
 * The memory of one accelerator, as a {@link MemoryPool} built over it carves it into tensors. Addresses are the
 * device's: the host never dereferences them. A device tensor's {@link Tensor#segment()} is a zero-length
 * segment at its block's address, so a host kernel handed one by mistake fails with an out-of-bounds access
 * instead of touching foreign memory. Data moves between host and device only through {@link #toDevice} and
 * {@link #toHost}, which the implementation counts.
 */
public interface DeviceMemory {
    /** The device this memory belongs to. */
    Device device();

    /** The address of a new block of {@code bytes} bytes (contents undefined); fails when the device is full. */
    long allocate(long bytes);

    /** Sets {@code bytes} bytes at {@code address} to zero. */
    void zero(long address, long bytes);

    /** Returns a block from {@link #allocate} of {@code bytes} bytes to the device. */
    void free(long address, long bytes);

    /** Copies all of {@code src} (host memory) to the device at {@code address}; returns when done. */
    void toDevice(MemorySegment src, long address);

    /** Copies {@code dst.byteSize()} bytes from the device at {@code address} into {@code dst}; returns when done. */
    void toHost(long address, MemorySegment dst);
}
