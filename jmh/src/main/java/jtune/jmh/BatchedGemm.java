package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * {@code matmul}, rank 3: a batch of {@code C = op(A)·op(B)} (alpha 1, beta 0), 2·B·M·N·K flops a call. The
 * default is attention in LLaMA-60M at batch 4 × 8 heads, 256 tokens, head size 64: Q·Kᵀ is nt with
 * K = 64, N = 256; P·V is nn with K = 256, N = 64; their backward products are nn, nt and tn.
 */
public class BatchedGemm extends KernelBench {
    /** B x M x K x N. */
    @Param({"32x256x64x256", "32x256x256x64", "5x207x13x702"})
    public String shape;

    /** nn: A·B, nt: A·Bᵀ, tn: Aᵀ·B. */
    @Param({"nn", "nt", "tn"})
    public String layout;

    private Tensor a;
    private Tensor b;
    private Tensor c;
    private boolean transA;
    private boolean transB;
    private double gflop;

    @Override
    protected void prepare() {
        long[] d = dims(shape);
        long batch = d[0], m = d[1], k = d[2], n = d[3];
        transA = layout.charAt(0) == 't';
        transB = layout.charAt(1) == 't';
        a = transA ? uniform("A", -1, 1, batch, k, m) : uniform("A", -1, 1, batch, m, k);
        b = transB ? uniform("B", -1, 1, batch, n, k) : uniform("B", -1, 1, batch, k, n);
        c = uniform("C", -1, 1, batch, m, n);
        gflop = 2.0 * batch * m * n * k / 1e9;
    }

    @Benchmark
    public void matmul(Work w) {
        ops.matmul(a, transA, b, transB, c, 1f, 0f);
        w.GFLOP += gflop;
    }
}
