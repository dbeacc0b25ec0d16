package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * RMSNorm of x (N, D) and its backward. Forward reads x and w and writes out and rstd (8·N·D + 4·D + 4·N
 * bytes); backward reads x, dy, w and rstd, writes dx and updates dweight (12·N·D + 12·D + 4·N). The first
 * shape is LLaMA-60M's 1024 tokens × 512; the last is 64 MB.
 */
public class RmsNorm extends KernelBench {
    /** N x D. */
    @Param({"1024x512", "207x4098", "4096x4096"})
    public String shape;

    private Tensor x;
    private Tensor w;
    private Tensor out;
    private Tensor rstd;
    private Tensor dy;
    private Tensor dweight;
    private double forwardGB;
    private double backwardGB;

    @Override
    protected void prepare() {
        long[] d = dims(shape);
        long rows = d[0], dim = d[1];
        x = uniform("x", -2, 2, rows, dim);
        w = uniform("w", 0.5f, 1.5f, dim);
        out = zeros("out", x.dtype(), rows, dim);
        rstd = zeros("rstd", x.dtype(), rows);
        dy = uniform("dy", -1, 1, rows, dim);
        dweight = zeros("dweight", x.dtype(), dim);
        ops.rmsNorm(x, w, 1e-6f, out, rstd);
        forwardGB = gigabytes(2.0 * rows * dim + dim + rows, 4);
        backwardGB = gigabytes(3.0 * rows * dim + 3.0 * dim + rows, 4);
    }

    @Benchmark
    public void forward(Traffic t) {
        ops.rmsNorm(x, w, 1e-6f, out, rstd);
        t.GB += forwardGB;
    }

    @Benchmark
    public void backward(Traffic t) {
        ops.rmsNormBackward(x, w, rstd, dy, out, dweight);
        t.GB += backwardGB;
    }
}
