package jtune.test;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.lang.foreign.MemorySegment;
import jtune.engine.backend.AdamWStep;
import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import jtune.gpu.GpuBackend;
import jtune.gpu.GpuBackendProvider;

/**
 * The GPU backend driven with host tensors, so that the conformance suites run on it unchanged. Each call copies
 * every storage block its arguments view to the GPU, once per block (aliased arguments stay aliased, and the
 * guard elements around a view travel with it), runs the operation on device views with the host views' own
 * shapes, strides, offsets and names, and copies every block back, so the suites' guards also catch a kernel that
 * writes outside its output.
 */
final class StagedGpu implements Backend {
    private final GpuBackend gpu;
    private final MemoryPool pool;

    private StagedGpu(GpuBackend gpu) {
        this.gpu = gpu;
        this.pool = gpu.pool(new MemoryLedger());
    }

    /** The backend on GPU 0; the test class runs only where there is one ({@link GpuPresent}). */
    static StagedGpu open() {
        return new StagedGpu((GpuBackend) new GpuBackendProvider().create(new BackendOptions("cuda", 0, "cuda")));
    }

    /** The device copies of the blocks one call touches. */
    private final class Call implements AutoCloseable {
        private final Map<MemorySegment, Tensor> flats = new IdentityHashMap<>();
        private final List<MemorySegment> order = new ArrayList<>();

        /** The device view of host view {@code host} (null stays null). */
        Tensor on(Tensor host) {
            if (host == null) {
                return null;
            }
            MemorySegment block = host.segment();
            Tensor flat = flats.computeIfAbsent(block, b -> {
                Tensor t = pool.allocate("staged", host.dtype(), Category.WORKSPACE, b.byteSize() / host.dtype().byteSize());
                pool.deviceMemory().toDevice(b, t.segment().address());
                order.add(b);
                return t;
            });
            return flat.view(host.shape().toArray(), host.strides(), host.offset()).named(host.name());
        }

        @Override
        public void close() {
            for (MemorySegment block : order) {
                Tensor flat = flats.get(block);
                pool.deviceMemory().toHost(flat.segment().address(), block);
                flat.close();
            }
        }
    }

    @Override
    public String name() {
        return gpu.name();
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public int vectorBits() {
        return gpu.vectorBits();
    }

    @Override
    public int threads() {
        return gpu.threads();
    }

    @Override
    public String describe() {
        return gpu.describe() + " (staged from host tensors)";
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
        try (Call k = new Call()) {
            gpu.matmul(k.on(a), transA, k.on(b), transB, k.on(c), alpha, beta);
        }
    }

    @Override
    public void quantMatmul(Tensor x, QuantizedMatrix w, Tensor y, float alpha, float beta) {
        gpu.quantMatmul(x, w, y, alpha, beta);
    }

    @Override
    public void quantMatmulInputGrad(Tensor dy, QuantizedMatrix w, Tensor dx, float alpha, float beta) {
        gpu.quantMatmulInputGrad(dy, w, dx, alpha, beta);
    }

    @Override
    public void dequantize(QuantizedMatrix w, Tensor out) {
        gpu.dequantize(w, out);
    }

    @Override
    public void quantScaleGrad(Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales) {
        gpu.quantScaleGrad(x, dy, w, dScales);
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        try (Call k = new Call()) {
            gpu.add(k.on(a), k.on(b), k.on(out));
        }
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        try (Call k = new Call()) {
            gpu.mul(k.on(a), k.on(b), k.on(out));
        }
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        try (Call k = new Call()) {
            gpu.scale(k.on(x), s, k.on(out));
        }
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        try (Call k = new Call()) {
            gpu.axpy(alpha, k.on(x), k.on(y));
        }
    }

    @Override
    public void fill(Tensor x, float value) {
        try (Call k = new Call()) {
            gpu.fill(k.on(x), value);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        try (Call k = new Call()) {
            gpu.copy(k.on(src), k.on(dst));
        }
    }

    @Override
    public void convert(Tensor src, Tensor dst) {
        try (Call k = new Call()) {
            gpu.convert(k.on(src), k.on(dst));
        }
    }

    @Override
    public float sum(Tensor x) {
        try (Call k = new Call()) {
            return gpu.sum(k.on(x));
        }
    }

    @Override
    public float max(Tensor x) {
        try (Call k = new Call()) {
            return gpu.max(k.on(x));
        }
    }

    @Override
    public float sumOfSquares(Tensor x) {
        try (Call k = new Call()) {
            return gpu.sumOfSquares(k.on(x));
        }
    }

    @Override
    public float dot(Tensor a, Tensor b) {
        try (Call k = new Call()) {
            return gpu.dot(k.on(a), k.on(b));
        }
    }

    @Override
    public void softmax(Tensor x, Tensor out, boolean causal) {
        try (Call k = new Call()) {
            gpu.softmax(k.on(x), k.on(out), causal);
        }
    }

    @Override
    public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        try (Call k = new Call()) {
            gpu.softmaxBackward(k.on(y), k.on(dy), k.on(dx));
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        try (Call k = new Call()) {
            gpu.rmsNorm(k.on(x), k.on(weight), eps, k.on(out), k.on(rstd));
        }
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        try (Call k = new Call()) {
            gpu.rmsNormBackward(k.on(x), k.on(weight), k.on(rstd), k.on(dy), k.on(dx), k.on(dweight));
        }
    }

    @Override
    public void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        try (Call k = new Call()) {
            gpu.rope(k.on(x), k.on(cos), k.on(sin), inverse);
        }
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        try (Call k = new Call()) {
            gpu.silu(k.on(x), k.on(out));
        }
    }

    @Override
    public void siluBackward(Tensor x, Tensor dy, Tensor dx) {
        try (Call k = new Call()) {
            gpu.siluBackward(k.on(x), k.on(dy), k.on(dx));
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        try (Call k = new Call()) {
            gpu.swiglu(k.on(gate), k.on(up), k.on(out));
        }
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        try (Call k = new Call()) {
            gpu.swigluBackward(k.on(gate), k.on(up), k.on(dout), k.on(dgate), k.on(dup));
        }
    }

    @Override
    public float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        try (Call k = new Call()) {
            return gpu.crossEntropy(k.on(logits), k.on(targets), k.on(dlogits), gradScale);
        }
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        try (Call k = new Call()) {
            gpu.embedding(k.on(table), k.on(ids), k.on(out));
        }
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable) {
        try (Call k = new Call()) {
            gpu.embeddingBackward(k.on(dout), k.on(ids), k.on(dtable));
        }
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        try (Call k = new Call()) {
            gpu.adamw(k.on(param), k.on(grad), k.on(m), k.on(v), step);
        }
    }

    @Override
    public void close() {
        pool.close();
        gpu.close();
    }
}
