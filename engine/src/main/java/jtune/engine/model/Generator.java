package jtune.engine.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.IntConsumer;
import java.util.random.RandomGenerator;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Streaming text generation from a {@link LlamaModel} with a key/value cache: the prompt is run once (in chunks of
 * {@link #PREFILL_CHUNK} positions), then each new token costs one single-position forward. Token i+1 is drawn by
 * {@link Sampling} from the logits after token i; every drawn token is handed to a listener as it comes. Generation
 * ends after {@code steps} new tokens, at a stop token (which is neither handed on nor returned), or when the
 * sequence fills the model's {@link LlamaConfig#maxSeq} positions: the token drawn from the last position's logits
 * is the last one (no window slides).
 *
 * <p>With a prompt of one beginning-of-sequence token this is llama2.c's {@code run -n steps}: position p is fed
 * token p and the token drawn there is printed, for positions 0..steps-1.
 */
public final class Generator implements AutoCloseable {
    /** Most positions one prefill forward takes, so that its (heads, T, T) attention scores stay small. */
    static final int PREFILL_CHUNK = 256;

    /** Why generation ended. */
    public enum Stop {
        /** {@code steps} tokens were drawn. */
        STEPS,
        /** A stop token was drawn. */
        STOP_TOKEN,
        /** The sequence filled the model's positions. */
        LENGTH
    }

    /**
     * The new tokens (no stop token), why generation ended, and the time spent running the prompt (prefill) and
     * drawing the new tokens after it (decode: every single-position forward and every draw).
     */
    public record Result(int[] tokens, Stop stop, int promptTokens, long prefillNanos, long decodeNanos) {
        /** Prompt positions per second of prefill. */
        public double prefillTokensPerSecond() {
            return promptTokens / Math.max(prefillNanos * 1e-9, 1e-12);
        }

        /** New tokens per second of decode. */
        public double decodeTokensPerSecond() {
            return tokens.length / Math.max(decodeNanos * 1e-9, 1e-12);
        }
    }

    private final Session session;
    private final LlamaModel model;
    private final Tensor logits;
    private final float[] row;

    /** Allocates the logits row (V) under workspace; the cache is allocated per sequence, as long as it needs. */
    public Generator(Session s, LlamaModel model) {
        this.session = s;
        this.model = model;
        int vocab = model.config().vocab();
        this.logits = s.f32("generator.logits", Category.WORKSPACE, vocab);
        this.row = new float[vocab];
    }

    /**
     * Up to {@code steps} new tokens after {@code prompt} (1 to maxSeq ids), drawn with {@code sampling} and
     * {@code rng}; ids in {@code stopTokens} end the text. {@code listener} receives each kept token as soon as it
     * is drawn.
     */
    public Result generate(int[] prompt, int steps, Sampling sampling, RandomGenerator rng, int[] stopTokens,
                           IntConsumer listener) {
        int maxSeq = model.config().maxSeq();
        if (prompt.length == 0 || prompt.length > maxSeq) {
            throw new IllegalArgumentException("generator: the prompt has " + prompt.length + " tokens; it must have 1 to "
                    + maxSeq + " (the model's positions)");
        }
        if (steps < 0) {
            throw new IllegalArgumentException("generator: the number of new tokens must not be negative, got " + steps);
        }
        int[] out = new int[Math.min(steps, maxSeq - prompt.length + 1)];
        int capacity = Math.max(prompt.length, Math.min(maxSeq, prompt.length + steps - 1));
        long t0 = System.nanoTime();
        try (KvCache cache = model.kvCache(capacity)) {
            for (int start = 0; start < prompt.length; start += PREFILL_CHUNK) {
                forward(Arrays.copyOfRange(prompt, start, Math.min(prompt.length, start + PREFILL_CHUNK)), start, cache);
            }
            long t1 = System.nanoTime();
            int n = 0;
            Stop stop = Stop.STEPS;
            while (n < steps) {
                MemorySegment.copy(logits.segment(), ValueLayout.JAVA_FLOAT, logits.byteOffset(), row, 0, row.length);
                int next = sampling.pick(row, rng);
                if (contains(stopTokens, next)) {
                    stop = Stop.STOP_TOKEN;
                    break;
                }
                out[n++] = next;
                listener.accept(next);
                if (n == steps) {
                    break;
                }
                if (cache.length() == maxSeq) {
                    stop = Stop.LENGTH;
                    break;
                }
                forward(new int[]{next}, cache.length(), cache);
            }
            return new Result(Arrays.copyOf(out, n), stop, prompt.length, t1 - t0, System.nanoTime() - t1);
        }
    }

    private void forward(int[] ids, int start, KvCache cache) {
        try (Tensor t = session.i32("generator.tokens", Category.WORKSPACE, ids.length)) {
            MemorySegment.copy(ids, 0, t.segment(), ValueLayout.JAVA_INT, t.byteOffset(), ids.length);
            model.forwardCached(t, start, cache, logits);
        }
    }

    private static boolean contains(int[] ids, int id) {
        for (int x : ids) {
            if (x == id) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() {
        logits.close();
    }
}
