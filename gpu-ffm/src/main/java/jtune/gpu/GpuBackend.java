package jtune.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jtune.engine.backend.AdamWStep;
import jtune.engine.backend.Backend;
import jtune.engine.backend.Checks;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import jtune.gpu.driver.CudaContext;
import jtune.gpu.driver.CudaDriver;
import jtune.gpu.driver.DeviceBuffer;
import jtune.gpu.driver.Kernel;
import jtune.gpu.driver.Stream;

/**
 * The {@link Backend} on one NVIDIA GPU: every operation is one or two launches of jtune's PTX kernels on one
 * stream, over tensors in that GPU's memory (from a pool over {@link #memory()}, see {@link #pool}). Launches are
 * asynchronous; an operation that returns a number (sum, max, cross-entropy) or checks ids on the device waits
 * for the stream. Arguments are checked with {@link Checks} first, exactly as on the CPU, then each tensor must
 * be on this GPU. {@link #copy} also moves contiguous tensors between the host and this GPU, which is how data
 * gets in and out; {@link CudaMemory} counts those copies.
 *
 * <p>The quantized-weight operations are not implemented on the GPU yet and throw
 * {@link UnsupportedOperationException}. A backend is used by one thread at a time (its operations are
 * synchronized); the CUDA context is made current on each calling thread.
 */
public final class GpuBackend implements Backend {
    private static final int BLOCK = 256;
    /** Rows per block of the row kernels (one warp per row). */
    private static final int ROWS_PER_BLOCK = 8;
    private static final int MAX_GRID_Z = 65535;
    private static final int ERROR_NONE = Integer.MAX_VALUE;

    private final CudaContext context;
    private final CudaDriver driver;
    private final Stream stream;
    private final CudaMemory memory;
    private final Kernels kernels;
    private final Device device;
    private final int driverVersion;
    private final MemoryLedger workspaceLedger = new MemoryLedger();
    private final DeviceBuffer flag;
    private DeviceBuffer scratch;
    private boolean closed;

    private GpuBackend(CudaContext context) {
        this.context = context;
        this.driver = context.driver();
        this.driverVersion = driver.driverVersion();
        this.device = Device.cuda(context.ordinal());
        this.stream = new Stream(context);
        this.memory = new CudaMemory(context, stream);
        this.kernels = new Kernels(context);
        this.flag = DeviceBuffer.allocate(context, 256, workspaceLedger, Category.WORKSPACE);
    }

