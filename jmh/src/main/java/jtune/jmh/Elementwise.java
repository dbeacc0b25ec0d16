package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * The element-wise f32 kernels over n elements: add and mul read 2 tensors and write 1 (12 bytes an element),
 * scale and copy read 1 and write 1 (8), axpy reads x and y and writes y (12), fill writes 1 (4). 16777216
 * elements is the bar's 64 MB.
 */
public class Elementwise extends KernelBench {
    @Param({"4098", "1000003", "16777216"})
    public long n;

    private Tensor a;
    private Tensor b;
    private Tensor out;
    private double tensorGB;

    @Override
    protected void prepare() {
        a = uniform("a", -1, 1, n);
        b = uniform("b", -1, 1, n);
        out = uniform("out", -1, 1, n);
        tensorGB = gigabytes(n, 4);
    }

    @Benchmark
    public void add(Traffic t) {
        ops.add(a, b, out);
        t.GB += 3 * tensorGB;
    }

    @Benchmark
    public void mul(Traffic t) {
        ops.mul(a, b, out);
        t.GB += 3 * tensorGB;
    }

    @Benchmark
    public void scale(Traffic t) {
        ops.scale(a, 0.5f, out);
        t.GB += 2 * tensorGB;
    }

    /** y = y + 1e-6·x: the tiny alpha keeps y bounded over millions of calls. */
    @Benchmark
    public void axpy(Traffic t) {
        ops.axpy(1e-6f, a, out);
        t.GB += 3 * tensorGB;
    }

    @Benchmark
    public void fill(Traffic t) {
        ops.fill(out, 0.25f);
        t.GB += tensorGB;
    }

    @Benchmark
    public void copy(Traffic t) {
        ops.copy(a, out);
        t.GB += 2 * tensorGB;
    }
}
