package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * The whole-tensor f32 reductions over n elements: sum, max and sumOfSquares read 1 tensor (4 bytes an
 * element), dot reads 2 (8). The result is returned so that JMH consumes it.
 */
public class Reductions extends KernelBench {
    @Param({"4098", "1000003", "16777216"})
    public long n;

    private Tensor a;
    private Tensor b;
    private double tensorGB;

    @Override
    protected void prepare() {
        a = uniform("a", -1, 1, n);
        b = uniform("b", -1, 1, n);
        tensorGB = gigabytes(n, 4);
    }

    @Benchmark
    public float sum(Traffic t) {
        t.GB += tensorGB;
        return ops.sum(a);
    }

    @Benchmark
    public float max(Traffic t) {
        t.GB += tensorGB;
        return ops.max(a);
    }

    @Benchmark
    public float sumOfSquares(Traffic t) {
        t.GB += tensorGB;
        return ops.sumOfSquares(a);
    }

    @Benchmark
    public float dot(Traffic t) {
        t.GB += 2 * tensorGB;
        return ops.dot(a, b);
    }
}
