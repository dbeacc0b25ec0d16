package jtune.gpu.driver;

import java.lang.foreign.MemorySegment;

/** A CUDA stream: work queued on it runs in order; close destroys it. */
public final class Stream implements AutoCloseable {
    private final CudaDriver driver;
    private final MemorySegment handle;
    private boolean closed;

    /** A new stream in the current context; it synchronizes with the legacy default stream. */
    public Stream(CudaContext context) {
        context.makeCurrent();
        this.driver = context.driver();
        this.handle = driver.streamCreate(0);
    }

    /** The {@code CUstream} for driver calls. */
    public MemorySegment handle() {
        if (closed) {
            throw new IllegalStateException("CUDA stream is used after close");
        }
        return handle;
    }

    /** Waits until all work queued on this stream is done; a failed kernel surfaces here. */
    public void synchronize() {
        driver.streamSynchronize(handle());
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            driver.streamDestroy(handle);
        }
    }
}
