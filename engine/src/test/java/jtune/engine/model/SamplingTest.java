package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link Sampling} on hand-made logits whose probabilities are known: logits ln(0.5), ln(0.3), ln(0.1), ln(0.1) give
 * softmax probabilities 0.5, 0.3, 0.1, 0.1 at temperature 1. The nucleus is then fixed by arithmetic: top-p 0.45 keeps
 * {0} (0.5 ≥ 0.45), 0.7 keeps {0, 1} (0.8), 0.85 keeps {0, 1, 2} (0.9; the tie 2/3 goes to the lower id), so any other
 * id drawn is a fault, and within the nucleus the draws follow the renormalised probabilities (within 5 standard
 * deviations over 20000 draws).
 */
class SamplingTest {
    private static final float[] LOGITS = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.1),
            (float) Math.log(0.1)};
    private static final int DRAWS = 20_000;

    private static int[] counts(Sampling s, float[] logits, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] seen = new int[logits.length];
        for (int i = 0; i < DRAWS; i++) {
            seen[s.pick(logits, rng)]++;
        }
        return seen;
    }

    private static void assertShare(int count, double p) {
        double sd = Math.sqrt(DRAWS * p * (1 - p));
        assertThat((double) count).isBetween(DRAWS * p - 5 * sd, DRAWS * p + 5 * sd);
    }

    @Test
    void greedyTakesTheArgmaxWithTheLowestIdOnATie() {
        assertThat(Sampling.greedy().pick(new float[]{1, 3, 3, 2}, null)).isEqualTo(1);
        assertThat(Sampling.greedy().pick(LOGITS, null)).isZero();
    }

    @Test
    void topPKeepsOnlyTheNucleus() {
        assertThat(counts(new Sampling(1f, 0.45f, 0), LOGITS, 1)).containsExactly(DRAWS, 0, 0, 0);

        int[] two = counts(new Sampling(1f, 0.7f, 0), LOGITS, 2);
        assertThat(two[2] + two[3]).isZero();
        assertShare(two[0], 0.5 / 0.8);

        int[] three = counts(new Sampling(1f, 0.85f, 0), LOGITS, 3);
        assertThat(three[3]).isZero();
        assertShare(three[0], 0.5 / 0.9);
        assertShare(three[2], 0.1 / 0.9);

        int[] all = counts(new Sampling(1f, 1f, 0), LOGITS, 4);
        assertShare(all[3], 0.1);
    }

    /**
     * Top-k first, then the nucleus of what is left: alone, top-p 0.6 keeps {0, 1} (0.5 &lt; 0.6 ≤ 0.8); after top-k 2
     * the renormalised 0.625, 0.375 put token 0 alone past 0.6.
     */
    @Test
    void topKThenTopP() {
        int[] alone = counts(new Sampling(1f, 0.6f, 0), LOGITS, 5);
        assertThat(alone[2] + alone[3]).isZero();
        assertShare(alone[1], 0.3 / 0.8);
        assertThat(counts(new Sampling(1f, 0.6f, 2), LOGITS, 5)).containsExactly(DRAWS, 0, 0, 0);
        assertThat(counts(new Sampling(1f, 1f, 1), LOGITS, 6)).containsExactly(DRAWS, 0, 0, 0);
    }

    /** Temperature 0.5 squares the probabilities before renormalising: 0.25, 0.09, 0.01, 0.01 over 0.36. */
    @Test
    void temperatureSharpens() {
        int[] seen = counts(new Sampling(0.5f, 1f, 0), LOGITS, 7);
        assertShare(seen[0], 0.25 / 0.36);
        assertShare(seen[2], 0.01 / 0.36);
    }

    @Test
    void theSameSeedDrawsTheSameTokens() {
        float[] logits = new float[50];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.sin(i);
        }
        Sampling s = new Sampling(0.9f, 0.9f, 20);
        int[] a = new int[200], b = new int[200], c = new int[200];
        SplittableRandom ra = new SplittableRandom(42), rb = new SplittableRandom(42), rc = new SplittableRandom(43);
        for (int i = 0; i < a.length; i++) {
            a[i] = s.pick(logits, ra);
            b[i] = s.pick(logits, rb);
            c[i] = s.pick(logits, rc);
        }
        assertThat(a).isEqualTo(b);
        assertThat(a).isNotEqualTo(c);
    }

    @Test
    void rejectsSettingsOutsideTheirRange() {
        assertThatThrownBy(() -> new Sampling(-1f, 1f, 0)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new Sampling(Float.NaN, 1f, 0)).hasMessageContaining("temperature");
        assertThatThrownBy(() -> new Sampling(1f, 0f, 0)).hasMessageContaining("top-p");
        assertThatThrownBy(() -> new Sampling(1f, 1.5f, 0)).hasMessageContaining("top-p");
        assertThatThrownBy(() -> new Sampling(1f, 1f, -1)).hasMessageContaining("top-k");
    }
}
