package jtune.gpu.driver;

import java.lang.foreign.MemorySegment;

/**
 * The primary context of one GPU, retained on open and released on close, with the device's facts. Driver calls
 * need a current context on the calling thread: {@link #makeCurrent} sets it there, again only after another
 * context was made current on that thread (a thread can drive two GPUs, one context each).
 */
public final class CudaContext implements AutoCloseable {
    private final CudaDriver driver;
    private final int ordinal;
    private final int device;
    private final MemorySegment context;
    private final String name;
    private final int major, minor, multiprocessors, maxSharedOptin;
    private final long totalMemory;
    /** The context this class last made current on each thread. */
    private static final ThreadLocal<CudaContext> CURRENT = new ThreadLocal<>();
    private boolean closed;

    private CudaContext(CudaDriver driver, int ordinal) {
        this.driver = driver;
        this.ordinal = ordinal;
        this.device = driver.device(ordinal);
        this.name = driver.deviceName(device);
        this.major = driver.deviceAttribute(device, CudaDriver.ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.minor = driver.deviceAttribute(device, CudaDriver.ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = driver.deviceAttribute(device, CudaDriver.ATTRIBUTE_MULTIPROCESSOR_COUNT);
        this.maxSharedOptin = driver.deviceAttribute(device, CudaDriver.ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        this.totalMemory = driver.deviceTotalMemory(device);
        this.context = driver.primaryContextRetain(device);
    }

    /** Initialises the driver and retains the primary context of GPU {@code ordinal}, current on this thread. */
    public static CudaContext open(CudaDriver driver, int ordinal) {
        driver.init();
        int count = driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new IllegalArgumentException("GPU " + ordinal + " does not exist; this machine has " + count
                    + (count == 1 ? " GPU" : " GPUs"));
        }
        CudaContext c = new CudaContext(driver, ordinal);
        c.makeCurrent();
        return c;
    }

    public CudaDriver driver() {
        return driver;
    }

    /** Binds this context to the calling thread unless it is the one bound there last. */
    public void makeCurrent() {
        if (closed) {
            throw new IllegalStateException("the CUDA context of GPU " + ordinal + " is closed");
        }
        if (CURRENT.get() != this) {
            driver.setCurrentContext(context);
            CURRENT.set(this);
        }
    }

    public int ordinal() {
        return ordinal;
    }

    public String name() {
        return name;
    }

    /** Compute capability as 10·major + minor (90 for 9.0). */
    public int computeCapability() {
        return 10 * major + minor;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    /** Shared memory one block may use after opting in, in bytes. */
    public int maxSharedMemoryOptin() {
        return maxSharedOptin;
    }

    public long totalMemory() {
        return totalMemory;
    }

    /** "NVIDIA H100 80GB HBM3, compute 9.0, 132 SMs, 79.1 GiB". */
    public String describe() {
        return name + ", compute " + major + "." + minor + ", " + multiprocessors + " SMs, "
                + jtune.engine.tensor.MemoryLedger.human(totalMemory);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (CURRENT.get() == this) {
                CURRENT.remove();
            }
            driver.primaryContextRelease(device);
        }
    }
}
