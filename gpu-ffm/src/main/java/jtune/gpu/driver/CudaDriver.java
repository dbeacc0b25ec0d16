package jtune.gpu.driver;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

/**
 * The CUDA driver API functions jtune calls, and nothing else: an allowlist bound by hand to the C declarations of
 * {@code cuda.h} (the {@code _v2} symbols where the header maps a name to one). C types map as: {@code CUresult},
 * {@code CUdevice}, enums, {@code int} and {@code unsigned int} to {@code int}; {@code size_t} and
 * {@code CUdeviceptr} to {@code long}; handles ({@code CUcontext}, {@code CUstream}, {@code CUevent},
 * {@code CUmodule}, {@code CUfunction}) and pointers to addresses.
 *
 * <p>Every call goes through {@link #check}, which turns a result other than {@code CUDA_SUCCESS} into a
 * {@link CudaException} carrying {@code cuGetErrorName} and {@code cuGetErrorString}. {@link #load} binds the
 * driver once per process; a missing library or symbol is a {@link DriverUnavailableException} with one sentence,
 * never a crash.
 */
public final class CudaDriver {
    /** The driver library, by the soname the NVIDIA driver installs. */
    public static final String LIBRARY = "libcuda.so.1";

    // CUdevice_attribute values (cuda.h).
    public static final int ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    public static final int ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    /** CUfunction_attribute CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES. */
    public static final int FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

    // CUjit_option values (cuda.h).
    static final int JIT_INFO_LOG_BUFFER = 3;
    static final int JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
    static final int JIT_ERROR_LOG_BUFFER = 5;
    static final int JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
    static final int JIT_LOG_VERBOSE = 12;

    private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName,
            cuDeviceGetAttribute, cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease,
            cuCtxSetCurrent, cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuEventCreate, cuEventRecord,
            cuEventSynchronize, cuEventElapsedTime, cuEventDestroy, cuMemAlloc, cuMemFree, cuMemGetInfo,
            cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD, cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync,
            cuMemsetD32, cuMemsetD32Async, cuModuleLoadDataEx, cuModuleGetFunction, cuModuleUnload,
            cuFuncSetAttribute, cuLaunchKernel, cuGetErrorName, cuGetErrorString;

