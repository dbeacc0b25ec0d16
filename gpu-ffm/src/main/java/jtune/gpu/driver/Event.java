package jtune.gpu.driver;

import java.lang.foreign.MemorySegment;

/** A CUDA event with timing, for measuring GPU time between two points of a stream; close destroys it. */
public final class Event implements AutoCloseable {
    private final CudaDriver driver;
    private final MemorySegment handle;
    private boolean closed;

    public Event(CudaContext context) {
        context.makeCurrent();
        this.driver = context.driver();
        this.handle = driver.eventCreate(0);
    }

    /** Marks the current end of {@code stream}'s queue. */
    public void record(Stream stream) {
        driver.eventRecord(handle(), stream.handle());
    }

    public void synchronize() {
        driver.eventSynchronize(handle());
    }

    /** Milliseconds from {@code start} to this event; both recorded, this one completed. */
    public float millisSince(Event start) {
        return driver.eventElapsedTime(start.handle(), handle());
    }

    private MemorySegment handle() {
        if (closed) {
            throw new IllegalStateException("CUDA event is used after close");
        }
        return handle;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            driver.eventDestroy(handle);
        }
    }
}
