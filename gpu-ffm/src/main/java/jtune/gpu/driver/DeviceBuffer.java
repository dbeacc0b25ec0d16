package jtune.gpu.driver;

import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;

/** A block of device memory from {@code cuMemAlloc_v2}, counted in a ledger while open; close frees it. */
public final class DeviceBuffer implements AutoCloseable {
    private final CudaDriver driver;
    private final long address;
    private final long bytes;
    private final MemoryLedger ledger;
    private final Category category;
    private boolean closed;

    private DeviceBuffer(CudaDriver driver, long address, long bytes, MemoryLedger ledger, Category category) {
        this.driver = driver;
        this.address = address;
        this.bytes = bytes;
        this.ledger = ledger;
        this.category = category;
    }

    /** {@code bytes} bytes (at least 1) in the current context, recorded in {@code ledger} under {@code category}. */
    public static DeviceBuffer allocate(CudaContext context, long bytes, MemoryLedger ledger, Category category) {
        if (bytes < 1) {
            throw new IllegalArgumentException("a device buffer needs at least 1 byte, got " + bytes);
        }
        context.makeCurrent();
        long address = context.driver().memAlloc(bytes);
        ledger.allocated(category, bytes);
        return new DeviceBuffer(context.driver(), address, bytes, ledger, category);
    }

    public long address() {
        if (closed) {
            throw new IllegalStateException("device buffer of " + bytes + " bytes is used after close");
        }
        return address;
    }

    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            driver.memFree(address);
            ledger.released(category, bytes);
        }
    }
}