    private CudaDriver(SymbolLookup lookup, String library) {
        Binder b = new Binder(lookup, library);
        cuGetErrorName = b.bind("cuGetErrorName", JAVA_INT, ADDRESS);
        cuGetErrorString = b.bind("cuGetErrorString", JAVA_INT, ADDRESS);
        cuInit = b.bind("cuInit", JAVA_INT);
        cuDriverGetVersion = b.bind("cuDriverGetVersion", ADDRESS);
        cuDeviceGetCount = b.bind("cuDeviceGetCount", ADDRESS);
        cuDeviceGet = b.bind("cuDeviceGet", ADDRESS, JAVA_INT);
        cuDeviceGetName = b.bind("cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
        cuDeviceGetAttribute = b.bind("cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuDeviceTotalMem = b.bind("cuDeviceTotalMem_v2", ADDRESS, JAVA_INT);
        cuDevicePrimaryCtxRetain = b.bind("cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
        cuDevicePrimaryCtxRelease = b.bind("cuDevicePrimaryCtxRelease_v2", JAVA_INT);
        cuCtxSetCurrent = b.bind("cuCtxSetCurrent", ADDRESS);
        cuStreamCreate = b.bind("cuStreamCreate", ADDRESS, JAVA_INT);
        cuStreamDestroy = b.bind("cuStreamDestroy_v2", ADDRESS);
        cuStreamSynchronize = b.bind("cuStreamSynchronize", ADDRESS);
        cuEventCreate = b.bind("cuEventCreate", ADDRESS, JAVA_INT);
        cuEventRecord = b.bind("cuEventRecord", ADDRESS, ADDRESS);
        cuEventSynchronize = b.bind("cuEventSynchronize", ADDRESS);
        cuEventElapsedTime = b.bindEither("cuEventElapsedTime_v2", "cuEventElapsedTime", ADDRESS, ADDRESS, ADDRESS);
        cuEventDestroy = b.bind("cuEventDestroy_v2", ADDRESS);
        cuMemAlloc = b.bind("cuMemAlloc_v2", ADDRESS, JAVA_LONG);
        cuMemFree = b.bind("cuMemFree_v2", JAVA_LONG);
        cuMemGetInfo = b.bind("cuMemGetInfo_v2", ADDRESS, ADDRESS);
        cuMemcpyHtoD = b.bind("cuMemcpyHtoD_v2", JAVA_LONG, ADDRESS, JAVA_LONG);
        cuMemcpyDtoH = b.bind("cuMemcpyDtoH_v2", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuMemcpyDtoD = b.bind("cuMemcpyDtoD_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG);
        cuMemcpyHtoDAsync = b.bind("cuMemcpyHtoDAsync_v2", JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS);
        cuMemcpyDtoHAsync = b.bind("cuMemcpyDtoHAsync_v2", ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
        cuMemcpyDtoDAsync = b.bind("cuMemcpyDtoDAsync_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS);
        cuMemsetD32 = b.bind("cuMemsetD32_v2", JAVA_LONG, JAVA_INT, JAVA_LONG);
        cuMemsetD32Async = b.bind("cuMemsetD32Async", JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS);
        cuModuleLoadDataEx = b.bind("cuModuleLoadDataEx", ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        cuModuleGetFunction = b.bind("cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
        cuModuleUnload = b.bind("cuModuleUnload", ADDRESS);
        cuFuncSetAttribute = b.bind("cuFuncSetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuLaunchKernel = b.bind("cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
    }

    /** Binds the allowlist in {@code library}, or fails with one sentence naming the library or symbol missing. */
    public static CudaDriver bind(String library) {
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(library, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new DriverUnavailableException(library + " not found");
        } catch (IllegalCallerException e) {
            throw new DriverUnavailableException("native access is not enabled for module jtune.gpu "
                    + "(run java with --enable-native-access=jtune.gpu)");
        }
        return new CudaDriver(lookup, library);
    }

    /** The process-wide binding of {@link #LIBRARY}, made on first use; the same failure on every later call. */
    public static CudaDriver load() {
        return Holder.load();
    }

    private static final class Holder {
        private static final Object RESULT;

        static {
            Object r;
            try {
                r = bind(LIBRARY);
            } catch (DriverUnavailableException e) {
                r = e.getMessage();
            }
            RESULT = r;
        }

        static CudaDriver load() {
            if (RESULT instanceof CudaDriver d) {
                return d;
            }
            throw new DriverUnavailableException((String) RESULT);
        }
    }

    /** Throws a {@link CudaException} naming {@code call} unless {@code result} is {@code CUDA_SUCCESS} (0). */
    public void check(int result, String call) {
        if (result != 0) {
            throw new CudaException(call, result, errorName(result), errorString(result));
        }
    }

    /** {@code cuGetErrorName}, or "CUresult N" for a code the driver does not know. */
    public String errorName(int result) {
        return errorText(cuGetErrorName, result);
    }

    /** {@code cuGetErrorString}, or "unknown error" for a code the driver does not know. */
    public String errorString(int result) {
        String s = errorText(cuGetErrorString, result);
        return s.startsWith("CUresult ") ? "unknown error" : s;
    }

    private static String errorText(MethodHandle h, int result) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            int r = (int) h.invokeExact(result, out);
            MemorySegment p = out.get(ADDRESS, 0);
            if (r != 0 || p.equals(MemorySegment.NULL)) {
                return "CUresult " + result;
            }
            return p.reinterpret(Long.MAX_VALUE).getString(0, StandardCharsets.US_ASCII);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    // ---- initialisation and devices ---------------------------------------------------------------

    public void init() {
        try {
            check((int) cuInit.invokeExact(0), "cuInit");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** The CUDA version the driver supports, as 1000·major + 10·minor (13000 for 13.0). */
    public int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check((int) cuDriverGetVersion.invokeExact(out), "cuDriverGetVersion");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check((int) cuDeviceGetCount.invokeExact(out), "cuDeviceGetCount");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** The {@code CUdevice} of ordinal {@code ordinal}. */
    public int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(out, ordinal), "cuDeviceGet");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(256);
            check((int) cuDeviceGetName.invokeExact(out, 256, device), "cuDeviceGetName");
            return out.getString(0, StandardCharsets.UTF_8);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code cuDeviceGetAttribute} with one of the {@code ATTRIBUTE_} constants. */
    public int deviceAttribute(int device, int attribute) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_INT);
            check((int) cuDeviceGetAttribute.invokeExact(out, attribute, device), "cuDeviceGetAttribute");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Bytes of memory on the device. */
    public long deviceTotalMemory(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            check((int) cuDeviceTotalMem.invokeExact(out, device), "cuDeviceTotalMem_v2");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Retains the device's primary context; pair with {@link #primaryContextRelease}. */
    public MemorySegment primaryContextRetain(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) cuDevicePrimaryCtxRetain.invokeExact(out, device), "cuDevicePrimaryCtxRetain");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void primaryContextRelease(int device) {
        try {
            check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Makes {@code context} current on the calling thread. */
    public void setCurrentContext(MemorySegment context) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(context), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    // ---- streams and events -----------------------------------------------------------------------

    public MemorySegment streamCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) cuStreamCreate.invokeExact(out, flags), "cuStreamCreate");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public MemorySegment eventCreate(int flags) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) cuEventCreate.invokeExact(out, flags), "cuEventCreate");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Milliseconds between two recorded, completed events. */
    public float eventElapsedTime(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_FLOAT);
            check((int) cuEventElapsedTime.invokeExact(out, start, end), "cuEventElapsedTime");
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    // ---- memory -----------------------------------------------------------------------------------

    /** A device address of {@code bytes} (more than 0) bytes, aligned to at least 256 bytes. */
    public long memAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(out, bytes), "cuMemAlloc_v2");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memFree(long address) {
        try {
            check((int) cuMemFree.invokeExact(address), "cuMemFree_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Free and total bytes of the current context's device. */
    public long[] memInfo() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(JAVA_LONG), total = a.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo_v2");
            return new long[]{free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memcpyHtoD(long dst, MemorySegment src, long bytes) {
        try {
            check((int) cuMemcpyHtoD.invokeExact(dst, src, bytes), "cuMemcpyHtoD_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memcpyDtoH(MemorySegment dst, long src, long bytes) {
        try {
            check((int) cuMemcpyDtoH.invokeExact(dst, src, bytes), "cuMemcpyDtoH_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memcpyDtoD(long dst, long src, long bytes) {
        try {
            check((int) cuMemcpyDtoD.invokeExact(dst, src, bytes), "cuMemcpyDtoD_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyHtoDAsync_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoHAsync_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** Sets {@code words} 32-bit words at {@code dst} to {@code value}. */
    public void memsetD32(long dst, int value, long words) {
        try {
            check((int) cuMemsetD32.invokeExact(dst, value, words), "cuMemsetD32_v2");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void memsetD32Async(long dst, int value, long words, MemorySegment stream) {
        try {
            check((int) cuMemsetD32Async.invokeExact(dst, value, words, stream), "cuMemsetD32Async");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    // ---- modules and launches ---------------------------------------------------------------------

    /**
     * {@code cuModuleLoadDataEx} of a NUL-terminated PTX image with the JIT's info and error logs captured.
     * On failure the {@link CudaException}'s message is followed by the error log.
     */
    public MemorySegment moduleLoadPtx(MemorySegment image, String name, StringBuilder infoLog) {
        int logBytes = 16 * 1024;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment info = a.allocate(logBytes), error = a.allocate(logBytes);
            MemorySegment options = a.allocateFrom(JAVA_INT, JIT_INFO_LOG_BUFFER, JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                    JIT_ERROR_LOG_BUFFER, JIT_ERROR_LOG_BUFFER_SIZE_BYTES, JIT_LOG_VERBOSE);
            // Option values are passed in a void* array; the scalar ones by value, widened into the pointer slot.
            MemorySegment values = a.allocate(MemoryLayout.sequenceLayout(5, ADDRESS));
            values.setAtIndex(ADDRESS, 0, info);
            values.setAtIndex(ADDRESS, 1, MemorySegment.ofAddress(logBytes));
            values.setAtIndex(ADDRESS, 2, error);
            values.setAtIndex(ADDRESS, 3, MemorySegment.ofAddress(logBytes));
            values.setAtIndex(ADDRESS, 4, MemorySegment.ofAddress(1));
            MemorySegment out = a.allocate(ADDRESS);
            int r = (int) cuModuleLoadDataEx.invokeExact(out, image, 5, options, values);
            infoLog.append(info.getString(0, StandardCharsets.UTF_8).strip());
            if (r != 0) {
                String log = error.getString(0, StandardCharsets.UTF_8).strip();
                throw new CudaException("cuModuleLoadDataEx", r, errorName(r),
                        errorString(r) + "; loading " + name + (log.isEmpty() ? "" : "; JIT log: " + log));
            }
            return out.get(ADDRESS, 0);
        } catch (CudaException e) {
            throw e;
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) cuModuleGetFunction.invokeExact(out, module, a.allocateFrom(name)),
                    "cuModuleGetFunction(" + name + ")");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    public void moduleUnload(MemorySegment module) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code cuFuncSetAttribute} with one of the {@code FUNC_ATTRIBUTE_} constants. */
    public void functionSetAttribute(MemorySegment function, int attribute, int value) {
        try {
            check((int) cuFuncSetAttribute.invokeExact(function, attribute, value), "cuFuncSetAttribute");
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** {@code cuLaunchKernel} with the arguments in {@code params} (a {@code void*[]}) and no extra options. */
    public void launchKernel(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY,
                             int blockZ, int sharedBytes, MemorySegment stream, MemorySegment params, String name) {
        int r;
        try {
            r = (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                    stream, params, MemorySegment.NULL);
        } catch (Throwable t) {
            throw unexpected(t);
        }
        if (r != 0) {
            check(r, "cuLaunchKernel(" + name + ")");
        }
    }

    /** A Throwable from invokeExact: a RuntimeException or Error is passed on, anything else is a bug. */
    private static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException e) {
            return e;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException("driver call failed unexpectedly", t);
    }

    /** Looks up each allowlisted symbol; the first one missing fails the whole binding with its name. */
    private static final class Binder {
        private final SymbolLookup lookup;
        private final String library;
        private final Linker linker = Linker.nativeLinker();

        Binder(SymbolLookup lookup, String library) {
            this.lookup = lookup;
            this.library = library;
        }

        MethodHandle bind(String symbol, MemoryLayout... args) {
            MemorySegment address = lookup.find(symbol).orElseThrow(() -> new DriverUnavailableException(
                    library + " has no " + symbol + " (the driver is older than jtune needs: CUDA 12.0 or newer)"));
            return linker.downcallHandle(address, FunctionDescriptor.of(JAVA_INT, args));
        }

        /** {@code symbol}, or where the driver predates it (before CUDA 12.8) {@code older}, of the same signature. */
        MethodHandle bindEither(String symbol, String older, MemoryLayout... args) {
            return bind(lookup.find(symbol).isPresent() ? symbol : older, args);
        }
    }
}
