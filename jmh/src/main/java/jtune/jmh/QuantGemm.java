package jtune.jmh;

import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * The fused products with quantized weights at training shapes, 2·M·N·K flops a call: {@code forward} is
 * {@code quantMatmul}, {@code Y (M, N) = X (M, K) · dequant(W)ᵀ} with W (N, K), the twin of {@link Gemm}'s
 * {@code nt} layout on the same shape; {@code inputGrad} is {@code quantMatmulInputGrad}, {@code dX (M, K) =
 * dY (M, N) · dequant(W)}, the twin of {@code nn} with K and N swapped. Shapes are M x K x N as in {@link Gemm}:
 * M tokens, K inputs, N outputs (LLaMA-60M's gate/up projection, and a 4096² layer at 1024 tokens).
 */
public class QuantGemm extends KernelBench {
    /** M x K x N. */
    @Param({"1024x512x1376", "1024x4096x4096"})
    public String shape;

    /** See {@link QuantWeights#format}. */
    @Param({"int4-g128", "nf4-b64"})
    public String format;

    private QuantizedMatrix w;
    private Tensor x;
    private Tensor y;
    private double gflop;

    @Override
    protected void prepare() {
        long[] d = dims(shape);
        long m = d[0], k = d[1], n = d[2];
        if (backend.equals("scalar")) {
            m = 1;
        }
        w = QuantWeights.random(pool, QuantWeights.format(format), n, k, 7);
        x = uniform("x", -1, 1, m, k);
        y = uniform("y", -1, 1, m, n);
        gflop = 2.0 * m * n * k / 1e9;
    }

    @Benchmark
    public void forward(Work work) {
        ops.quantMatmul(x, w, y, 1f, 0f);
        work.GFLOP += gflop;
    }

    @Benchmark
    public void inputGrad(Work work) {
        ops.quantMatmulInputGrad(y, w, x, 1f, 0f);
        work.GFLOP += gflop;
    }
}