    /** A backend on GPU {@code ordinal} of {@code driver}: retains its primary context and loads the kernels. */
    public static GpuBackend open(CudaDriver driver, int ordinal) {
        CudaContext context = CudaContext.open(driver, ordinal);
        try {
            return new GpuBackend(context);
        } catch (RuntimeException e) {
            context.close();
            throw e;
        }
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public Device device() {
        return device;
    }

    /** One lane: the kernels are written per thread, and the GPU runs thousands of them. */
    @Override
    public int vectorBits() {
        return 32;
    }

    /** One host thread queues the work. */
    @Override
    public int threads() {
        return 1;
    }

    /** "cuda, NVIDIA H100 80GB HBM3, compute 9.0, 132 SMs, 79.1 GiB, driver 13.0". */
    @Override
    public String describe() {
        return "cuda, " + context.describe() + ", driver " + driverVersion / 1000 + "." + driverVersion % 1000 / 10;
    }

    /** The GPU's memory, for a {@link MemoryPool} whose tensors this backend computes on. */
    public CudaMemory memory() {
        return memory;
    }

    /** A pool of this GPU's memory recorded in {@code ledger}. */
    public MemoryPool pool(MemoryLedger ledger) {
        return new MemoryPool(ledger, memory);
    }

    /** The ledger of this backend's own scratch memory (reduction and split-K partials, error flags). */
    @Override
    public MemoryLedger workspaceLedger() {
        return workspaceLedger;
    }

    /** Waits for every operation queued so far; a kernel's failure surfaces here as a CudaException. */
    public synchronized void synchronize() {
        context.makeCurrent();
        stream.synchronize();
    }

    // ---- helpers ------------------------------------------------------------------------------------

    /** Fails unless every tensor given is on this GPU (null entries are skipped). */
    private void here(String op, Tensor... ts) {
        for (Tensor t : ts) {
            if (t != null && !t.device().equals(device)) {
                throw new IllegalArgumentException(op + ": " + t + " is not on " + device + ", where the cuda backend "
                        + "computes; allocate it from the backend's pool or copy it there first");
            }
        }
        context.makeCurrent();
    }

    private static long address(Tensor t) {
        return t.segment().address() + t.byteOffset();
    }

    /** Blocks for a grid-stride loop over n elements: enough to fill the GPU, at most one per 256 elements. */
    private int blocks(long n) {
        return (int) Math.max(1, Math.min(Math.ceilDiv(n, BLOCK), 32L * context.multiprocessors()));
    }

    private void launch(Kernel k, long n) {
        k.launch(stream, blocks(n), 1, 1, BLOCK, 1, 0);
    }

    private void launchRows(Kernel k, long rows) {
        k.launch(stream, Math.toIntExact(Math.ceilDiv(rows, ROWS_PER_BLOCK)), 1, 1, BLOCK, 1, 0);
    }

    /** The address of a scratch block of at least {@code bytes}, grown (after the stream drains) when too small. */
    private long scratch(long bytes) {
        if (scratch == null || scratch.bytes() < bytes) {
            if (scratch != null) {
                stream.synchronize();
                scratch.close();
            }
            scratch = DeviceBuffer.allocate(context, Math.max(bytes, 1 << 16), workspaceLedger, Category.WORKSPACE);
        }
        return scratch.address();
    }

    private void resetFlag() {
        driver.memsetD32Async(flag.address(), ERROR_NONE, 1, stream.handle());
    }

    /** The flag a kernel set (waits for the stream), or {@link #ERROR_NONE}. */
    private int readFlag() {
        return readInt(flag.address());
    }

    private int readInt(long address) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4, 4);
            memory.toHost(address, host);
            return host.get(ValueLayout.JAVA_INT, 0);
        }
    }

    private float readFloat(long address) {
        return Float.intBitsToFloat(readInt(address));
    }

    // ---- matrix products -----------------------------------------------------------------------------

    /**
     * f32 on the CUDA cores, or bf16 A and B on the tensor cores (C f32); see gemm.cu, and gemm_sm90.cu for aligned
     * bf16 operands on compute capability 9.0.
     */
    @Override
    public synchronized void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha,
                                    float beta) {
        DType inputs = a.dtype() == DType.BF16 && b.dtype() == DType.BF16 ? DType.BF16 : DType.F32;
        Checks.Gemm g = Checks.Gemm.of(a, transA, b, transB, c, inputs);
        here("matmul", a, b, c);
        if (g.m() == 0 || g.n() == 0 || g.batch() == 0) {
            return;
        }
        int layout = (transA ? 2 : 0) | (transB ? 1 : 0);
        boolean bf16 = inputs == DType.BF16;
        boolean aligned = bf16 && aligned(a, g.ldA(), g.strideA()) && aligned(b, g.ldB(), g.strideB());
        boolean hopper = aligned && kernels.gemmBf16Sm90 != null;
        Kernel k = !bf16 ? kernels.gemmF32[layout]
                : hopper ? kernels.gemmBf16Sm90[layout]
                : aligned ? kernels.gemmBf16Aligned[layout]
                : kernels.gemmBf16Any[layout];
        int shared = hopper ? Kernels.GEMM_SM90_SHARED_BYTES : bf16 ? Kernels.GEMM_BF16_SHARED_BYTES : 0;
        int tileM = hopper ? Kernels.GEMM_SM90_TILE_M : 128, tileN = hopper ? Kernels.GEMM_SM90_TILE_N : 128;
        int size = inputs.byteSize();
        int gridX = Math.toIntExact(Math.ceilDiv(g.n(), tileN)), gridY = Math.toIntExact(Math.ceilDiv(g.m(), tileM));
        int splits = g.batch() == 1 ? splitK(gridX * (long) gridY, g.k()) : 1;
        if (splits > 1) {
            // K-slice s of op(A) starts s·chunk columns in (rows, if A is transposed); of op(B), s·chunk rows in.
            long chunk = g.k() / splits, part = (long) g.m() * g.n();
            long w = scratch(Float.BYTES * part * splits);
            k.ptr(address(a)).ptr(address(b)).ptr(w).i32(g.m()).i32(g.n()).i32(Math.toIntExact(chunk))
                    .i64(g.ldA()).i64(g.ldB()).i64(g.n())
                    .i64(transA ? chunk * g.ldA() : chunk).i64(transB ? chunk : chunk * g.ldB()).i64(part)
                    .f32(1f).f32(0f)
                    .launch(stream, gridX, gridY, splits, BLOCK, 1, shared);
            kernels.gemmSplitKReduce.ptr(w).ptr(address(c)).i32(g.m()).i32(g.n()).i64(g.ldC()).i32(splits).f32(alpha)
                    .f32(beta);
            launch(kernels.gemmSplitKReduce, part);
            return;
        }
        for (int p = 0; p < g.batch(); p += MAX_GRID_Z) {
            int batch = Math.min(MAX_GRID_Z, g.batch() - p);
            k.ptr(address(a) + p * g.strideA() * size).ptr(address(b) + p * g.strideB() * size)
                    .ptr(address(c) + p * g.strideC() * Float.BYTES)
                    .i32(g.m()).i32(g.n()).i32(g.k()).i64(g.ldA()).i64(g.ldB()).i64(g.ldC())
                    .i64(g.strideA()).i64(g.strideB()).i64(g.strideC()).f32(alpha).f32(beta)
                    .launch(stream, gridX, gridY, batch, BLOCK, 1, shared);
        }
    }

    /**
     * How many K-slices a single product of {@code tiles} tiles of C runs as, so that it fills the GPU: 1 (no split)
     * when the tiles already cover the multiprocessors, or K is short; else the largest of 2, 4, 8, 16 that keeps at
     * most two tiles a multiprocessor, divides K into slices of a multiple of 8 (the bf16 loaders' alignment) and
     * of at least 256. A weight gradient of a 512×512 layer over 4096 tokens makes 16 tiles: 16 slices of 256.
     */
    private int splitK(long tiles, long k) {
        int sms = context.multiprocessors(), best = 1;
        if (tiles >= sms) {
            return 1;
        }
        for (int s = 2; s <= 16; s *= 2) {
            if (tiles * s <= 2L * sms && k % (8L * s) == 0 && k / s >= 256) {
                best = s;
            }
        }
        return best;
    }

    /** Whether a bf16 operand can be loaded in 16-byte chunks: aligned start, row and batch strides of 8 elements. */
    private static boolean aligned(Tensor t, long ld, long batchStride) {
        return address(t) % 16 == 0 && ld % 8 == 0 && batchStride % 8 == 0;
    }

    // ---- quantized weights ---------------------------------------------------------------------------

    private static UnsupportedOperationException noQuantized(String op) {
        return new UnsupportedOperationException(op + ": quantized weights are not supported by the cuda backend yet; "
                + "run quantized models with --device cpu");
    }

    @Override
    public void quantMatmul(Tensor x, QuantizedMatrix w, Tensor y, float alpha, float beta) {
        throw noQuantized("quantMatmul");
    }

    @Override
    public void quantMatmulInputGrad(Tensor dy, QuantizedMatrix w, Tensor dx, float alpha, float beta) {
        throw noQuantized("quantMatmulInputGrad");
    }

    @Override
    public void dequantize(QuantizedMatrix w, Tensor out) {
        throw noQuantized("dequantize");
    }

    @Override
    public void quantScaleGrad(Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales) {
        throw noQuantized("quantScaleGrad");
    }

    // ---- element-wise --------------------------------------------------------------------------------

    private void binary(Kernel k, String op, Tensor a, Tensor b, Tensor out) {
        Checks.sameF32(op, a, b, out);
        here(op, a, b, out);
        if (a.size() > 0) {
            k.ptr(address(a)).ptr(address(b)).ptr(address(out)).i64(a.size());
            launch(k, a.size());
        }
    }

    @Override
    public synchronized void add(Tensor a, Tensor b, Tensor out) {
        binary(kernels.add, "add", a, b, out);
    }

    @Override
    public synchronized void mul(Tensor a, Tensor b, Tensor out) {
        binary(kernels.mul, "mul", a, b, out);
    }

    @Override
    public synchronized void scale(Tensor x, float s, Tensor out) {
        Checks.sameF32("scale", x, out);
        here("scale", x, out);
        if (x.size() > 0) {
            kernels.scale.ptr(address(x)).f32(s).ptr(address(out)).i64(x.size());
            launch(kernels.scale, x.size());
        }
    }

    @Override
    public synchronized void axpy(float alpha, Tensor x, Tensor y) {
        Checks.sameF32("axpy", x, y);
        here("axpy", x, y);
        if (x.size() > 0) {
            kernels.axpy.f32(alpha).ptr(address(x)).ptr(address(y)).i64(x.size());
            launch(kernels.axpy, x.size());
        }
    }

    /** A {@code cuMemsetD32} of the value's bits. */
    @Override
    public synchronized void fill(Tensor x, float value) {
        Checks.f32("fill", x);
        here("fill", x);
        if (x.size() > 0) {
            driver.memsetD32Async(address(x), Float.floatToRawIntBits(value), x.size(), stream.handle());
        }
    }

    /**
     * On this GPU: a device-to-device copy, or a gather of a strided source of rank up to 4 (after merging the
     * dimensions that are contiguous with each other). Between the host and this GPU (either way): a counted copy
     * of a contiguous source.
     */
    @Override
    public synchronized void copy(Tensor src, Tensor dst) {
        Checks.typed("copy", dst, dst.dtype());
        if (src.dtype() != dst.dtype() || !src.shape().equals(dst.shape())) {
            throw new IllegalArgumentException("copy: " + src + " and " + dst + " must have the same shape and type");
        }
        long bytes = dst.dtype().bytesFor(dst.size());
        boolean srcHere = src.device().equals(device), dstHere = dst.device().equals(device);
        if (srcHere != dstHere) {
            Tensor host = srcHere ? dst : src;
            if (host.device().kind() != Device.Kind.CPU || !src.isContiguous()) {
                throw new IllegalArgumentException("copy: between " + src.device() + " and " + dst.device()
                        + " the cuda backend copies contiguous tensors between the host and " + device + " only; "
                        + src + " to " + dst);
            }
            context.makeCurrent();
            MemorySegment hostBytes = host.segment().asSlice(host.byteOffset(), bytes);
            if (srcHere) {
                memory.toHost(address(src), hostBytes);
            } else {
                memory.toDevice(hostBytes, address(dst));
            }
            return;
        }
        here("copy", src, dst);
        if (bytes == 0) {
            return;
        }
        if (src.isContiguous()) {
            driver.memcpyDtoDAsync(address(dst), address(src), bytes, stream.handle());
            return;
        }
        long[] dims = new long[4], strides = new long[4];
        collapse(src, dims, strides);
        kernels.gather.ptr(address(src)).ptr(address(dst)).i32(src.dtype().byteSize()).i64(dims[1]).i64(dims[2])
                .i64(dims[3]).i64(strides[0]).i64(strides[1]).i64(strides[2]).i64(strides[3]).i64(src.size());
        launch(kernels.gather, src.size());
    }

    /**
     * The view's layout with size-1 dimensions dropped and each dimension merged into the one before it where
     * their strides allow, right-aligned into 4 dimensions (leading ones 1, stride 0).
     */
    private static void collapse(Tensor t, long[] dims, long[] strides) {
        long[] d = new long[t.rank()], s = new long[t.rank()];
        int r = 0;
        for (int i = 0; i < t.rank(); i++) {
            if (t.dim(i) == 1) {
                continue;
            }
            if (r > 0 && s[r - 1] == t.dim(i) * t.stride(i)) {
                d[r - 1] *= t.dim(i);
                s[r - 1] = t.stride(i);
            } else {
                d[r] = t.dim(i);
                s[r] = t.stride(i);
                r++;
            }
        }
        if (r > 4) {
            throw new IllegalArgumentException("copy: " + t + " is a strided view of " + r + " separate dimensions; "
                    + "the cuda backend gathers at most 4");
        }
        java.util.Arrays.fill(dims, 1);
        for (int i = 0; i < r; i++) {
            dims[4 - r + i] = d[i];
            strides[4 - r + i] = s[i];
        }
    }

    @Override
    public synchronized void convert(Tensor src, Tensor dst) {
        for (Tensor t : new Tensor[]{src, dst}) {
            Checks.typed("convert", t, t.dtype());
            if (!t.dtype().isFloating()) {
                throw new IllegalArgumentException("convert: " + t + " must be f32, bf16 or f16");
            }
        }
        if (!src.shape().equals(dst.shape())) {
            throw new IllegalArgumentException("convert: shapes differ: " + Checks.describe(src, dst));
        }
        here("convert", src, dst);
        if (src.size() > 0) {
            kernels.convert.ptr(address(src)).i32(typeCode(src.dtype())).ptr(address(dst)).i32(typeCode(dst.dtype()))
                    .i64(src.size());
            launch(kernels.convert, src.size());
        }
    }

    /** The type codes of convert in elementwise.cu. */
    private static int typeCode(DType t) {
        return switch (t) {
            case F32 -> 0;
            case BF16 -> 1;
            default -> 2;
        };
    }

    // ---- reductions ----------------------------------------------------------------------------------

    private static final int MODE_SUM = 0, MODE_SQUARES = 1, MODE_DOT = 2, MODE_MAX = 3;
    private static final int PARTIALS = 1024;

    /** Two launches (per-block partials, then one block over them) and a 4-byte read. */
    private float reduce(Tensor a, Tensor b, int mode) {
        long n = a.size();
        long partial = scratch(4L * (PARTIALS + 1));
        int grid = (int) Math.min(PARTIALS, Math.ceilDiv(n, BLOCK));
        kernels.reducePartial.ptr(address(a)).ptr(b == null ? 0 : address(b)).i64(n).i32(mode).ptr(partial)
                .launch(stream, grid, 1, 1, BLOCK, 1, 0);
        kernels.reduceFinal.ptr(partial).i32(grid).i32(mode).ptr(partial + 4L * PARTIALS)
                .launch(stream, 1, 1, 1, PARTIALS, 1, 0);
        return readFloat(partial + 4L * PARTIALS);
    }

    @Override
    public synchronized float sum(Tensor x) {
        Checks.f32("sum", x);
        here("sum", x);
        return x.size() == 0 ? 0f : reduce(x, null, MODE_SUM);
    }

    @Override
    public synchronized float max(Tensor x) {
        Checks.f32("max", x);
        if (x.size() == 0) {
            throw new IllegalArgumentException("max: " + x + " is empty; the maximum of no elements is undefined");
        }
        here("max", x);
        return reduce(x, null, MODE_MAX);
    }

    @Override
    public synchronized float sumOfSquares(Tensor x) {
        Checks.f32("sumOfSquares", x);
        here("sumOfSquares", x);
        return x.size() == 0 ? 0f : reduce(x, null, MODE_SQUARES);
    }

    @Override
    public synchronized float dot(Tensor a, Tensor b) {
        Checks.sameF32("dot", a, b);
        here("dot", a, b);
        return a.size() == 0 ? 0f : reduce(a, b, MODE_DOT);
    }

    // ---- rows ----------------------------------------------------------------------------------------

    @Override
    public synchronized void softmax(Tensor x, Tensor out, boolean causal) {
        Checks.sameF32("softmax", x, out);
        long cols = x.dim(-1);
        long rows = x.size() / Math.max(cols, 1);
        long t = causal && x.rank() >= 2 ? x.dim(-2) : 0;
        if (causal && (x.rank() < 2 || cols < t)) {
            throw new IllegalArgumentException("softmax: causal needs " + x + " to be (..., T, S) with S >= T");
        }
        here("softmax", x, out);
        if (x.size() > 0) {
            kernels.softmax.ptr(address(x)).ptr(address(out)).i64(rows).i64(cols).i64(t);
            launchRows(kernels.softmax, rows);
        }
    }

    @Override
    public synchronized void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        Checks.sameF32("softmaxBackward", y, dy, dx);
        here("softmaxBackward", y, dy, dx);
        long cols = y.dim(-1);
        long rows = y.size() / Math.max(cols, 1);
        if (y.size() > 0) {
            kernels.softmaxBackward.ptr(address(y)).ptr(address(dy)).ptr(address(dx)).i64(rows).i64(cols);
            launchRows(kernels.softmaxBackward, rows);
        }
    }

    @Override
    public synchronized void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        Checks.sameF32("rmsNorm", x, out);
        Checks.f32("rmsNorm", weight);
        Checks.f32("rmsNorm", rstd);
        long d = x.dim(-1);
        long rows = x.size() / Math.max(d, 1);
        Checks.shape("rmsNorm", weight, d);
        Checks.shape("rmsNorm", rstd, rows);
        here("rmsNorm", x, weight, out, rstd);
        if (rows > 0) {
            kernels.rmsNorm.ptr(address(x)).ptr(address(weight)).f32(eps).ptr(address(out)).ptr(address(rstd))
                    .i64(rows).i64(d);
            launchRows(kernels.rmsNorm, rows);
        }
    }

    /** dweight first (from dy, which dx may overwrite), in row chunks then over the chunks; then dx. */
    @Override
    public synchronized void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx,
                                             Tensor dweight) {
        Checks.sameF32("rmsNormBackward", x, dy, dx);
        Checks.f32("rmsNormBackward", weight);
        Checks.f32("rmsNormBackward", rstd);
        Checks.f32("rmsNormBackward", dweight);
        long d = x.dim(-1);
        long rows = x.size() / Math.max(d, 1);
        Checks.shape("rmsNormBackward", weight, d);
        Checks.shape("rmsNormBackward", dweight, d);
        Checks.shape("rmsNormBackward", rstd, rows);
        here("rmsNormBackward", x, weight, rstd, dy, dx, dweight);
        if (rows == 0 || d == 0) {
            return;
        }
        long per = Math.ceilDiv(rows, Math.min(64, Math.ceilDiv(rows, 16)));
        long chunks = Math.ceilDiv(rows, per);
        long partial = scratch(4 * chunks * d);
        int columnBlocks = Math.toIntExact(Math.ceilDiv(d, 128));
        kernels.rmsNormDweightPartial.ptr(address(x)).ptr(address(rstd)).ptr(address(dy)).ptr(partial).i64(rows)
                .i64(d).i64(per).launch(stream, columnBlocks, (int) chunks, 1, 128, 1, 0);
        kernels.rmsNormDweightFinal.ptr(partial).ptr(address(dweight)).i64(chunks).i64(d)
                .launch(stream, columnBlocks, 1, 1, 128, 1, 0);
        kernels.rmsNormBackward.ptr(address(x)).ptr(address(weight)).ptr(address(rstd)).ptr(address(dy))
                .ptr(address(dx)).i64(rows).i64(d);
        launchRows(kernels.rmsNormBackward, rows);
    }

    @Override
    public synchronized void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        Checks.f32("rope", x);
        Checks.f32("rope", cos);
        Checks.f32("rope", sin);
        if (x.rank() != 3 && x.rank() != 4) {
            throw new IllegalArgumentException("rope: " + x + " must be (T, H, D) or (B, T, H, D)");
        }
        long t = x.dim(-3), h = x.dim(-2), d = x.dim(-1);
        if (d % 2 != 0) {
            throw new IllegalArgumentException("rope: head dimension of " + x + " must be even");
        }
        Checks.shape("rope", cos, t, d / 2);
        Checks.shape("rope", sin, t, d / 2);
        here("rope", x, cos, sin);
        long batches = x.size() / Math.max(t * h * d, 1);
        long pairs = x.size() / 2;
        if (pairs > 0) {
            kernels.rope.ptr(address(x)).ptr(address(cos)).ptr(address(sin)).i32(inverse ? 1 : 0).i64(batches).i64(t)
                    .i64(h).i64(d);
            launch(kernels.rope, pairs);
        }
    }

    @Override
    public synchronized void silu(Tensor x, Tensor out) {
        Checks.sameF32("silu", x, out);
        here("silu", x, out);
        if (x.size() > 0) {
            kernels.silu.ptr(address(x)).ptr(address(out)).i64(x.size());
            launch(kernels.silu, x.size());
        }
    }

    @Override
    public synchronized void siluBackward(Tensor x, Tensor dy, Tensor dx) {
        Checks.sameF32("siluBackward", x, dy, dx);
        here("siluBackward", x, dy, dx);
        if (x.size() > 0) {
            kernels.siluBackward.ptr(address(x)).ptr(address(dy)).ptr(address(dx)).i64(x.size());
            launch(kernels.siluBackward, x.size());
        }
    }

    @Override
    public synchronized void swiglu(Tensor gate, Tensor up, Tensor out) {
        binary(kernels.swiglu, "swiglu", gate, up, out);
    }

    @Override
    public synchronized void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        Checks.sameF32("swigluBackward", gate, up, dout, dgate, dup);
        here("swigluBackward", gate, up, dout, dgate, dup);
        if (gate.size() > 0) {
            kernels.swigluBackward.ptr(address(gate)).ptr(address(up)).ptr(address(dout)).ptr(address(dgate))
                    .ptr(address(dup)).i64(gate.size());
            launch(kernels.swigluBackward, gate.size());
        }
    }

    /** One block per row; the per-row losses are read back (one counted copy) and summed in double. */
    @Override
    public synchronized float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        Checks.f32("crossEntropy", logits);
        Checks.typed("crossEntropy", targets, DType.I32);
        if (logits.rank() != 2) {
            throw new IllegalArgumentException("crossEntropy: " + logits + " must be (N, V)");
        }
        long n = logits.dim(0), v = logits.dim(1);
        Checks.shape("crossEntropy", targets, n);
        if (dlogits != null) {
            Checks.sameF32("crossEntropy", logits, dlogits);
        }
        here("crossEntropy", logits, targets, dlogits);
        if (n == 0) {
            return 0f;
        }
        long losses = scratch(4 * n);
        resetFlag();
        kernels.crossEntropy.ptr(address(logits)).ptr(address(targets)).ptr(dlogits == null ? 0 : address(dlogits))
                .f32(gradScale).ptr(losses).ptr(flag.address()).i64(v)
                .launch(stream, Math.toIntExact(n), 1, 1, BLOCK, 1, 0);
        int bad = readFlag();
        if (bad != ERROR_NONE) {
            int target = readInt(address(targets) + 4L * bad);
            throw new IllegalArgumentException("crossEntropy: target " + target + " of row " + bad
                    + " is outside the vocabulary [0, " + v + ")");
        }
        double total = 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4 * n, 4);
            memory.toHost(losses, host);
            for (long r = 0; r < n; r++) {
                total += host.getAtIndex(ValueLayout.JAVA_FLOAT, r);
            }
        }
        return (float) total;
    }

    private void checkIds(String op, Tensor ids, long vocab) {
        int bad = readFlag();
        if (bad != ERROR_NONE) {
            int id = readInt(address(ids) + 4L * bad);
            throw new IllegalArgumentException(op + ": id " + id + " at position " + bad
                    + " is outside the table's rows [0, " + vocab + ")");
        }
    }

    @Override
    public synchronized void embedding(Tensor table, Tensor ids, Tensor out) {
        Checks.f32("embedding", table);
        Checks.typed("embedding", ids, DType.I32);
        Checks.f32("embedding", out);
        Checks.rank("embedding", table, 2, "(V, D)");
        long vocab = table.dim(0), d = table.dim(1), n = ids.size();
        Checks.shape("embedding", out, n, d);
        here("embedding", table, ids, out);
        if (n * d == 0) {
            return;
        }
        resetFlag();
        kernels.embedding.ptr(address(table)).ptr(address(ids)).ptr(address(out)).ptr(flag.address()).i64(n)
                .i64(vocab).i64(d);
        launch(kernels.embedding, n * d);
        checkIds("embedding", ids, vocab);
    }

    @Override
    public synchronized void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable) {
        Checks.f32("embeddingBackward", dtable);
        Checks.typed("embeddingBackward", ids, DType.I32);
        Checks.f32("embeddingBackward", dout);
        Checks.rank("embeddingBackward", dtable, 2, "(V, D)");
        long vocab = dtable.dim(0), d = dtable.dim(1), n = ids.size();
        Checks.shape("embeddingBackward", dout, n, d);
        here("embeddingBackward", dout, ids, dtable);
        if (n == 0) {
            return;
        }
        resetFlag();
        kernels.embeddingBackward.ptr(address(dout)).ptr(address(ids)).ptr(address(dtable)).ptr(flag.address())
                .i64(n).i64(vocab).i64(d).launch(stream, Math.toIntExact(n), 1, 1, 128, 1, 0);
        checkIds("embeddingBackward", ids, vocab);
    }

    // ---- optimizer -----------------------------------------------------------------------------------

    @Override
    public synchronized void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep s) {
        Checks.sameF32("adamw", param, grad, m, v);
        here("adamw", param, grad, m, v);
        if (param.size() == 0) {
            return;
        }
        kernels.adamw.ptr(address(param)).ptr(address(grad)).ptr(address(m)).ptr(address(v))
                .f32(s.beta1()).f32((float) (1 - (double) s.beta1())).f32(s.beta2()).f32((float) (1 - (double) s.beta2()))
                .f32(s.eps()).f32((float) (1 - (double) s.lr() * s.weightDecay()))
                .f32((float) (s.lr() / s.biasCorrection1())).f32((float) (1 / Math.sqrt(s.biasCorrection2())))
                .i64(param.size());
        launch(kernels.adamw, param.size());
    }

    /** Frees the scratch memory, unloads the kernels, destroys the stream and releases the context. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        context.makeCurrent();
        stream.synchronize();
        if (scratch != null) {
            scratch.close();
        }
        flag.close();
        kernels.close();
        stream.close();
        context.close();
    }
}
