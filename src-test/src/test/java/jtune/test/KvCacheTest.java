package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.stream.Stream;
import jtune.cpu.SimdBackend;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.KvCache;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link LlamaModel#forwardCached} against {@link LlamaModel#logits} over the whole sequence, which is the definition
 * it must meet: a prompt prefilled at once, then tokens fed one and three at a time, then a rewind that overwrites
 * the cache from an earlier position; each time the logits of the last new position equal the full forward's row of
 * that position. On the scalar oracle both paths round the same double sums once, so they agree to f32 rounding; on
 * the SIMD backend a one-row product sums in another order than a full one, a few f32 ulps per op, hence a bound of
 * 1e-5 relative to the largest logit.
 */
class KvCacheTest {
    static Stream<Arguments> cases() {
        return LlamaSimdTest.variants().flatMap(v -> Stream.of(false, true).map(simd ->
                Arguments.of(v.get()[0] + (simd ? " on cpu-simd" : " on scalar"), v.get()[1], simd)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void cachedForwardGivesTheFullForwardsLogits(String what, LlamaConfig c, boolean simd) {
        int t = c.maxSeq(), v = c.vocab();
        int[] tokens = LlamaSimdTest.batch(1, t, v, 31)[0];
        try (Backend be = simd ? new SimdBackend(2) : new ScalarBackend();
             MemoryPool pool = new MemoryPool(new MemoryLedger());
             LlamaModel m = LlamaModel.create(new Session(be, pool), c, 5, WeightTransform.IDENTITY, false);
             KvCache cache = m.kvCache(t)) {
            Session s = new Session(be, pool);
            LlamaSimdTest.randomize(m.parameters(), 77);
            float[] full;
            try (Tensor ids = LlamaSimdTest.ints(s, "tokens", tokens, 1, t);
                 Tensor out = s.f32("logits", Category.WORKSPACE, t, v)) {
                m.logits(ids, out);
                full = out.toFloatArray();
            }
            double scale = 0;
            for (float x : full) {
                scale = Math.max(scale, Math.abs(x));
            }
            double bound = 1e-5 * scale, worst = 0;
            int[][] steps = {{0, 7}, {7, 8}, {8, 9}, {9, 12}, {12, 13}, {5, 6}, {6, 10}, {10, t}};
            try (Tensor last = s.f32("last", Category.WORKSPACE, v)) {
                for (int[] step : steps) {
                    int[] part = java.util.Arrays.copyOfRange(tokens, step[0], step[1]);
                    try (Tensor ids = LlamaSimdTest.ints(s, "new", part, part.length)) {
                        m.forwardCached(ids, step[0], cache, last);
                    }
                    assertThat(cache.length()).isEqualTo(step[1]);
                    float[] got = last.toFloatArray();
                    int row = step[1] - 1;
                    for (int j = 0; j < v; j++) {
                        double diff = Math.abs(got[j] - full[row * v + j]);
                        worst = Math.max(worst, diff);
                        assertThat(diff).as("%s: position %d logit %d (got %s, full forward %s)", what, row, j,
                                got[j], full[row * v + j]).isLessThanOrEqualTo(bound);
                    }
                }
                System.out.printf("%s: largest difference %.1e (largest logit %.2f)%n", what, worst, scale);
                try (Tensor one = LlamaSimdTest.ints(s, "one", new int[]{1}, 1)) {
                    assertThatThrownBy(() -> m.forwardCached(one, t, cache, last))
                            .isInstanceOf(IllegalArgumentException.class)
                            .hasMessageContaining("do not fit its " + t + " positions");
                    assertThatThrownBy(() -> m.forwardCached(one, t + 1, cache, last))
                            .isInstanceOf(IllegalArgumentException.class)
                            .hasMessageContaining("must start within the " + t + " filled ones");
                }
            }
        }
    }
}
