package jtune.engine.backend;

import jtune.engine.tensor.Device;
import jtune.engine.tensor.DeviceMemory;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/**
 * The operations LLaMA training needs, forward and backward, on tensors of one {@link Device}. Model,
 * layer, method and optimizer code calls these and nothing lower. Every implementation is tested against
 * {@link ScalarBackend}, the oracle.
 *
 * <p>Conventions: outputs are written, never allocated; an output may alias an input only where the method
 * says so. Unless a method says otherwise its tensors are f32 and contiguous, and shapes must agree
 * exactly: a mismatch throws {@link IllegalArgumentException} naming the tensors and their shapes.
 */
public interface Backend extends AutoCloseable {

    /** Short name: "scalar", "cpu-simd", "cuda". */
    String name();

    Device device();

    /** Width of the vectors the kernels use, in bits; 32 for a backend that works one lane at a time. */
    int vectorBits();

    /** Threads the kernels use, the caller included. */
    int threads();

    /** One line: name, vector width, threads ("cpu-simd, 512-bit vectors, 2 threads"). */
    default String describe() {
        return name() + ", " + vectorBits() + "-bit vectors, " + threads() + (threads() == 1 ? " thread" : " threads");
    }

    // ---- matrix products --------------------------------------------------------------------------

    /**
     * {@code C = alpha · op(A) · op(B) + beta · C}, where {@code op(X)} is X or Xᵀ. Rank 2: op(A) is (M, K),
     * op(B) is (K, N), C is (M, N). Rank 3: the same for each of a batch of matrices (the first dimension,
     * equal in all three). Each matrix must have unit stride in its last dimension; its row stride and batch
     * stride are free, so slices of a wider matrix work. With {@code beta == 0} C is not read (NaNs in it do
     * not propagate). C must not alias A or B. A and B are f32; a backend with bf16 tensor cores (cuda) also takes
     * both in bf16, C still f32, with the products accumulated in f32.
     */
    void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta);

    // ---- quantized weights ------------------------------------------------------------------------

    /**
     * {@code y = alpha · x · dequant(W)ᵀ + beta · y}: x is (N, cols), y is (N, rows). N = 1 is the matrix-vector
     * product of decoding. With {@code beta == 0} y is not read (NaNs in it do not propagate).
     *
     * <p>For this and the other quantized operations: W is a {@link QuantizedMatrix} (rows, cols) and
     * {@code dequant(W)[i, j]} is {@link QuantizedMatrix#weight}, the f32 value {@code s · (q − z)} or
     * {@code NF4[q] · absmax}. Implementations never hold the whole f32 matrix: they dequantize tiles or stream the
     * codes. Activations are f32, contiguous and rank 2; an output must not share storage with an input.
     */
    void quantMatmul(Tensor x, QuantizedMatrix w, Tensor y, float alpha, float beta);

    /**
     * {@code dx = alpha · dy · dequant(W) + beta · dx}, the input gradient of {@link #quantMatmul}: dy is (N, rows),
     * dx is (N, cols). With {@code beta == 0} dx is not read.
     */
    void quantMatmulInputGrad(Tensor dy, QuantizedMatrix w, Tensor dx, float alpha, float beta);

    /** {@code out = dequant(W)}, out f32 (rows, cols): exactly the f32 values of {@link QuantizedMatrix#weight}. */
    void dequantize(QuantizedMatrix w, Tensor out);

    /**
     * The gradient of the scales of an integer-format W (PEQA), accumulated:
     * {@code dScales[i, k] += Σ_t dy[t, i] · Σ_{j in group k} (q_ij − z_ik) · x[t, j]}, x (N, cols), dy (N, rows),
     * dScales f32 (rows, groups) whatever the scales' storage type. NF4 formats fail.
     */
    void quantScaleGrad(Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales);

    // ---- element-wise -----------------------------------------------------------------------------

    /** {@code out = a + b}. out may alias a or b. */
    void add(Tensor a, Tensor b, Tensor out);

    /** {@code out = a ⊙ b}. out may alias a or b. */
    void mul(Tensor a, Tensor b, Tensor out);

    /** {@code out = s · x}. out may alias x. */
    void scale(Tensor x, float s, Tensor out);

    /** {@code y = y + alpha · x}. */
    void axpy(float alpha, Tensor x, Tensor y);

    /** Every element of {@code x} set to {@code value}. */
    void fill(Tensor x, float value);

    /** {@code dst = src}, same shape and type; src may be strided, dst must be contiguous. */
    void copy(Tensor src, Tensor dst);

    /**
     * {@code dst = src} converted between f32, bf16 and f16 (same shape, both contiguous). Narrowing rounds to
     * nearest even; NaN stays NaN, infinities stay infinite.
     */
    void convert(Tensor src, Tensor dst);

    // ---- reductions over a whole tensor (contiguous, f32) ------------------------------------------

    /** Σ x. */
    float sum(Tensor x);

    /** max x; NaN if any element is NaN; fails on an empty tensor. */
    float max(Tensor x);

    /** Σ x² (the squared L2 norm; the global-norm clipping of the trainer sums these). */
    float sumOfSquares(Tensor x);

    /** Σ a ⊙ b. */
    float dot(Tensor a, Tensor b);

    // ---- rows -------------------------------------------------------------------------------------

    /**
     * Softmax of each row of x (the last dimension). With {@code causal}, x is (..., T, S) with S ≥ T and row t
     * of each (T, S) matrix attends to columns {@code j ≤ t + S − T} only: the others come out exactly 0.
     * out may alias x.
     */
    void softmax(Tensor x, Tensor out, boolean causal);

    /** Backward of a row softmax: {@code dx = y ⊙ (dy − Σ_row dy ⊙ y)}. dx may alias dy. */
    void softmaxBackward(Tensor y, Tensor dy, Tensor dx);

    /**
     * RMSNorm of each row of x (N, D): {@code out = x · rstd · w}, {@code rstd = 1 / sqrt(mean(x²) + eps)}.
     * weight is (D); rstd (N) receives the per-row factor for the backward pass. out may alias x.
     */
    void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd);

    /**
     * Backward of {@link #rmsNorm}: with {@code x̂ = x · rstd}, {@code g = dy ⊙ w},
     * {@code dx = rstd · (g − x̂ · mean(g ⊙ x̂))} (row-wise) and {@code dweight += Σ_rows dy ⊙ x̂}.
     */
    void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight);

    /**
     * Rotary position embedding in place, rotate-half pairing (element i with i + D/2, as in Hugging Face
     * LLaMA): for each position t, head h and i &lt; D/2,
     * {@code (x1, x2) ← (x1·cos − x2·sin, x1·sin + x2·cos)} with {@code cos = cos[t, i]}, {@code sin = sin[t, i]}.
     * x is (T, H, D) or (B, T, H, D); cos and sin are (T, D/2). {@code inverse} rotates by the negative angle,
     * which is the backward pass.
     */
    void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse);

    /** {@code out = x · σ(x)}. out may alias x. */
    void silu(Tensor x, Tensor out);

    /** Backward of {@link #silu}: {@code dx = dy · σ(x) · (1 + x · (1 − σ(x)))}. dx may alias dy. */
    void siluBackward(Tensor x, Tensor dy, Tensor dx);

    /** {@code out = silu(gate) ⊙ up}. */
    void swiglu(Tensor gate, Tensor up, Tensor out);

    /** Backward of {@link #swiglu}: {@code dup = dout ⊙ silu(gate)}, {@code dgate = dout ⊙ up ⊙ silu'(gate)}. */
    void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup);

    /**
     * Cross-entropy of logits (N, V) against int32 targets (N), fused with its gradient. A negative target
     * marks a row to ignore. Returns the sum of {@code logsumexp(row) − row[target]} over the rows not ignored.
     * If dlogits (N, V) is not null it receives {@code gradScale · (softmax(row) − onehot(target))}, and 0 on
     * ignored rows. dlogits may alias logits. A target ≥ V fails.
     */
    float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale);

    /** Gather: {@code out[n, :] = table[ids[n], :]}; table (V, D), ids int32 (N), out (N, D). An id outside [0, V) fails. */
    void embedding(Tensor table, Tensor ids, Tensor out);

    /** Scatter-add, the backward of {@link #embedding}: {@code dtable[ids[n], :] += dout[n, :]}. */
    void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable);

    // ---- optimizer --------------------------------------------------------------------------------

    /**
     * One AdamW step (Loshchilov and Hutter; PyTorch's formulation), element-wise over param, grad, m, v:
     * {@code m = β1·m + (1−β1)·g}, {@code v = β2·v + (1−β2)·g²}, {@code p = p·(1 − lr·wd)},
     * {@code p = p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + eps)}.
     */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep step);

    // ---- device -----------------------------------------------------------------------------------

    /**
     * The memory of the device this backend computes on, for a {@link jtune.engine.tensor.MemoryPool} whose
     * tensors it takes; null for a backend that computes on host tensors.
     */
    default DeviceMemory memory() {
        return null;
    }

    /**
     * The ledger of memory this backend holds for itself, outside any pool (a GPU backend's reduction partials and the
     * partial products of a GEMM split along K), or null for a backend that holds none: a run shows it beside its
     * pool's ledger, so that every byte is counted.
     */
    default MemoryLedger workspaceLedger() {
        return null;
    }

    /**
     * Waits until every operation queued so far has completed. A backend whose operations finish before they
     * return (every CPU backend) returns at once; a GPU backend queues work, and timings need this.
     */
    default void synchronize() {
    }

    /** Releases threads and device resources. */
    @Override
    void close();
}
