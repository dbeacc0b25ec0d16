package jtune.engine.train;

import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.model.CausalLM;
import jtune.engine.model.LlamaConfig;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * A tiny causal LM for the trainer's tests, with real gradients: {@code logits[n] = table[token[n]] + bias}.
 * The table (V, V) takes weight decay; the bias (1, V) does not, like a norm. {@code afterForward} runs after
 * every forwardBackward (tests use it to stop a run at a chosen step).
 */
final class BigramLM implements CausalLM {
    private final Session s;
    private final LlamaConfig config;
    private final Parameter table;
    private final Parameter bias;
    Runnable afterForward = () -> { };

    BigramLM(Session s, int vocab, int maxSeq, long seed) {
        this.s = s;
        this.config = LlamaConfig.llama(8, 8, 1, 1, 1, vocab, maxSeq, true);
        SplittableRandom rng = new SplittableRandom(seed);
        float[] w = new float[vocab * vocab];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (0.02 * rng.nextGaussian());
        }
        this.table = new Parameter("bigram.weight",
                s.f32("bigram.weight", Category.TRAINABLE_PARAMETERS, vocab, vocab).copyFrom(w), true, true);
        this.bias = new Parameter("bigram.bias", s.f32("bigram.bias", Category.TRAINABLE_PARAMETERS, 1, vocab), true, false);
    }

    @Override
    public LlamaConfig config() {
        return config;
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(table, bias);
    }

    /** Logits (N, V) into a new activation tensor; the caller closes it. */
    private Tensor forward(Tensor ids, Tensor ones) {
        long n = ids.size();
        Tensor logits = s.f32("logits", Category.ACTIVATIONS, n, config.vocab());
        s.backend().embedding(table.value(), ids, logits);
        s.backend().matmul(ones, false, bias.value(), false, logits, 1f, 1f);
        return logits;
    }

    private static int valid(Tensor targets) {
        int c = 0;
        for (float t : targets.toFloatArray()) {
            c += t >= 0 ? 1 : 0;
        }
        return c;
    }

    @Override
    public float forwardBackward(Tensor tokens, Tensor targets, float gradScale) {
        long n = tokens.size();
        Tensor ids = tokens.reshape(n), tg = targets.reshape(n);
        int count = valid(tg);
        try (Tensor ones = s.f32("ones", Category.WORKSPACE, n, 1); Tensor logits = forward(ids, fill(ones))) {
            float sum = s.backend().crossEntropy(logits, tg, logits, gradScale / count);
            s.backend().embeddingBackward(logits, ids, table.grad(s));
            s.backend().matmul(ones, true, logits, false, bias.grad(s), 1f, 1f);
            afterForward.run();
            return sum / count;
        }
    }

    private Tensor fill(Tensor ones) {
        s.backend().fill(ones, 1f);
        return ones;
    }

    @Override
    public float loss(Tensor tokens, Tensor targets) {
        long n = tokens.size();
        Tensor ids = tokens.reshape(n), tg = targets.reshape(n);
        try (Tensor ones = s.f32("ones", Category.WORKSPACE, n, 1); Tensor logits = forward(ids, fill(ones))) {
            return s.backend().crossEntropy(logits, tg, null, 1f) / valid(tg);
        }
    }

    @Override
    public void logits(Tensor tokens, Tensor out) {
        long n = tokens.size();
        try (Tensor ones = s.f32("ones", Category.WORKSPACE, n, 1); Tensor logits = forward(tokens.reshape(n), fill(ones))) {
            s.backend().copy(logits, out);
        }
    }

    @Override
    public void close() {
        table.close();
        bias.close();
    }
}
