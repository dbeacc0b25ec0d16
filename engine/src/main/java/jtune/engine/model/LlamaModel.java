package jtune.engine.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import jtune.engine.backend.Backend;
import jtune.engine.backend.Checks;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.Linear;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.RmsNorm;
import jtune.engine.nn.Rotary;
import jtune.engine.nn.SelfAttention;
import jtune.engine.nn.Session;
import jtune.engine.nn.SwiGluMlp;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;

/**
 * The LLaMA family (LLaMA 1-3, Qwen2 with q/k/v bias, Qwen3 with q/k norm) as a {@link CausalLM}, with layer-level
 * backward: each layer's forward returns the activations its backward needs (under {@link Category#ACTIVATIONS}), and
 * backward frees them as it goes. Every linear layer's weight is made dense and handed to the {@link WeightTransform}
 * (seam 1); a tied output head reuses the embedding matrix as it is.
 *
 * <p>With checkpointing a block keeps only its input: its forward runs again, saving, just before its backward.
 * The output head and the loss run over row chunks of at most 2^24 logits (64 MiB), so that a large
 * vocabulary never needs the whole (B·T, V) matrix at once.
 */
public final class LlamaModel implements CausalLM {
    /** Most logits (rows · vocabulary) the head computes at once: 64 MiB of f32. */
    static final long LOGITS_CHUNK = 1L << 24;

    private final Session session;
    private final LlamaConfig config;
    private final Parameter embedding;
    private final List<LlamaBlock> blocks;
    private final RmsNorm finalNorm;
    private final LinearWeight head;
    private final Rotary rotary;
    private final boolean checkpointing;
    private final List<Parameter> parameters;

    private LlamaModel(Session session, LlamaConfig config, Parameter embedding, List<LlamaBlock> blocks,
                       RmsNorm finalNorm, LinearWeight head, Rotary rotary, boolean checkpointing) {
        this.session = session;
        this.config = config;
        this.embedding = embedding;
        this.blocks = blocks;
        this.finalNorm = finalNorm;
        this.head = head;
        this.rotary = rotary;
        this.checkpointing = checkpointing;
        List<Parameter> all = new ArrayList<>();
        all.add(embedding);
        blocks.forEach(b -> all.addAll(b.parameters()));
        all.add(finalNorm.weight());
        if (!config.tiedEmbeddings()) {
            all.addAll(head.parameters());
        }
        this.parameters = Collections.unmodifiableList(all);
    }

    /**
     * A model initialised as Hugging Face does: linear weights and the embedding drawn from normal(0, 0.02), in
     * {@link #parameters()} order from {@code SplittableRandom(seed)}; norms 1; biases 0. Every parameter is
     * trainable.
     */
    public static LlamaModel create(Session s, LlamaConfig c, long seed, WeightTransform t, boolean checkpointing) {
        return create(s, c, WeightSource.random(seed), true, t, checkpointing);
    }

