package jtune.engine.model;

/**
 * The shape of a LLaMA-family model. {@code headDim} is usually {@code dim / heads} (Qwen3 sets it apart).
 * {@code ropeScaling} is null or Llama 3's frequency scaling. {@code qkvBias}: q/k/v projections carry a bias
 * (Qwen2). {@code qkNorm}: RMSNorm over each head of q and k before RoPE (Qwen3).
 */
public record LlamaConfig(int dim, int hiddenDim, int layers, int heads, int kvHeads, int headDim, int vocab,
                          int maxSeq, double ropeTheta, RopeScaling ropeScaling, float normEps,
                          boolean tiedEmbeddings, boolean qkvBias, boolean qkNorm) {

    /** Llama 3.1's rope_scaling (rope_type "llama3"). */
    public record RopeScaling(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPosition) {
    }

    public LlamaConfig {
        require(dim > 0 && hiddenDim > 0 && layers > 0 && heads > 0 && kvHeads > 0 && headDim > 0 && vocab > 0
                && maxSeq > 0, "every size must be positive");
        require(heads % kvHeads == 0, "heads (" + heads + ") must be a multiple of kv heads (" + kvHeads + ")");
        require(headDim % 2 == 0, "head dimension (" + headDim + ") must be even for RoPE");
        require(ropeTheta > 0 && ropeTheta < Double.POSITIVE_INFINITY, "rope theta must be positive and finite");
        require(normEps > 0 && normEps < Float.POSITIVE_INFINITY, "norm eps must be positive and finite");
    }

    private static void require(boolean ok, String what) {
        if (!ok) {
            throw new IllegalArgumentException("model config: " + what);
        }
    }

    /** A plain LLaMA: no bias, no q/k norm, head dim = dim / heads, theta 10000, eps 1e-5. */
    public static LlamaConfig llama(int dim, int hiddenDim, int layers, int heads, int kvHeads, int vocab, int maxSeq,
                                    boolean tied) {
        if (dim % heads != 0) {
            throw new IllegalArgumentException("model config: dim (" + dim + ") must be a multiple of heads (" + heads + ")");
        }
        return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, dim / heads, vocab, maxSeq, 10000.0, null, 1e-5f,
                tied, false, false);
    }

    /** The LLaMA-60M of the GaLore/ReLoRA pre-training testbed: untied, eps 1e-6. */
    public static LlamaConfig llama60m() {
        return new LlamaConfig(512, 1376, 8, 8, 8, 64, 32000, 1024, 10000.0, null, 1e-6f, false, false, false);
    }

    /**
     * The model's weights counted as elements of the dense model, whatever their storage: embeddings, each block's
     * projections (with q/k/v biases and q/k norms where configured) and norms, the final norm and an untied head.
     */
    public long parameterCount() {
        long d = dim, q = qDim(), kv = kvDim();
        long block = d * q + 2 * d * kv + q * d + 3 * d * hiddenDim + 2 * d
                + (qkvBias ? q + 2 * kv : 0) + (qkNorm ? 2L * headDim : 0);
        return (long) vocab * d * (tiedEmbeddings ? 1 : 2) + layers * block + d;
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }
}
