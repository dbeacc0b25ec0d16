package jtune.jmh;

import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * Cross-entropy of logits (N, V) fused with its gradient into a separate dlogits: reads logits and targets,
 * writes dlogits (8·N·V + 4·N bytes). LLaMA-60M's vocabulary is 32000; 1024 rows is its batch of tokens.
 */
public class CrossEntropy extends KernelBench {
    /** N x V. */
    @Param({"256x32000", "1024x32000", "13x4098"})
    public String shape;

    private Tensor logits;
    private Tensor targets;
    private Tensor dlogits;
    private double callGB;

    @Override
    protected void prepare() {
        long[] d = dims(shape);
        long rows = d[0], vocab = d[1];
        logits = uniform("logits", -8, 8, rows, vocab);
        targets = indices("targets", Math.toIntExact(vocab), rows);
        dlogits = zeros("dlogits", DType.F32, rows, vocab);
        callGB = gigabytes(2.0 * rows * vocab + rows, 4);
    }

    @Benchmark
    public float forwardBackward(Traffic t) {
        t.GB += callGB;
        return ops.crossEntropy(logits, targets, dlogits, 1f / logits.dim(0));
    }
}
