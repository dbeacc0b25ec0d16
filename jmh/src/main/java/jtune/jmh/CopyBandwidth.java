package jtune.jmh;

import java.lang.foreign.MemorySegment;
import java.util.function.IntConsumer;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * The machine's copy bandwidth, the roofline of the bandwidth-bound kernels: {@link MemorySegment#copy} of
 * n f32 elements (64 MB by default) into another buffer, split into one contiguous, cache-line aligned part
 * per thread on the engine's {@link WorkerPool}. Counts the bytes read plus the bytes written (8 an element),
 * the same way the kernel benchmarks count theirs, so that their ratio to it comes out of one run.
 */
public class CopyBandwidth extends Bench {
    @Param({"16777216"})
    public long n;

    private WorkerPool workers;
    private IntConsumer part;
    private double callGB;

    @Override
    protected void open() {
        workers = new WorkerPool(resolvedThreads());
    }

    @Override
    protected void prepare() {
        Tensor src = uniform("src", -1, 1, n);
        Tensor dst = zeros("dst", DType.F32, n);
        MemorySegment from = src.segment();
        MemorySegment to = dst.segment();
        int parts = workers.threads();
        long bytes = 4 * n;
        long step = (bytes / parts + 63) & ~63L;
        part = i -> {
            long start = Math.min(bytes, i * step);
            long end = Math.min(bytes, start + step);
            MemorySegment.copy(from, start, to, start, end - start);
        };
        callGB = gigabytes(2.0 * n, 4);
    }

    @Override
    protected void close() {
        workers.close();
    }

    @Benchmark
    public void copy(Traffic t) {
        workers.parallelFor(workers.threads(), part);
        t.GB += callGB;
    }
}
