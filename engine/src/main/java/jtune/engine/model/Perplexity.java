package jtune.engine.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Perplexity over non-overlapping windows, the protocol of the quantization papers' WikiText-2 numbers (GPTQ and
 * after): a token stream of n ids is cut into {@code floor(n / seq)} windows of seq tokens (the tail is dropped);
 * within each window, every token after the first is predicted from the ones before it in that window (seq − 1
 * predictions, no context across windows); the perplexity is {@code exp} of the mean negative log-likelihood over
 * every prediction of every window.
 */
public final class Perplexity {
    /** Windows, the tokens they hold, the predictions scored, their summed NLL (nats) and the wall time. */
    public record Result(int windows, int seq, long predictions, double totalNll, long nanos) {
        /** Tokens in the windows: windows · seq. */
        public long tokens() {
            return (long) windows * seq;
        }

        /** Mean NLL per prediction, in nats. */
        public double meanNll() {
            return totalNll / predictions;
        }

        public double perplexity() {
            return Math.exp(meanNll());
        }

        /** Window tokens per second of wall time. */
        public double tokensPerSecond() {
            return tokens() / Math.max(nanos * 1e-9, 1e-12);
        }
    }

    /** Receives the windows done so far after each forward pass. */
    @FunctionalInterface
    public interface Progress {
        void windowsDone(int done, int total);
    }

    private Perplexity() {
    }

    /**
     * Scores {@code tokens} in windows of {@code seq} (2 to the model's maxSeq), {@code batch} windows per forward
     * pass. Fails if there is not one whole window.
     */
    public static Result evaluate(Session s, CausalLM model, int[] tokens, int seq, int batch, Progress progress) {
        int maxSeq = model.config().maxSeq();
        if (seq < 2 || seq > maxSeq) {
            throw new IllegalArgumentException("perplexity: the window must be 2 to " + maxSeq
                    + " tokens (the model's positions), got " + seq);
        }
        if (batch < 1) {
            throw new IllegalArgumentException("perplexity: windows per pass must be positive, got " + batch);
        }
        int windows = tokens.length / seq;
        if (windows == 0) {
            throw new IllegalArgumentException("perplexity: the text has " + tokens.length + " tokens, fewer than one "
                    + "window of " + seq);
        }
        long t0 = System.nanoTime();
        double total = 0;
        int t = seq - 1;
        for (int w0 = 0; w0 < windows; w0 += batch) {
            int b = Math.min(batch, windows - w0);
            try (Tensor in = s.i32("perplexity.tokens", Category.WORKSPACE, b, t);
                 Tensor target = s.i32("perplexity.targets", Category.WORKSPACE, b, t)) {
                for (int i = 0; i < b; i++) {
                    int from = (w0 + i) * seq;
                    long at = (long) i * t * Integer.BYTES;
                    MemorySegment.copy(tokens, from, in.segment(), ValueLayout.JAVA_INT, in.byteOffset() + at, t);
                    MemorySegment.copy(tokens, from + 1, target.segment(), ValueLayout.JAVA_INT, target.byteOffset() + at, t);
                }
                total += (double) model.loss(in, target) * b * t;
            }
            progress.windowsDone(w0 + b, windows);
        }
        return new Result(windows, seq, (long) windows * t, total, System.nanoTime() - t0);
    }
}
