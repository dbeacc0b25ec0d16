package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;

/**
 * Row softmax over attention scores (B, T, S) and its backward. Forward reads x and writes out (8 bytes an
 * element; with the causal mask the masked entries are written as 0 and counted like the others); backward
 * reads y and dy and writes dx (12). The default is LLaMA-60M at batch 4 × 8 heads, 256 tokens.
 */
public class Softmax extends KernelBench {
    /** B x T x S, S ≥ T. */
    @Param({"32x256x256", "7x207x702"})
    public String shape;

    /** Whether the forward pass applies the causal mask. */
    @State(Scope.Thread)
    public static class Mask {
        @Param({"false", "true"})
        public boolean causal;
    }

    private Tensor x;
    private Tensor y;
    private Tensor dy;
    private Tensor out;
    private double tensorGB;

    @Override
    protected void prepare() {
        long[] d = dims(shape);
        x = uniform("x", -4, 4, d);
        y = uniform("y", 0, 1, d);
        dy = uniform("dy", -1, 1, d);
        out = zeros("out", x.dtype(), d);
        tensorGB = gigabytes(x.size(), 4);
    }

    @Benchmark
    public void forward(Mask mask, Traffic t) {
        ops.softmax(x, out, mask.causal);
        t.GB += 2 * tensorGB;
    }

    @Benchmark
    public void backward(Traffic t) {
        ops.softmaxBackward(y, dy, out);
        t.GB += 3 * tensorGB;
    }
}
