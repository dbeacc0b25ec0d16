package jtune.cpu;

import jtune.engine.backend.AdamWStep;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * The CPU backend: Vector API kernels at the width of {@link VectorWidth}, spread over a {@link WorkerPool}.
 * Each operation checks its arguments with {@link jtune.engine.backend.Checks} (the same checks and messages
 * as the scalar oracle) and hands the work to one kernel class.
 */
public final class SimdBackend implements Backend {
    private final WorkerPool pool;
    // TEMPORARY while the kernels are written: every delegation to it is replaced by a vector kernel.
    private final ScalarBackend todo = new ScalarBackend();

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
        todo.matmul(a, transA, b, transB, c, alpha, beta);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        todo.add(a, b, out);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        todo.mul(a, b, out);
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        todo.scale(x, s, out);
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        todo.axpy(alpha, x, y);
    }

    @Override
    public void fill(Tensor x, float value) {
        todo.fill(x, value);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        todo.copy(src, dst);
    }

    @Override
    public void convert(Tensor src, Tensor dst) {
        todo.convert(src, dst);
    }

    @Override
    public float sum(Tensor x) {
        return todo.sum(x);
    }

    @Override
    public float max(Tensor x) {
        return todo.max(x);
    }

    @Override
    public float sumOfSquares(Tensor x) {
        return todo.sumOfSquares(x);
    }

    @Override
    public float dot(Tensor a, Tensor b) {
        return todo.dot(a, b);
    }

    @Override
    public void softmax(Tensor x, Tensor out, boolean causal) {
        todo.softmax(x, out, causal);
    }

    @Override
    public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        todo.softmaxBackward(y, dy, dx);
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        todo.rmsNorm(x, weight, eps, out, rstd);
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        todo.rmsNormBackward(x, weight, rstd, dy, dx, dweight);
    }

    @Override
    public void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        todo.rope(x, cos, sin, inverse);
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        todo.silu(x, out);
    }

    @Override
    public void siluBackward(Tensor x, Tensor dy, Tensor dx) {
        todo.siluBackward(x, dy, dx);
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        todo.swiglu(gate, up, out);
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        todo.swigluBackward(gate, up, dout, dgate, dup);
    }

    @Override
    public float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        return todo.crossEntropy(logits, targets, dlogits, gradScale);
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        todo.embedding(table, ids, out);
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable) {
        todo.embeddingBackward(dout, ids, dtable);
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        todo.adamw(param, grad, m, v, step);
    }

    @Override
    public void close() {
        pool.close();
    }
}
