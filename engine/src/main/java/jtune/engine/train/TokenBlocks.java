package jtune.engine.train;

import java.util.Arrays;

/**
 * A token stream cut into training blocks: block {@code i} is the inputs {@code tokens[i·T, i·T + T)} and
 * the targets one position later, {@code tokens[i·T + 1, i·T + T + 1)}, so {@code (n − 1) / T} blocks fit in
 * n tokens (the last target of a block is the first input of the next). {@link #split} keeps the last part of
 * the stream apart for evaluation.
 */
public final class TokenBlocks {
    private final int[] tokens;
    private final int seq;

    public TokenBlocks(int[] tokens, int seq) {
        if (seq < 1) {
            throw new IllegalArgumentException("sequence length must be at least 1, got " + seq);
        }
        this.tokens = tokens;
        this.seq = seq;
    }

    /** The stream's first {@code 1 − evalFraction} for training and the rest for evaluation, as blocks of seq. */
    public static TokenBlocks[] split(int[] tokens, int seq, double evalFraction) {
        if (!(evalFraction >= 0 && evalFraction < 1)) {
            throw new IllegalArgumentException("eval fraction must lie in [0, 1), got " + evalFraction);
        }
        int cut = tokens.length - (int) Math.floor(tokens.length * evalFraction);
        return new TokenBlocks[]{new TokenBlocks(Arrays.copyOfRange(tokens, 0, cut), seq),
                new TokenBlocks(Arrays.copyOfRange(tokens, cut, tokens.length), seq)};
    }

    public int seq() {
        return seq;
    }

    public int tokenCount() {
        return tokens.length;
    }

    public int blocks() {
        return tokens.length <= 1 ? 0 : (tokens.length - 1) / seq;
    }

    /** Writes block {@code b}'s inputs and targets into {@code inputs} and {@code targets} from {@code at}. */
    public void copyBlock(int b, int[] inputs, int[] targets, int at) {
        if (b < 0 || b >= blocks()) {
            throw new IndexOutOfBoundsException("block " + b + " of " + blocks());
        }
        System.arraycopy(tokens, b * seq, inputs, at, seq);
        System.arraycopy(tokens, b * seq + 1, targets, at, seq);
    }

    /** The largest token id, or −1 for an empty stream (to check against a model's vocabulary). */
    public int maxToken() {
        int m = -1;
        for (int t : tokens) {
            m = Math.max(m, t);
        }
        return m;
    }
}
