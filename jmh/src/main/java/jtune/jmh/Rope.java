package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * Rotary position embedding in place on x (B, T, H, D), forward and backward (the inverse rotation). A call
 * reads and writes x and reads cos and sin (T, D/2): 8·B·T·H·D + 4·T·D bytes. The default is LLaMA-60M's
 * queries at batch 4, 256 tokens, 8 heads of 64.
 */
public class Rope extends KernelBench {
    /** B x T x H x D, D even. */
    @Param({"4x256x8x64", "1x207x7x130"})
    public String shape;

    private Tensor x;
    private Tensor cos;
    private Tensor sin;
    private double callGB;

    @Override
    protected void prepare() {
        long[] d = dims(shape);
        long tokens = d[1], dim = d[3];
        x = uniform("x", -1, 1, d);
        cos = zeros("cos", x.dtype(), tokens, dim / 2);
        sin = zeros("sin", x.dtype(), tokens, dim / 2);
        for (long t = 0; t < tokens; t++) {
            for (long i = 0; i < dim / 2; i++) {
                double angle = t * Math.pow(10000, -2.0 * i / dim);
                cos.set((float) Math.cos(angle), t, i);
                sin.set((float) Math.sin(angle), t, i);
            }
        }
        callGB = gigabytes(2.0 * x.size() + tokens * dim, 4);
    }

    @Benchmark
    public void forward(Traffic t) {
        ops.rope(x, cos, sin, false);
        t.GB += callGB;
    }

    @Benchmark
    public void backward(Traffic t) {
        ops.rope(x, cos, sin, true);
        t.GB += callGB;
    }
}
