package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * SiLU and SwiGLU over n elements, forward and backward. Bytes an element: silu 8 (x → out), siluBackward 12
 * (x, dy → dx), swiglu 12 (gate, up → out), swigluBackward 20 (gate, up, dout → dgate, dup). 1409024 is
 * LLaMA-60M's 1024 tokens × 1376 hidden; 16777216 is 64 MB.
 */
public class Activations extends KernelBench {
    @Param({"4098", "1409024", "16777216"})
    public long n;

    private Tensor gate;
    private Tensor up;
    private Tensor dout;
    private Tensor out;
    private Tensor out2;
    private double tensorGB;

    @Override
    protected void prepare() {
        gate = uniform("gate", -6, 6, n);
        up = uniform("up", -1, 1, n);
        dout = uniform("dout", -1, 1, n);
        out = zeros("out", gate.dtype(), n);
        out2 = zeros("out2", gate.dtype(), n);
        tensorGB = gigabytes(n, 4);
    }

    @Benchmark
    public void silu(Traffic t) {
        ops.silu(gate, out);
        t.GB += 2 * tensorGB;
    }

    @Benchmark
    public void siluBackward(Traffic t) {
        ops.siluBackward(gate, dout, out);
        t.GB += 3 * tensorGB;
    }

    @Benchmark
    public void swiglu(Traffic t) {
        ops.swiglu(gate, up, out);
        t.GB += 3 * tensorGB;
    }

    @Benchmark
    public void swigluBackward(Traffic t) {
        ops.swigluBackward(gate, up, dout, out, out2);
        t.GB += 5 * tensorGB;
    }
}
