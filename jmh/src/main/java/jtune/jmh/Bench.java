package jtune.jmh;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jtune.engine.backend.BackendOptions;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What every benchmark of the suite shares: the run settings, the thread count (0: all cores), a memory
 * pool for the operands and seeded random inputs. Each benchmark class is its own state: {@link #prepare}
 * allocates its operands once per trial and {@link #gigabytes} turns element counts into the traffic its
 * methods add to {@link Traffic} (or {@link Work} for the matrix products).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsPrepend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
        "--sun-misc-unsafe-memory-access=allow", "-Xms1g", "-Xmx1g", "-XX:MaxDirectMemorySize=6g", "-XX:+UseParallelGC"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public abstract class Bench {
    @Param({"0"})
    public int threads;

    protected MemoryPool pool;
    private long seed = 1;

    @Setup(Level.Trial)
    public final void setUp() {
        pool = new MemoryPool(new MemoryLedger());
        open();
        prepare();
    }

    @TearDown(Level.Trial)
    public final void tearDown() {
        close();
        pool.close();
    }

    /** Starts what the operands need (a backend); called before {@link #prepare}. */
    protected void open() {
    }

    /** Allocates and fills the operands. */
    protected abstract void prepare();

    /** Stops what {@link #open} started. */
    protected void close() {
    }

    /** The thread count asked for, 0 resolved to the number of cores. */
    protected int resolvedThreads() {
        return new BackendOptions("auto", threads).resolvedThreads();
    }

    /** {@code elements} elements of {@code bytesEach} bytes, in units of 10⁹ bytes. */
    protected static double gigabytes(double elements, int bytesEach) {
        return elements * bytesEach / 1e9;
    }

    /** Dimensions written as "1024x512x32000". */
    protected static long[] dims(String s) {
        String[] parts = s.split("x");
        long[] d = new long[parts.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = Long.parseLong(parts[i].trim());
        }
        return d;
    }

    /** A zero-filled tensor. */
    protected Tensor zeros(String name, DType dtype, long... dims) {
        return pool.allocate(name, dtype, Category.WORKSPACE, dims);
    }

    /** An f32 tensor of independent uniform values in [lo, hi). */
    protected Tensor uniform(String name, float lo, float hi, long... dims) {
        Tensor t = zeros(name, DType.F32, dims);
        SplittableRandom r = new SplittableRandom(seed++);
        MemorySegment seg = t.segment();
        float[] chunk = new float[1 << 16];
        for (long done = 0; done < t.size(); done += chunk.length) {
            int len = (int) Math.min(chunk.length, t.size() - done);
            for (int i = 0; i < len; i++) {
                chunk[i] = lo + (float) r.nextDouble() * (hi - lo);
            }
            MemorySegment.copy(chunk, 0, seg, ValueLayout.JAVA_FLOAT, 4 * done, len);
        }
        return t;
    }

    /** An int32 tensor of independent uniform values in [0, bound). */
    protected Tensor indices(String name, int bound, long... dims) {
        Tensor t = zeros(name, DType.I32, dims);
        SplittableRandom r = new SplittableRandom(seed++);
        MemorySegment seg = t.segment();
        for (long i = 0; i < t.size(); i++) {
            seg.setAtIndex(ValueLayout.JAVA_INT, i, r.nextInt(bound));
        }
        return t;
    }
}
