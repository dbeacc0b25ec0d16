package jtune.cpu;

import jtune.engine.backend.AdamWStep;
import jtune.engine.backend.Backend;
import jtune.engine.backend.Checks;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * The CPU backend: Vector API kernels at the width of {@link VectorWidth}, spread over a {@link WorkerPool}.
 * Each operation checks its arguments with {@link jtune.engine.backend.Checks} (the same checks and messages
 * as the scalar oracle) and hands the work to one kernel class.
 */
public final class SimdBackend implements Backend {
    private final WorkerPool pool;

    public SimdBackend(int threads) {
        this.pool = new WorkerPool(threads);
    }

    @Override
    public String name() {
        return "cpu-simd";
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public int vectorBits() {
        return VectorWidth.BITS;
    }

    @Override
    public int threads() {
        return pool.threads();
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
        Checks.Gemm g = Checks.Gemm.of(a, transA, b, transB, c);
        if (g.m() <= Gemv.ROWS) {
            Gemv.multiply(pool, g, a, transA, b, transB, c, alpha, beta);
        } else {
            Gemm.multiply(pool, g, a, transA, b, transB, c, alpha, beta);
        }
    }

    @Override
    public void quantMatmul(Tensor x, QuantizedMatrix w, Tensor y, float alpha, float beta) {
        int n = Checks.quantProduct("quantMatmul", x, w, y, true);
        QuantKernels.matmul(pool, new QuantSource(w), x, y, n, alpha, beta);
    }

    @Override
    public void quantMatmulInputGrad(Tensor dy, QuantizedMatrix w, Tensor dx, float alpha, float beta) {
        int n = Checks.quantProduct("quantMatmulInputGrad", dy, w, dx, false);
        QuantKernels.inputGrad(pool, new QuantSource(w), dy, dx, n, alpha, beta);
    }

    @Override
    public void dequantize(QuantizedMatrix w, Tensor out) {
        Checks.dequantize("dequantize", w, out);
        QuantKernels.dequantize(pool, new QuantSource(w), out);
    }

    @Override
    public void quantScaleGrad(Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales) {
        int n = Checks.quantScaleGrad("quantScaleGrad", x, dy, w, dScales);
        QuantKernels.scaleGrad(pool, new QuantSource(w), x, dy, dScales, n);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        Checks.sameF32("add", a, b, out);
        Elementwise.add(pool, a, b, out);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        Checks.sameF32("mul", a, b, out);
        Elementwise.mul(pool, a, b, out);
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        Checks.sameF32("scale", x, out);
        Elementwise.scale(pool, x, s, out);
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        Checks.sameF32("axpy", x, y);
        Elementwise.axpy(pool, alpha, x, y);
    }

    @Override
    public void fill(Tensor x, float value) {
        Checks.f32("fill", x);
        Elementwise.fill(pool, x, value);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        Checks.typed("copy", dst, dst.dtype());
        if (src.dtype() != dst.dtype() || !src.shape().equals(dst.shape())) {
            throw new IllegalArgumentException("copy: " + src + " and " + dst + " must have the same shape and type");
        }
        Elementwise.copy(pool, src, dst);
    }

    @Override
    public void convert(Tensor src, Tensor dst) {
        for (Tensor t : new Tensor[]{src, dst}) {
            Checks.typed("convert", t, t.dtype());
            if (!t.dtype().isFloating()) {
                throw new IllegalArgumentException("convert: " + t + " must be f32, bf16 or f16");
            }
        }
        if (!src.shape().equals(dst.shape())) {
            throw new IllegalArgumentException("convert: shapes differ: " + Checks.describe(src, dst));
        }
        Convert.convert(pool, src, dst);
    }

    @Override
    public float sum(Tensor x) {
        Checks.f32("sum", x);
        return Reductions.sum(pool, x);
    }

    @Override
    public float max(Tensor x) {
        Checks.f32("max", x);
        if (x.size() == 0) {
            throw new IllegalArgumentException("max: " + x + " is empty; the maximum of no elements is undefined");
        }
        return Reductions.max(pool, x);
    }

    @Override
    public float sumOfSquares(Tensor x) {
        Checks.f32("sumOfSquares", x);
        return Reductions.sumOfSquares(pool, x);
    }

    @Override
    public float dot(Tensor a, Tensor b) {
        Checks.sameF32("dot", a, b);
        return Reductions.dot(pool, a, b);
    }

    @Override
    public void softmax(Tensor x, Tensor out, boolean causal) {
        Checks.sameF32("softmax", x, out);
        long t = causal && x.rank() >= 2 ? x.dim(-2) : 0;
        if (causal && (x.rank() < 2 || x.dim(-1) < t)) {
            throw new IllegalArgumentException("softmax: causal needs " + x + " to be (..., T, S) with S >= T");
        }
        Softmax.softmax(pool, x, out, t);
    }

    @Override
    public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        Checks.sameF32("softmaxBackward", y, dy, dx);
        Softmax.backward(pool, y, dy, dx);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        Checks.sameF32("rmsNorm", x, out);
        Checks.f32("rmsNorm", weight);
        Checks.f32("rmsNorm", rstd);
        long d = x.dim(-1);
        Checks.shape("rmsNorm", weight, d);
        Checks.shape("rmsNorm", rstd, x.size() / Math.max(d, 1));
        Norms.rmsNorm(pool, x, weight, eps, out, rstd);
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        Checks.sameF32("rmsNormBackward", x, dy, dx);
        Checks.f32("rmsNormBackward", weight);
        Checks.f32("rmsNormBackward", rstd);
        Checks.f32("rmsNormBackward", dweight);
        long d = x.dim(-1);
        Checks.shape("rmsNormBackward", weight, d);
        Checks.shape("rmsNormBackward", dweight, d);
        Checks.shape("rmsNormBackward", rstd, x.size() / Math.max(d, 1));
        Norms.rmsNormBackward(pool, x, weight, rstd, dy, dx, dweight);
    }

