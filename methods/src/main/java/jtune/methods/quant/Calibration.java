package jtune.methods.quant;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * GPTQ's calibration sample from a tokenized text. When the text holds at least {@code count · seq} tokens:
 * {@code count} windows of {@code seq} tokens whose starts are drawn uniformly from [0, n − seq] in turn by
 * {@code SplittableRandom(seed).nextInt(n − seq + 1)}, as GPTQ's scripts sample their calibration text (windows
 * may overlap). When it holds fewer: all of its {@code floor(n / seq)} whole windows, in order, without overlap;
 * when it holds fewer than {@code seq} tokens, one window of all n of them.
 */
public final class Calibration {
    private Calibration() {
    }

    /** The windows of {@code tokens} (see the class comment); there must be at least 2 tokens. */
    public static List<int[]> windows(int[] tokens, int count, int seq, long seed) {
        int n = tokens.length;
        if (count < 1 || seq < 2) {
            throw new IllegalArgumentException("calibration needs at least 1 window of at least 2 tokens, not " + count
                    + " of " + seq);
        }
        if (n < 2) {
            throw new IllegalArgumentException("the calibration text has " + n + " token" + (n == 1 ? "" : "s")
                    + "; it needs at least 2");
        }
        List<int[]> out = new ArrayList<>();
        if (n < seq) {
            out.add(tokens.clone());
        } else if ((long) count * seq > n) {
            for (int start = 0; start + seq <= n; start += seq) {
                out.add(Arrays.copyOfRange(tokens, start, start + seq));
            }
        } else {
            SplittableRandom rng = new SplittableRandom(seed);
            for (int i = 0; i < count; i++) {
                int start = rng.nextInt(n - seq + 1);
                out.add(Arrays.copyOfRange(tokens, start, start + seq));
            }
        }
        return out;
    }
}
