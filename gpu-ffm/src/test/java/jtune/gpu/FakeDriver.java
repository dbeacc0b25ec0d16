package jtune.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import jtune.gpu.driver.CudaDriver;
import org.junit.jupiter.api.Assumptions;

/**
 * src/test/c/fake_cuda.c compiled once per test JVM with the system C compiler: a libcuda stand-in over host
 * memory that lets the binding, the handles and the host side of the backend run on a machine without a GPU.
 * Tests that need it are skipped, with the reason, where there is no C compiler.
 */
final class FakeDriver {
    private static final String SKIP;
    private static final Path LIBRARY;
    private static final MethodHandle CONFIGURE, LAST_LAUNCH, LAST_ARGUMENT, ALLOCATED, CURRENT_DEVICE;

    /** The last kernel launch as the fake recorded it. */
    record Launch(String name, int[] grid, int[] block, int shared, int count) {
    }

    static {
        Path lib = null;
        String skip = null;
        try {
            Path dir = Files.createTempDirectory("jtune-fake-cuda");
            dir.toFile().deleteOnExit();
            lib = dir.resolve("libfakecuda.so");
            Process p = new ProcessBuilder("cc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", lib.toString(),
                    "src/test/c/fake_cuda.c").redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor() != 0) {
                throw new IllegalStateException("the fake driver does not compile: " + log);
            }
            lib.toFile().deleteOnExit();
        } catch (IOException e) {
            skip = "no C compiler (cc) to build the fake CUDA driver: " + e.getMessage();
            lib = null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            skip = "interrupted while compiling the fake CUDA driver";
            lib = null;
        }
        SKIP = skip;
        LIBRARY = lib;
        if (lib != null) {
            SymbolLookup l = SymbolLookup.libraryLookup(lib, Arena.global());
            Linker linker = Linker.nativeLinker();
            CONFIGURE = linker.downcallHandle(l.find("fake_configure").orElseThrow(), FunctionDescriptor.ofVoid(
                    JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
            LAST_LAUNCH = linker.downcallHandle(l.find("fake_last_launch").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
            LAST_ARGUMENT = linker.downcallHandle(l.find("fake_last_argument").orElseThrow(),
                    FunctionDescriptor.of(JAVA_LONG, JAVA_INT));
            ALLOCATED = linker.downcallHandle(l.find("fake_allocated").orElseThrow(), FunctionDescriptor.of(JAVA_LONG));
            CURRENT_DEVICE = linker.downcallHandle(l.find("fake_current_device").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT));
        } else {
            CONFIGURE = LAST_LAUNCH = LAST_ARGUMENT = ALLOCATED = CURRENT_DEVICE = null;
        }
    }

    private FakeDriver() {
    }

    /**
     * The fake bound as the driver, configured to answer cuInit with {@code initResult}, to support CUDA
     * {@code version} (13000 for 13.0), to have {@code devices} GPUs of compute capability major.minor, and to
     * reject every PTX image when {@code badPtx}.
     */
    static CudaDriver bind(int initResult, int version, int devices, int major, int minor, boolean badPtx) {
        Assumptions.assumeTrue(LIBRARY != null, SKIP);
        try {
            CONFIGURE.invokeExact(initResult, version, devices, major, minor, badPtx ? 1 : 0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
        return CudaDriver.bind(LIBRARY.toString());
    }

    /** A working GPU of compute capability 9.0 and a CUDA 13.0 driver. */
    static CudaDriver healthy() {
        return bind(0, 13000, 1, 9, 0, false);
    }

    static Launch lastLaunch() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment name = a.allocate(64), grid = a.allocate(12), block = a.allocate(12), shared = a.allocate(4);
            int count = (int) LAST_LAUNCH.invokeExact(name, grid, block, shared);
            return new Launch(name.getString(0), grid.toArray(JAVA_INT), block.toArray(JAVA_INT),
                    shared.get(JAVA_INT, 0), count);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The 8-byte slot of argument {@code i} of the last launch. */
    static long argument(int i) {
        try {
            return (long) LAST_ARGUMENT.invokeExact(i);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** The ordinal of the GPU whose context is current on the calling thread, or -1 for none. */
    static int currentDevice() {
        try {
            return (int) CURRENT_DEVICE.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** Bytes the fake's cuMemAlloc_v2 has handed out and not yet seen freed. */
    static long allocated() {
        try {
            return (long) ALLOCATED.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }
}