    /**
     * A model whose tensors come from {@code source}, requested in {@link #parameters()} order. Trainable
     * parameters are recorded under {@link Category#TRAINABLE_PARAMETERS}; with {@code trainable} false every
     * parameter is frozen ({@link Category#FROZEN_WEIGHTS}, no gradients), as for evaluation and generation.
     */
    public static LlamaModel create(Session s, LlamaConfig c, WeightSource source, boolean trainable,
                                    WeightTransform t, boolean checkpointing) {
        Init init = new Init(s, source, trainable, t);
        Parameter embedding = init.parameter("model.embed_tokens.weight", WeightSource.Init.NORMAL, true, c.vocab(), c.dim());
        float[] invFreq = Rotary.inverseFrequencies(c.headDim(), c.ropeTheta());
        if (c.ropeScaling() != null) {
            LlamaConfig.RopeScaling r = c.ropeScaling();
            invFreq = Rotary.llama3Scaling(invFreq, r.factor(), r.lowFreqFactor(), r.highFreqFactor(), r.originalMaxPosition());
        }
        Rotary rotary = new Rotary(invFreq);
        List<LlamaBlock> blocks = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            String p = "model.layers." + i + ".";
            Linear q = init.linear(p + "self_attn.q_proj", c.qDim(), c.dim(), c.qkvBias());
            Linear k = init.linear(p + "self_attn.k_proj", c.kvDim(), c.dim(), c.qkvBias());
            Linear v = init.linear(p + "self_attn.v_proj", c.kvDim(), c.dim(), c.qkvBias());
            Linear o = init.linear(p + "self_attn.o_proj", c.dim(), c.qDim(), false);
            RmsNorm qNorm = c.qkNorm() ? init.norm(p + "self_attn.q_norm.weight", c.headDim(), c.normEps()) : null;
            RmsNorm kNorm = c.qkNorm() ? init.norm(p + "self_attn.k_norm.weight", c.headDim(), c.normEps()) : null;
            SelfAttention attention = new SelfAttention(q, k, v, o, qNorm, kNorm, rotary, c.heads(), c.kvHeads(), c.headDim());
            Linear gate = init.linear(p + "mlp.gate_proj", c.hiddenDim(), c.dim(), false);
            Linear up = init.linear(p + "mlp.up_proj", c.hiddenDim(), c.dim(), false);
            Linear down = init.linear(p + "mlp.down_proj", c.dim(), c.hiddenDim(), false);
            RmsNorm inputNorm = init.norm(p + "input_layernorm.weight", c.dim(), c.normEps());
            RmsNorm postNorm = init.norm(p + "post_attention_layernorm.weight", c.dim(), c.normEps());
            blocks.add(new LlamaBlock(inputNorm, attention, postNorm, new SwiGluMlp(gate, up, down)));
        }
        RmsNorm finalNorm = init.norm("model.norm.weight", c.dim(), c.normEps());
        LinearWeight head = c.tiedEmbeddings() ? new DenseWeight(embedding) : init.weight("lm_head", c.vocab(), c.dim());
        return new LlamaModel(s, c, embedding, List.copyOf(blocks), finalNorm, head, rotary, checkpointing);
    }

    /** Makes the parameters of a new model from a {@link WeightSource}, in creation order. */
    private record Init(Session s, WeightSource source, boolean trainable, WeightTransform transform) {
        Parameter parameter(String name, WeightSource.Init kind, boolean decay, long... dims) {
            Category category = trainable ? Category.TRAINABLE_PARAMETERS : Category.FROZEN_WEIGHTS;
            return new Parameter(name, source.tensor(s, name, kind, category, dims), trainable, decay);
        }

        RmsNorm norm(String name, long n, float eps) {
            return new RmsNorm(parameter(name, WeightSource.Init.ONES, false, n), eps);
        }

        LinearWeight weight(String layer, long out, long in) {
            return transform.apply(s, layer, new DenseWeight(parameter(layer + ".weight", WeightSource.Init.NORMAL, true, out, in)));
        }

        Linear linear(String layer, long out, long in, boolean bias) {
            LinearWeight w = weight(layer, out, in);
            Parameter b = bias ? parameter(layer + ".bias", WeightSource.Init.ZEROS, false, out) : null;
            return new Linear(w, b);
        }
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    @Override
    public List<Parameter> parameters() {
        return parameters;
    }

    public boolean checkpointing() {
        return checkpointing;
    }

    /**
     * Mean cross-entropy over the targets ≥ 0 (0, with no gradient, when every target is ignored); gradients of
     * {@code gradScale · loss} are added to every trainable parameter.
     */
    @Override
    public float forwardBackward(Tensor tokens, Tensor targets, float gradScale) {
        Session s = session;
        Backend be = s.backend();
        int batch = batch(tokens, targets), seq = Math.toIntExact(tokens.dim(1));
        long n = (long) batch * seq, d = config.dim();
        Tensor ids = tokens.reshape(n), tg = targets.reshape(n);
        long count = counted(tg);
        int layers = blocks.size();
        Tensor[] res = new Tensor[layers + 1];
        LlamaBlock.Saved[] saved = new LlamaBlock.Saved[layers];
        Tensor rstd = null, xn = null, dxn = null, dres = null;
        try {
            res[0] = s.f32("residual.0", Category.ACTIVATIONS, n, d);
            be.embedding(embedding.value(), ids, res[0]);
            for (int l = 0; l < layers; l++) {
                res[l + 1] = s.f32("residual." + (l + 1), Category.ACTIVATIONS, n, d);
                saved[l] = blocks.get(l).forward(s, res[l], batch, seq, res[l + 1],
                        checkpointing ? Category.WORKSPACE : Category.ACTIVATIONS);
                if (checkpointing) {
                    saved[l].close();
                    saved[l] = null;
                }
            }
            rstd = s.f32("final.rstd", Category.ACTIVATIONS, n);
            xn = s.f32("final.xn", Category.ACTIVATIONS, n, d);
            finalNorm.forward(s, res[layers], xn, rstd);
            dxn = s.f32("final.dxn", Category.WORKSPACE, n, d);
            double total = head(xn, tg, dxn, count == 0 ? 0f : gradScale / count);
            xn.close();
            dres = s.f32("residual.grad", Category.WORKSPACE, n, d);
            finalNorm.backward(s, res[layers], rstd, dxn, dres);
            dxn.close();
            rstd.close();
            res[layers].close();
            for (int l = layers - 1; l >= 0; l--) {
                if (checkpointing) {
                    try (Tensor out = s.f32("block.recomputed", Category.WORKSPACE, n, d)) {
                        saved[l] = blocks.get(l).forward(s, res[l], batch, seq, out, Category.ACTIVATIONS);
                    }
                }
                blocks.get(l).backward(s, saved[l], dres);
                saved[l].close();
                res[l].close();
            }
            if (embedding.trainable()) {
                be.embeddingBackward(dres, ids, embedding.grad(s));
            }
            return count == 0 ? 0f : (float) (total / count);
        } finally {
            for (LlamaBlock.Saved sv : saved) {
                if (sv != null) {
                    sv.close();
                }
            }
            for (Tensor t : res) {
                close(t);
            }
            close(rstd);
            close(xn);
            close(dxn);
            close(dres);
        }
    }

    /** Mean cross-entropy over the targets ≥ 0 (0 when every target is ignored), forward only. */
    @Override
    public float loss(Tensor tokens, Tensor targets) {
        int batch = batch(tokens, targets);
        long n = (long) batch * tokens.dim(1);
        Tensor tg = targets.reshape(n);
        long count = counted(tg);
        try (Tensor xn = normalizedOutput(tokens)) {
            double total = head(xn, tg, null, 0f);
            return count == 0 ? 0f : (float) (total / count);
        }
    }

    @Override
    public void logits(Tensor tokens, Tensor out) {
        batch(tokens, tokens);
        Checks.f32("logits", out);
        Checks.shape("logits", out, tokens.size(), config.vocab());
        try (Tensor xn = normalizedOutput(tokens)) {
            head.forward(session, xn, out);
        }
    }

    /** An empty key/value cache for {@code capacity} positions of one sequence (at most {@link LlamaConfig#maxSeq}). */
    public KvCache kvCache(int capacity) {
        return new KvCache(session, config, capacity);
    }

    /**
     * Forward only over new tokens of one sequence, with a key/value cache: tokens (T) int32 are positions
     * start..start+T-1, each attending to itself and every earlier position; those before start are read from the
     * cache, whose filled positions must reach start (a smaller start overwrites from there on). Their keys and values
     * are added to the cache (its length becomes start + T) and lastLogits (V) receives the logits of position
     * start+T-1, the same as {@link #logits} over the whole sequence gives there. Prefill a prompt with start 0, then
     * feed one token at a time. A sequence longer than the cache's capacity fails with an
     * {@link IllegalArgumentException}.
     */
    public void forwardCached(Tensor tokens, int start, KvCache cache, Tensor lastLogits) {
        Checks.typed("model", tokens, DType.I32);
        Checks.rank("model", tokens, 1, "(T)");
        Checks.f32("logits", lastLogits);
        Checks.shape("logits", lastLogits, config.vocab());
        if (cache.layers() != blocks.size()) {
            throw new IllegalArgumentException("model: the kv cache has " + cache.layers() + " layers, the model "
                    + blocks.size());
        }
        int t = Math.toIntExact(tokens.dim(0));
        cache.checkAppend(start, t);
        cache.filledTo(start);
        Session s = session;
        long d = config.dim();
        Tensor x = s.f32("residual", Category.WORKSPACE, t, d), out = null;
        try {
            s.backend().embedding(embedding.value(), tokens, x);
            for (int l = 0; l < blocks.size(); l++) {
                out = s.f32("residual", Category.WORKSPACE, t, d);
                blocks.get(l).forwardCached(s, x, start, cache.keys(l), cache.values(l), out);
                x.close();
                x = out;
                out = null;
            }
            cache.filledTo(start + t);
            try (Tensor rstd = s.f32("final.rstd", Category.WORKSPACE, 1);
                 Tensor xn = s.f32("final.xn", Category.WORKSPACE, 1, d)) {
                finalNorm.forward(s, x.slice(0, t - 1, t), xn, rstd);
                head.forward(s, xn, lastLogits.reshape(1, config.vocab()));
            }
        } finally {
            x.close();
            close(out);
        }
    }

    /** The final norm's output (B·T, D) for tokens, forward only (workspace; the caller closes it). */
    private Tensor normalizedOutput(Tensor tokens) {
        Session s = session;
        int batch = Math.toIntExact(tokens.dim(0)), seq = Math.toIntExact(tokens.dim(1));
        long n = (long) batch * seq, d = config.dim();
        Tensor x = s.f32("residual", Category.WORKSPACE, n, d), out = null;
        try {
            s.backend().embedding(embedding.value(), tokens.reshape(n), x);
            for (LlamaBlock block : blocks) {
                out = s.f32("residual", Category.WORKSPACE, n, d);
                block.forward(s, x, batch, seq, out, Category.WORKSPACE).close();
                x.close();
                x = out;
                out = null;
            }
            try (Tensor rstd = s.f32("final.rstd", Category.WORKSPACE, n)) {
                Tensor xn = s.f32("final.xn", Category.WORKSPACE, n, d);
                finalNorm.forward(s, x, xn, rstd);
                return xn;
            }
        } finally {
            x.close();
            close(out);
        }
    }

    /**
     * Output head and cross-entropy over row chunks of xn (N, D); returns the summed loss. With dxn not null, also
     * writes dxn and adds the head's gradients, for a loss scaled by {@code lossScale} per counted row.
     */
    private double head(Tensor xn, Tensor targets, Tensor dxn, float lossScale) {
        Session s = session;
        long n = xn.dim(0), v = config.vocab();
        long chunks = Math.ceilDiv(n * v, LOGITS_CHUNK);
        long rows = Math.ceilDiv(n, chunks);
        double total = 0;
        try (Tensor logits = s.f32("logits", Category.WORKSPACE, rows, v)) {
            for (long r0 = 0; r0 < n; r0 += rows) {
                long r1 = Math.min(n, r0 + rows);
                Tensor lg = logits.slice(0, 0, r1 - r0), x = xn.slice(0, r0, r1);
                head.forward(s, x, lg);
                total += s.backend().crossEntropy(lg, targets.slice(0, r0, r1), dxn == null ? null : lg, lossScale);
                if (dxn != null) {
                    head.backward(s, x, lg, dxn.slice(0, r0, r1));
                }
            }
        }
        return total;
    }

    /** Checks tokens and targets (B, T) int32 of one shape with T within the model's positions; returns B. */
    private int batch(Tensor tokens, Tensor targets) {
        for (Tensor t : new Tensor[]{tokens, targets}) {
            Checks.typed("model", t, DType.I32);
            Checks.rank("model", t, 2, "(B, T)");
        }
        if (!tokens.shape().equals(targets.shape())) {
            throw new IllegalArgumentException("model: tokens " + tokens.shape() + " and targets " + targets.shape()
                    + " must have the same (B, T) shape");
        }
        if (tokens.dim(1) > config.maxSeq()) {
            throw new IllegalArgumentException("model: sequence length " + tokens.dim(1) + " exceeds the model's "
                    + config.maxSeq() + " positions");
        }
        return Math.toIntExact(tokens.dim(0));
    }

    /** Number of targets ≥ 0. */
    private static long counted(Tensor targets) {
        long count = 0;
        for (float t : targets.toFloatArray()) {
            if (t >= 0) {
                count++;
            }
        }
        return count;
    }

    private static void close(Tensor t) {
        if (t != null) {
            t.close();
        }
    }

    @Override
    public void close() {
        blocks.forEach(LlamaBlock::close);
        embedding.close();
        finalNorm.weight().close();
        if (!config.tiedEmbeddings()) {
            head.close();
        }
        rotary.close();
    }
}
