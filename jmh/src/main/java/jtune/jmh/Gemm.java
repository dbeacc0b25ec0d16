package jtune.jmh;

import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * {@code matmul}, rank 2: {@code C = op(A)·op(B)} (alpha 1, beta 0) with op(A) (M, K), op(B) (K, N), 2·M·N·K
 * flops a call. The shapes are the bar's squares and the LLaMA-60M training products (M = 1024 tokens),
 * plus an awkward one. The scalar oracle would take minutes a call at these sizes, so it multiplies only
 * the first rows of A, as many as keep a call near 2²⁸ flops; {@link Work#GFLOP} counts the flops done.
 */
public class Gemm extends KernelBench {
    private static final long SCALAR_FLOPS = 1L << 28;

    /** M x K x N. */
    @Param({"1024x1024x1024", "2048x2048x2048", "1024x512x1376", "1024x1376x512", "1024x512x32000", "207x702x13"})
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
        long m = d[0], k = d[1], n = d[2];
        if (backend.equals("scalar")) {
            m = Math.clamp(SCALAR_FLOPS / (2 * k * n), 1, m);
        }
        transA = layout.charAt(0) == 't';
        transB = layout.charAt(1) == 't';
        a = transA ? uniform("A", -1, 1, k, m) : uniform("A", -1, 1, m, k);
        b = transB ? uniform("B", -1, 1, n, k) : uniform("B", -1, 1, k, n);
        c = uniform("C", -1, 1, m, n);
        gflop = 2.0 * m * n * k / 1e9;
    }

    @Benchmark
    public void matmul(Work w) {
        ops.matmul(a, transA, b, transB, c, 1f, 0f);
        w.GFLOP += gflop;
    }
}
