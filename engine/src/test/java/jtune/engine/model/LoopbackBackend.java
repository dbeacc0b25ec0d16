package jtune.engine.model;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import jtune.engine.backend.AdamWStep;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.DeviceMemory;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Shape;
import jtune.engine.tensor.Tensor;

/**
 * A stand-in accelerator for testing device-resident code on the CPU: its {@link DeviceMemory} is host memory
 * at real addresses, and its operations turn each device tensor into a host view of the same block (same shape,
 * strides and offset) and run the scalar oracle on it. Code that trains on it touches device tensors only through
 * backend operations and whole-tensor copies, as it must on a GPU; any other host access fails, because device
 * tensors' segments are zero-length. Every copy between host and "device" is counted.
 */
public final class LoopbackBackend implements Backend {
    private final ScalarBackend scalar = new ScalarBackend();
    private final Memory memory = new Memory();

    /** Blocks of a shared arena, by address; the device is cuda:7 so that it cannot be mistaken for a real one. */
    static final class Memory implements DeviceMemory {
        private final Arena arena = Arena.ofShared();
        private final Map<Long, MemorySegment> blocks = new HashMap<>();
        long copies;

        @Override
        public Device device() {
            return Device.cuda(7);
        }

        @Override
        public synchronized long allocate(long bytes) {
            MemorySegment s = arena.allocate(bytes, 256);
            blocks.put(s.address(), s);
            return s.address();
        }

        @Override
        public synchronized void zero(long address, long bytes) {
            blocks.get(address).asSlice(0, bytes).fill((byte) 0);
        }

        @Override
        public synchronized void free(long address, long bytes) {
            blocks.remove(address);
        }

        synchronized MemorySegment block(long address) {
            MemorySegment s = blocks.get(address);
            if (s == null) {
                throw new AssertionError("no loopback block at " + address);
            }
            return s;
        }

        /** The block holding [address, address + bytes), sliced to exactly those bytes. */
        synchronized MemorySegment at(long address, long bytes) {
            for (MemorySegment s : blocks.values()) {
                if (address >= s.address() && address + bytes <= s.address() + s.byteSize()) {
                    return s.asSlice(address - s.address(), bytes);
                }
            }
            throw new AssertionError("no loopback block holds " + bytes + " bytes at " + address);
        }

        @Override
        public void toDevice(MemorySegment src, long address) {
            native_(src);
            at(address, src.byteSize()).copyFrom(src);
            copies++;
        }

        @Override
        public void toHost(long address, MemorySegment dst) {
            native_(dst);
            dst.copyFrom(at(address, dst.byteSize()));
            copies++;
        }

        /** A driver copies between device memory and native host memory only (the CUDA binding passes an address). */
        private static void native_(MemorySegment host) {
            if (!host.isNative()) {
                throw new AssertionError("a copy between the device and a heap segment, which a GPU driver cannot take: "
                        + host);
            }
        }
    }

    @Override
    public DeviceMemory memory() {
        return memory;
    }

    Memory loopback() {
        return memory;
    }

    /** The host view of device tensor {@code t}; a host tensor here is a bug of the code under test. */
    private Tensor host(Tensor t) {
        if (t == null) {
            return null;
        }
        if (!t.device().equals(memory.device())) {
            throw new AssertionError(t + " reached the loopback device backend");
        }
        MemorySegment block = memory.block(t.segment().address());
        Tensor flat = Tensor.wrap(block, t.name(), t.dtype(), Shape.of(block.byteSize() / t.dtype().byteSize()));
        return flat.view(t.shape().toArray(), t.strides(), t.offset()).named(t.name());
    }

    @Override
    public String name() {
        return "loopback";
    }

    @Override
    public Device device() {
        return memory.device();
    }

    @Override
    public int vectorBits() {
        return 32;
    }

    @Override
    public int threads() {
        return 1;
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
        scalar.matmul(host(a), transA, host(b), transB, host(c), alpha, beta);
    }

    @Override
    public void quantMatmul(Tensor x, QuantizedMatrix w, Tensor y, float alpha, float beta) {
        throw new UnsupportedOperationException("quantized weights are not used by the loopback tests");
    }

    @Override
    public void quantMatmulInputGrad(Tensor dy, QuantizedMatrix w, Tensor dx, float alpha, float beta) {
        throw new UnsupportedOperationException("quantized weights are not used by the loopback tests");
    }

    @Override
    public void dequantize(QuantizedMatrix w, Tensor out) {
        throw new UnsupportedOperationException("quantized weights are not used by the loopback tests");
    }

    @Override
    public void quantScaleGrad(Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales) {
        throw new UnsupportedOperationException("quantized weights are not used by the loopback tests");
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        scalar.add(host(a), host(b), host(out));
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        scalar.mul(host(a), host(b), host(out));
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        scalar.scale(host(x), s, host(out));
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        scalar.axpy(alpha, host(x), host(y));
    }

    @Override
    public void fill(Tensor x, float value) {
        scalar.fill(host(x), value);
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        scalar.copy(host(src), host(dst));
    }

    @Override
    public void convert(Tensor src, Tensor dst) {
        scalar.convert(host(src), host(dst));
    }

    @Override
    public float sum(Tensor x) {
        return scalar.sum(host(x));
    }

    @Override
    public float max(Tensor x) {
        return scalar.max(host(x));
    }

    @Override
    public float sumOfSquares(Tensor x) {
        return scalar.sumOfSquares(host(x));
    }

    @Override
    public float dot(Tensor a, Tensor b) {
        return scalar.dot(host(a), host(b));
    }

    @Override
    public void softmax(Tensor x, Tensor out, boolean causal) {
        scalar.softmax(host(x), host(out), causal);
    }

    @Override
    public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        scalar.softmaxBackward(host(y), host(dy), host(dx));
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        scalar.rmsNorm(host(x), host(weight), eps, host(out), host(rstd));
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        scalar.rmsNormBackward(host(x), host(weight), host(rstd), host(dy), host(dx), host(dweight));
    }

    @Override
    public void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        scalar.rope(host(x), host(cos), host(sin), inverse);
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        scalar.silu(host(x), host(out));
    }

    @Override
    public void siluBackward(Tensor x, Tensor dy, Tensor dx) {
        scalar.siluBackward(host(x), host(dy), host(dx));
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        scalar.swiglu(host(gate), host(up), host(out));
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        scalar.swigluBackward(host(gate), host(up), host(dout), host(dgate), host(dup));
    }

    @Override
    public float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        return scalar.crossEntropy(host(logits), host(targets), host(dlogits), gradScale);
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        scalar.embedding(host(table), host(ids), host(out));
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable) {
        scalar.embeddingBackward(host(dout), host(ids), host(dtable));
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step) {
        scalar.adamw(host(param), host(grad), host(m), host(v), step);
    }

    @Override
    public void close() {
    }
}