    @Override
    public void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        Checks.f32("rope", x);
        Checks.f32("rope", cos);
        Checks.f32("rope", sin);
        if (x.rank() != 3 && x.rank() != 4) {
            throw new IllegalArgumentException("rope: " + x + " must be (T, H, D) or (B, T, H, D)");
        }
        long d = x.dim(-1);
        if (d % 2 != 0) {
            throw new IllegalArgumentException("rope: head dimension of " + x + " must be even");
        }
        Checks.shape("rope", cos, x.dim(-3), d / 2);
        Checks.shape("rope", sin, x.dim(-3), d / 2);
        Rope.rope(pool, x, cos, sin, inverse);
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        Checks.sameF32("silu", x, out);
        Activations.silu(pool, x, out);
    }

    @Override
    public void siluBackward(Tensor x, Tensor dy, Tensor dx) {
        Checks.sameF32("siluBackward", x, dy, dx);
        Activations.siluBackward(pool, x, dy, dx);
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        Checks.sameF32("swiglu", gate, up, out);
        Activations.swiglu(pool, gate, up, out);
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        Checks.sameF32("swigluBackward", gate, up, dout, dgate, dup);
        Activations.swigluBackward(pool, gate, up, dout, dgate, dup);
    }

    @Override
    public float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        Checks.f32("crossEntropy", logits);
        Checks.typed("crossEntropy", targets, DType.I32);
        if (logits.rank() != 2) {
            throw new IllegalArgumentException("crossEntropy: " + logits + " must be (N, V)");
        }
        Checks.shape("crossEntropy", targets, logits.dim(0));
        if (dlogits != null) {
            Checks.sameF32("crossEntropy", logits, dlogits);
        }
        return Loss.crossEntropy(pool, logits, targets, dlogits, gradScale);
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        Checks.f32("embedding", table);
        Checks.typed("embedding", ids, DType.I32);
        Checks.f32("embedding", out);
        Checks.rank("embedding", table, 2, "(V, D)");
        Checks.shape("embedding", out, ids.size(), table.dim(1));
        Embedding.embedding(pool, table, ids, out);
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable) {
        Checks.f32("embeddingBackward", dtable);
        Checks.typed("embeddingBackward", ids, DType.I32);
        Checks.f32("embeddingBackward", dout);
        Checks.rank("embeddingBackward", dtable, 2, "(V, D)");
        Checks.shape("embeddingBackward", dout, ids.size(), dtable.dim(1));
        Embedding.embeddingBackward(pool, dout, ids, dtable);
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        Checks.sameF32("adamw", param, grad, m, v);
        AdamW.step(pool, param, grad, m, v, step);
    }

    @Override
    public void close() {
        pool.close();
    }
}
