package jtune.gpu;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.DeviceMemory;
import jtune.gpu.driver.CudaContext;
import jtune.gpu.driver.CudaDriver;
import jtune.gpu.driver.Stream;

/**
 * The memory of one GPU for {@link jtune.engine.tensor.MemoryPool}: blocks from {@code cuMemAlloc_v2}, zeroed and
 * copied on the backend's stream, so that they are ordered with its kernels. Every copy between host and device
 * waits for completion and is counted ({@link #bytesToDevice}, {@link #bytesToHost}, {@link #transfers}).
 */
public final class CudaMemory implements DeviceMemory {
    private final CudaContext context;
    private final CudaDriver driver;
    private final Stream stream;
    private final Device device;
    private final AtomicLong toDevice = new AtomicLong(), toHost = new AtomicLong(), transfers = new AtomicLong();

    CudaMemory(CudaContext context, Stream stream) {
        this.context = context;
        this.driver = context.driver();
        this.stream = stream;
        this.device = Device.cuda(context.ordinal());
    }

    @Override
    public Device device() {
        return device;
    }

    /** Allocates whole 32-bit words, so that {@link #zero} can clear a block with {@code cuMemsetD32}. */
    @Override
    public long allocate(long bytes) {
        context.makeCurrent();
        return driver.memAlloc(Math.ceilDiv(bytes, 4) * 4);
    }

    @Override
    public void zero(long address, long bytes) {
        context.makeCurrent();
        driver.memsetD32Async(address, 0, Math.ceilDiv(bytes, 4), stream.handle());
    }

    @Override
    public void free(long address, long bytes) {
        context.makeCurrent();
        driver.memFree(address);
    }

    @Override
    public void toDevice(MemorySegment src, long address) {
        if (src.byteSize() == 0) {
            return;
        }
        context.makeCurrent();
        driver.memcpyHtoDAsync(address, src, src.byteSize(), stream.handle());
        stream.synchronize();
        count(toDevice, src.byteSize());
    }

    @Override
    public void toHost(long address, MemorySegment dst) {
        if (dst.byteSize() == 0) {
            return;
        }
        context.makeCurrent();
        driver.memcpyDtoHAsync(dst, address, dst.byteSize(), stream.handle());
        stream.synchronize();
        count(toHost, dst.byteSize());
    }

    private void count(AtomicLong direction, long bytes) {
        direction.addAndGet(bytes);
        transfers.incrementAndGet();
    }

    /** Bytes copied from the host to this GPU so far. */
    public long bytesToDevice() {
        return toDevice.get();
    }

    /** Bytes copied from this GPU to the host so far. */
    public long bytesToHost() {
        return toHost.get();
    }

    /** Number of host-device copies so far, both directions. */
    public long transfers() {
        return transfers.get();
    }
}
