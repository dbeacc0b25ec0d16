package jtune.gpu;

import java.util.ArrayList;
import java.util.List;
import jtune.gpu.driver.CudaContext;
import jtune.gpu.driver.CudaModule;
import jtune.gpu.driver.Kernel;

/**
 * jtune's PTX modules, loaded (JIT-compiled for the GPU at hand) once per backend, and every kernel in them
 * with its argument count. The sources are {@code gpu-ffm/src/main/cuda/*.cu}; each kernel's comment there
 * states its formula and layout.
 */
final class Kernels implements AutoCloseable {
    /** Dynamic shared memory of the bf16 GEMM: 4 stages of two 128×32 bf16 tiles. */
    static final int GEMM_BF16_SHARED_BYTES = 4 * 2 * 128 * 32 * 2;
    /**
     * Dynamic shared memory of the Hopper bf16 GEMM (gemm_sm90.cu): 4 stages of a 128×64 and a 256×64 bf16 tile,
     * and 1 KiB to align them to the 1024-byte swizzle atoms.
     */
    static final int GEMM_SM90_SHARED_BYTES = 4 * (128 + 256) * 64 * 2 + 1024;
    /** The Hopper GEMM's tile of C: rows (M) × columns (N). */
    static final int GEMM_SM90_TILE_M = 128, GEMM_SM90_TILE_N = 256;

    private final List<CudaModule> modules = new ArrayList<>();

    final Kernel add, mul, scale, axpy, silu, siluBackward, swiglu, swigluBackward, convert, gather, adamw;
    final Kernel reducePartial, reduceFinal;
    final Kernel softmax, softmaxBackward, rmsNorm, rmsNormBackward, rmsNormDweightPartial, rmsNormDweightFinal, rope;
    final Kernel crossEntropy, embedding, embeddingBackward;
    /** Sums the partial products of a GEMM split along K into C (gemm.cu). */
    final Kernel gemmSplitKReduce;
    /** Indexed by layout: 0 nn, 1 nt, 2 tn, 3 tt (bit 0: B transposed, bit 1: A transposed). */
    final Kernel[] gemmF32 = new Kernel[4], gemmBf16Aligned = new Kernel[4], gemmBf16Any = new Kernel[4];
    /**
     * The wgmma bf16 GEMM for aligned operands, by layout as {@link #gemmBf16Aligned}; null unless the GPU has compute
     * capability 9.0 (H100, H200), the only one whose instructions it uses.
     */
    final Kernel[] gemmBf16Sm90;

    Kernels(CudaContext context) {
        try {
            CudaModule e = load(context, "elementwise.ptx");
            add = e.kernel("add_f32", 4);
            mul = e.kernel("mul_f32", 4);
            scale = e.kernel("scale_f32", 4);
            axpy = e.kernel("axpy_f32", 4);
            silu = e.kernel("silu_f32", 3);
            siluBackward = e.kernel("silu_backward_f32", 4);
            swiglu = e.kernel("swiglu_f32", 4);
            swigluBackward = e.kernel("swiglu_backward_f32", 6);
            convert = e.kernel("convert", 5);
            gather = e.kernel("gather_strided", 11);
            adamw = e.kernel("adamw_f32", 13);
            CudaModule r = load(context, "reduce.ptx");
            reducePartial = r.kernel("reduce_partial", 5);
            reduceFinal = r.kernel("reduce_final", 4);
            CudaModule rows = load(context, "rows.ptx");
            softmax = rows.kernel("softmax_f32", 5);
            softmaxBackward = rows.kernel("softmax_backward_f32", 5);
            rmsNorm = rows.kernel("rmsnorm_f32", 7);
            rmsNormBackward = rows.kernel("rmsnorm_backward_f32", 7);
            rmsNormDweightPartial = rows.kernel("rmsnorm_dweight_partial", 7);
            rmsNormDweightFinal = rows.kernel("rmsnorm_dweight_final", 4);
            rope = rows.kernel("rope_f32", 8);
            crossEntropy = load(context, "loss.ptx").kernel("cross_entropy_f32", 7);
            CudaModule emb = load(context, "embedding.ptx");
            embedding = emb.kernel("embedding_f32", 7);
            embeddingBackward = emb.kernel("embedding_backward_f32", 7);
            CudaModule g = load(context, "gemm.ptx");
            gemmSplitKReduce = g.kernel("gemm_splitk_reduce", 8);
            String[] layouts = {"nn", "nt", "tn", "tt"};
            for (int i = 0; i < 4; i++) {
                gemmF32[i] = g.kernel("gemm_f32_" + layouts[i], 14);
                gemmBf16Aligned[i] = g.kernel("gemm_bf16_" + layouts[i] + "_a", 14).allowSharedMemory(GEMM_BF16_SHARED_BYTES);
                gemmBf16Any[i] = g.kernel("gemm_bf16_" + layouts[i] + "_u", 14).allowSharedMemory(GEMM_BF16_SHARED_BYTES);
            }
            if (context.computeCapability() == 90) {
                CudaModule h = load(context, "gemm_sm90.ptx");
                gemmBf16Sm90 = new Kernel[4];
                for (int i = 0; i < 4; i++) {
                    gemmBf16Sm90[i] = h.kernel("gemm_bf16_" + layouts[i] + "_sm90", 14)
                            .allowSharedMemory(GEMM_SM90_SHARED_BYTES);
                }
            } else {
                gemmBf16Sm90 = null;
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private CudaModule load(CudaContext context, String file) {
        CudaModule m = CudaModule.loadResource(context, file);
        modules.add(m);
        return m;
    }

    @Override
    public void close() {
        for (CudaModule m : modules) {
            m.close();
        }
        modules.clear();
    }
}
