package jtune.gpu.driver;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;

/**
 * A PTX module JIT-compiled by the driver for the current GPU, and the arena that holds its kernels' argument
 * blocks; close unloads it.
 */
public final class CudaModule implements AutoCloseable {
    private final CudaContext context;
    private final String name;
    private final MemorySegment handle;
    private final String jitLog;
    private final Arena arena = Arena.ofShared();
    private boolean closed;

    private CudaModule(CudaContext context, String name, String ptx) {
        this.context = context;
        this.name = name;
        context.makeCurrent();
        StringBuilder log = new StringBuilder();
        try (Arena a = Arena.ofConfined()) {
            this.handle = context.driver().moduleLoadPtx(a.allocateFrom(ptx, StandardCharsets.US_ASCII), name, log);
        }
        this.jitLog = log.toString();
    }

    /** Loads PTX text; {@code name} is for messages ("gemm.ptx"). */
    public static CudaModule load(CudaContext context, String name, String ptx) {
        return new CudaModule(context, name, ptx);
    }

    /** Loads the PTX resource {@code jtune/gpu/ptx/<file>} of this module. */
    public static CudaModule loadResource(CudaContext context, String file) {
        String path = "/jtune/gpu/ptx/" + file;
        try (InputStream in = CudaModule.class.getResourceAsStream(path)) {
            if (in == null) {
                throw new IllegalStateException("the PTX resource " + path + " is missing from the jtune.gpu module");
            }
            return load(context, file, new String(in.readAllBytes(), StandardCharsets.US_ASCII));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the PTX resource " + path + ": " + e.getMessage(), e);
        }
    }

    /** What the JIT compiler reported (register and shared-memory use of each kernel). */
    public String jitLog() {
        return jitLog;
    }

    /** The kernel {@code function} (its extern "C" name), taking {@code arguments} parameters. */
    public Kernel kernel(String function, int arguments) {
        if (closed) {
            throw new IllegalStateException("module " + name + " is closed");
        }
        context.makeCurrent();
        return new Kernel(context.driver(), context.driver().moduleGetFunction(handle, function), function, arguments,
                arena);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            context.makeCurrent();
            context.driver().moduleUnload(handle);
            arena.close();
        }
    }
}
