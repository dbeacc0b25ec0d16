package jtune.gpu.driver;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;

/**
 * One kernel of a {@link CudaModule} with its argument block packed once: {@code cuLaunchKernel} takes a
 * {@code void*[]} whose i-th entry points at argument i; here that array and an 8-byte slot per argument are
 * allocated when the kernel is looked up, and a launch only writes the slots. Arguments are appended in the
 * kernel's parameter order with {@link #ptr}, {@link #i32}, {@link #i64}, {@link #f32}, then {@link #launch}
 * checks the count and queues the kernel. Not for concurrent use: each launch site is used by one thread.
 */
public final class Kernel {
    private final CudaDriver driver;
    private final MemorySegment function;
    private final String name;
    private final int arguments;
    private final MemorySegment slots;
    private final MemorySegment params;
    private int next;

    Kernel(CudaDriver driver, MemorySegment function, String name, int arguments, Arena arena) {
        this.driver = driver;
        this.function = function;
        this.name = name;
        this.arguments = arguments;
        this.slots = arena.allocate(MemoryLayout.sequenceLayout(Math.max(1, arguments), JAVA_LONG));
        this.params = arena.allocate(MemoryLayout.sequenceLayout(Math.max(1, arguments), ADDRESS));
        for (int i = 0; i < arguments; i++) {
            params.setAtIndex(ADDRESS, i, slots.asSlice(8L * i, 8));
        }
    }

    public String name() {
        return name;
    }

    /** The number of parameters the kernel takes. */
    public int arguments() {
        return arguments;
    }

    /** Lets the kernel use {@code bytes} of dynamic shared memory (above 48 KiB this must be asked for). */
    public Kernel allowSharedMemory(int bytes) {
        driver.functionSetAttribute(function, CudaDriver.FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
        return this;
    }

    /** Appends a device address argument. */
    public Kernel ptr(long deviceAddress) {
        return i64(deviceAddress);
    }

    public Kernel i64(long v) {
        slots.setAtIndex(JAVA_LONG, slot(), v);
        return this;
    }

    public Kernel i32(int v) {
        slots.set(JAVA_INT, 8L * slot(), v);
        return this;
    }

    public Kernel f32(float v) {
        slots.set(JAVA_FLOAT, 8L * slot(), v);
        return this;
    }

    private int slot() {
        if (next >= arguments) {
            throw new IllegalStateException("kernel " + name + " takes " + arguments + " arguments; one more was given");
        }
        return next++;
    }

    /** Queues the kernel on {@code stream} with the arguments appended since the last launch. */
    public void launch(Stream stream, int gridX, int gridY, int gridZ, int blockX, int blockY, int sharedBytes) {
        int given = next;
        next = 0;
        if (given != arguments) {
            throw new IllegalStateException("kernel " + name + " takes " + arguments + " arguments but " + given
                    + " were given");
        }
        driver.launchKernel(function, gridX, gridY, gridZ, blockX, blockY, 1, sharedBytes, stream.handle(), params,
                name);
    }
}
