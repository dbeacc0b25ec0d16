package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

class SamplerTest {
    private static final int V = 5;
    private static final int MAX_SEQ = 3;

    /**
     * Logits of position t: −(v − (x_t + 1 + t') mod V)² where t' is how many earlier tokens of the window
     * equal x_t, so the argmax is (x_t + 1 + t') mod V. It checks that the window never exceeds maxSeq.
     */
    private static final class FakeLM implements CausalLM {
        final LlamaConfig config = LlamaConfig.llama(8, 8, 1, 1, 1, V, MAX_SEQ, true);
        int calls;

        @Override
        public LlamaConfig config() {
            return config;
        }

        @Override
        public List<Parameter> parameters() {
            return List.of();
        }

        @Override
        public float forwardBackward(Tensor tokens, Tensor targets, float gradScale) {
            throw new UnsupportedOperationException();
        }

        @Override
        public float loss(Tensor tokens, Tensor targets) {
            throw new UnsupportedOperationException();
        }

        @Override
        public void logits(Tensor tokens, Tensor out) {
            calls++;
            int t = (int) tokens.dim(1);
            assertThat(tokens.dim(0)).isOne();
            assertThat(t).isBetween(1, MAX_SEQ);
            assertThat(out.shape().toArray()).containsExactly(t, V);
            for (int i = 0; i < t; i++) {
                int x = (int) tokens.get(0, i);
                int repeats = 0;
                for (int j = 0; j < i; j++) {
                    repeats += (int) tokens.get(0, j) == x ? 1 : 0;
                }
                int peak = (x + 1 + repeats) % V;
                for (int v = 0; v < V; v++) {
                    out.set(-(v - peak) * (v - peak), i, v);
                }
            }
        }

        @Override
        public void close() {
        }
    }

    @Test
    void temperatureZeroFollowsTheArgmaxOverTheCroppedWindow() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger()); FakeLM lm = new FakeLM();
             Sampler s = new Sampler(new Session(new ScalarBackend(), pool), lm)) {
            // Worked by hand: window [1, 1] (x=1, one earlier 1) → 3; window [1, 1, 3] → 4; window [1, 3, 4]
            // → 0; window [3, 4, 0] → 1; window [4, 0, 1] → 2.
            assertThat(s.generate(new int[] {1, 1}, 5, 0f, 0, new SplittableRandom(1))).containsExactly(3, 4, 0, 1, 2);
            assertThat(lm.calls).isEqualTo(5);
            // top-k 1 at any temperature is the argmax too.
            assertThat(s.generate(new int[] {1, 1}, 5, 2f, 1, new SplittableRandom(9))).containsExactly(3, 4, 0, 1, 2);
            assertThat(s.generate(new int[] {2}, 0, 0f, 0, new SplittableRandom(1))).isEmpty();
        }
    }

    @Test
    void argmaxTakesTheLowestIdOnATie() {
        assertThat(Sampler.pick(new float[] {1, 3, 3, 2}, 0f, 0, new SplittableRandom(1))).isEqualTo(1);
    }

    @Test
    void drawsFollowTheTemperedSoftmaxWithinTheTopK() {
        float[] logits = {(float) Math.log(1), (float) Math.log(2), (float) Math.log(3), (float) Math.log(4), -50};
        SplittableRandom rng = new SplittableRandom(42);
        int n = 40_000;
        int[] seen = new int[logits.length];
        int[] seenTop2 = new int[logits.length];
        int[] seenCold = new int[logits.length];
        for (int i = 0; i < n; i++) {
            seen[Sampler.pick(logits, 1f, 0, rng)]++;
            seenTop2[Sampler.pick(logits, 1f, 2, rng)]++;
            seenCold[Sampler.pick(logits, 0.5f, 0, rng)]++;
        }
        // Softmax at T = 1: weights 1:2:3:4 over 10; within the top 2: 3:4 over 7; at T = 0.5: 1:4:9:16 over 30.
        double[] p = {0.1, 0.2, 0.3, 0.4, 0};
        double[] pTop2 = {0, 0, 3 / 7.0, 4 / 7.0, 0};
        double[] pCold = {1 / 30.0, 4 / 30.0, 9 / 30.0, 16 / 30.0, 0};
        for (int v = 0; v < logits.length; v++) {
            assertThat(seen[v] / (double) n).isCloseTo(p[v], within(0.01));
            assertThat(seenTop2[v] / (double) n).isCloseTo(pTop2[v], within(0.01));
            assertThat(seenCold[v] / (double) n).isCloseTo(pCold[v], within(0.01));
        }
    }

    @Test
    void badArgumentsAreNamed() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger()); FakeLM lm = new FakeLM();
             Sampler s = new Sampler(new Session(new ScalarBackend(), pool), lm)) {
            assertThatThrownBy(() -> s.generate(new int[0], 3, 0f, 0, new SplittableRandom(1)))
                    .hasMessageContaining("at least one token");
            assertThatThrownBy(() -> s.generate(new int[] {1}, 3, -1f, 0, new SplittableRandom(1)))
                    .hasMessageContaining("temperature");
        }
    }
}
