package jtune.jmh;

import jtune.engine.backend.AdamWStep;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * One AdamW step over n parameters: reads param, grad, m and v and writes param, m and v (28 bytes an
 * element). 16777216 parameters is 64 MB of each.
 */
public class AdamW extends KernelBench {
    private static final AdamWStep STEP = new AdamWStep(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 10);

    @Param({"4098", "1000003", "16777216"})
    public long n;

    private Tensor param;
    private Tensor grad;
    private Tensor m;
    private Tensor v;
    private double callGB;

    @Override
    protected void prepare() {
        param = uniform("param", -1, 1, n);
        grad = uniform("grad", -1, 1, n);
        m = uniform("m", -0.1f, 0.1f, n);
        v = uniform("v", 0, 0.01f, n);
        callGB = gigabytes(7.0 * n, 4);
    }

    @Benchmark
    public void step(Traffic t) {
        ops.adamw(param, grad, m, v, STEP);
        t.GB += callGB;
    }
}
