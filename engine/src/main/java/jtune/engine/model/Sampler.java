package jtune.engine.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.random.RandomGenerator;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Text generation from a {@link CausalLM}. Each new token is drawn from the logits of the last position, which
 * come from running {@link CausalLM#logits} over the whole sequence so far, cropped to its last
 * {@code maxSeq} tokens (no key/value cache: it serves any {@link CausalLM}; {@link Generator} is the cached,
 * streaming path of a {@link LlamaModel}). Tokens are drawn as {@link Sampling} says, with temperature and top-k
 * (0: all tokens) and no nucleus.
 */
public final class Sampler implements AutoCloseable {
    private final CausalLM model;
    private final int maxSeq;
    private final int vocab;
    private final Tensor tokens;
    private final Tensor logits;

    /** Allocates the token buffer (maxSeq) and the logits (maxSeq, vocab) under workspace. */
    public Sampler(Session s, CausalLM model) {
        this.model = model;
        this.maxSeq = model.config().maxSeq();
        this.vocab = model.config().vocab();
        this.tokens = s.i32("sampler.tokens", Category.WORKSPACE, maxSeq);
        this.logits = s.f32("sampler.logits", Category.WORKSPACE, maxSeq, vocab);
    }

    /** {@code count} new tokens after {@code prompt} (which must not be empty), drawn with {@code rng}. */
    public int[] generate(int[] prompt, int count, float temperature, int topK, RandomGenerator rng) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("sampler: the prompt must hold at least one token");
        }
        if (count < 0 || !(temperature >= 0) || topK < 0) {
            throw new IllegalArgumentException("sampler: count (" + count + ") and top-k (" + topK
                    + ") must not be negative and the temperature (" + temperature + ") must be 0 or more");
        }
        int[] seq = Arrays.copyOf(prompt, prompt.length + count);
        float[] last = new float[vocab];
        MemorySegment tok = tokens.segment();
        MemorySegment out = logits.segment();
        for (int n = prompt.length; n < seq.length; n++) {
            int start = Math.max(0, n - maxSeq);
            int t = n - start;
            for (int i = 0; i < t; i++) {
                tok.setAtIndex(ValueLayout.JAVA_INT, tokens.offset() + i, seq[start + i]);
            }
            model.logits(tokens.slice(0, 0, t).reshape(1, t), logits.slice(0, 0, t));
            MemorySegment.copy(out, ValueLayout.JAVA_FLOAT, logits.byteOffset() + (long) (t - 1) * vocab * Float.BYTES,
                    last, 0, vocab);
            seq[n] = pick(last, temperature, topK, rng);
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }

    /** One token from one row of logits: {@link Sampling} with this temperature and top-k, no nucleus. */
    static int pick(float[] logits, float temperature, int topK, RandomGenerator rng) {
        return new Sampling(temperature, 1f, topK).pick(logits, rng);
    }

    @Override
    public void close() {
        tokens.close();
        logits.close();
    }
}
