package jtune.engine.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * How the next token is drawn from one row of logits. Temperature 0 takes the argmax (the lowest id on a tie) and
 * draws nothing. Otherwise, as Hugging Face's warpers chain them: the weights {@code exp((logit − max) / temperature)}
 * (softmax before normalisation); with {@code topK > 0} only the tokens whose logit is at least the k-th largest keep
 * theirs (ties with it are kept); with {@code topP < 1} only the nucleus keeps its weight: the most probable tokens,
 * in decreasing weight (lower id first on a tie), up to and including the one at which their share of the remaining
 * weight reaches topP. One uniform draw {@code u} in [0, 1) then picks the first id, in increasing order, at which the
 * running weight exceeds {@code u · total}.
 */
public record Sampling(float temperature, float topP, int topK) {
    public Sampling {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("sampling: the temperature must be 0 (greedy) or a positive number, got "
                    + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("sampling: top-p must be above 0 and at most 1, got " + topP);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("sampling: top-k must be 0 (off) or positive, got " + topK);
        }
    }

    /** Temperature 0: always the most likely token. */
    public static Sampling greedy() {
        return new Sampling(0f, 1f, 0);
    }

    /** The token drawn from {@code logits} (one per id) with {@code rng}, as the class comment says. */
    public int pick(float[] logits, RandomGenerator rng) {
        int n = logits.length, best = 0;
        for (int v = 1; v < n; v++) {
            if (logits[v] > logits[best]) {
                best = v;
            }
        }
        if (temperature == 0) {
            return best;
        }
        float floor = Float.NEGATIVE_INFINITY;
        if (topK > 0 && topK < n) {
            float[] sorted = logits.clone();
            Arrays.sort(sorted);
            floor = sorted[n - topK];
        }
        double[] weight = new double[n];
        double total = 0;
        for (int v = 0; v < n; v++) {
            if (logits[v] >= floor) {
                weight[v] = Math.exp((logits[v] - (double) logits[best]) / temperature);
                total += weight[v];
            }
        }
        if (topP < 1) {
            total = nucleus(weight, total);
        }
        double u = rng.nextDouble() * total;
        for (int v = 0; v < n; v++) {
            u -= weight[v];
            if (u < 0) {
                return v;
            }
        }
        return best;
    }

    /**
     * Zeroes every weight outside the nucleus and returns the nucleus's total. A token lighter than
     * {@code (1 − topP) · total / (n − 1)} is never in it (all of them together weigh less than
     * {@code (1 − topP) · total}), so only the heavier ones are sorted.
     */
    private double nucleus(double[] weight, double total) {
        int n = weight.length;
        double cutoff = n > 1 ? (1 - topP) * total / (n - 1) : 0;
        List<Integer> candidates = new ArrayList<>();
        for (int v = 0; v < n; v++) {
            if (weight[v] > 0 && weight[v] >= cutoff) {
                candidates.add(v);
            }
        }
        candidates.sort(Comparator.comparingDouble((Integer v) -> -weight[v]).thenComparingInt(v -> v));
        double target = topP * total, kept = 0;
        boolean[] keep = new boolean[n];
        for (int v : candidates) {
            keep[v] = true;
            kept += weight[v];
            if (kept >= target) {
                break;
            }
        }
        for (int v = 0; v < n; v++) {
            if (!keep[v]) {
                weight[v] = 0;
            }
        }
        return kept;
    }
}
