package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import jtune.engine.io.Json;
import org.junit.jupiter.api.Test;

/**
 * The code books of the quantized formats against {@code /fixtures/quant-maps.json}, written by
 * src-test/src/test/python/make_quant_maps.py (torch.linspace for the dynamic map, the reference's literals for
 * NF4), bit for bit; and their nearest-code searches against a brute-force nearest.
 */
class QuantMapsTest {
    private static float[] floats(Map<String, Object> doc, String key) {
        List<?> hex = (List<?>) doc.get(key);
        float[] v = new float[hex.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) Double.parseDouble((String) hex.get(i));
        }
        return v;
    }

    private static Map<String, Object> fixture() throws IOException {
        try (InputStream in = QuantMapsTest.class.getResourceAsStream("/fixtures/quant-maps.json")) {
            assertThat(in).as("/fixtures/quant-maps.json on the test classpath").isNotNull();
            return Json.parseObject(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void dynamicMapMatchesTorchBitForBit() throws IOException {
        float[] want = floats(fixture(), "dynamic_signed");
        assertThat(want).hasSize(256);
        float[] got = DynamicMap.signed();
        for (int q = 0; q < 256; q++) {
            assertThat(Float.floatToRawIntBits(got[q])).as("dynamic map code %d: %s vs torch %s", q, got[q], want[q])
                    .isEqualTo(Float.floatToRawIntBits(want[q]));
            assertThat(DynamicMap.value(q)).isEqualTo(got[q]);
        }
        assertThat(got[127]).isEqualTo(0f);
        assertThat(got[255]).isEqualTo(1f);
        assertThat(got[0]).isLessThan(-0.99f);
    }

    @Test
    void nf4CodeBookMatchesTheReference() throws IOException {
        float[] want = floats(fixture(), "nf4");
        for (int q = 0; q < 16; q++) {
            assertThat(Nf4.value(q)).isEqualTo(want[q]);
        }
        assertThat(Nf4.codeBook()).containsExactly(want);
    }

    @Test
    void nf4NearestSplitsAtTheMidpointsAndTiesGoDown() throws IOException {
        float[] mids = floats(fixture(), "nf4_midpoints");
        for (int q = 0; q < 15; q++) {
            assertThat(Nf4.nearest(mids[q])).as("exactly on midpoint %d", q).isEqualTo(q);
            assertThat(Nf4.nearest(Math.nextUp(mids[q]))).as("just above midpoint %d", q).isEqualTo(q + 1);
        }
        assertThat(Nf4.nearest(-5f)).isZero();
        assertThat(Nf4.nearest(5f)).isEqualTo(15);
        assertThat(Nf4.nearest(0f)).isEqualTo(7);
        // The reference's golden vectors (section 10.1): x / absmax for the blocks [0.5, -0.2, 1, 0] and
        // [0.9, -0.3, 0.02, -1.8] (reciprocal multiply, as bitsandbytes normalises).
        float inv = 1f / 1.8f;
        assertThat(new int[]{Nf4.nearest(0.5f), Nf4.nearest(-0.2f), Nf4.nearest(1f), Nf4.nearest(0f)})
                .containsExactly(12, 5, 15, 7);
        assertThat(new int[]{Nf4.nearest(0.9f * inv), Nf4.nearest(-0.3f * inv), Nf4.nearest(0.02f * inv),
                Nf4.nearest(-1.8f * inv)}).containsExactly(12, 5, 7, 0);
    }

    @Test
    void dynamicNearestIsTheClosestEntryAndTiesGoDown() {
        float[] map = DynamicMap.signed();
        java.util.SplittableRandom rng = new java.util.SplittableRandom(5);
        for (int n = 0; n < 20000; n++) {
            float x = (float) (rng.nextDouble(-1.05, 1.05) * (n % 3 == 0 ? 1e-3 : 1));
            int best = 0;
            for (int q = 1; q < 256; q++) {
                if (Math.abs(x - map[q]) < Math.abs(x - map[best])) {
                    best = q;
                }
            }
            assertThat(DynamicMap.nearest(x)).as("nearest of %s", x).isEqualTo(best);
        }
        for (int q = 0; q < 255; q++) {
            float lo = map[q], hi = map[q + 1], mid = (lo + hi) / 2;
            if (mid - lo == hi - mid) {
                assertThat(DynamicMap.nearest(mid)).as("tie between %d and %d", q, q + 1).isEqualTo(q);
            }
            assertThat(DynamicMap.nearest(map[q])).isEqualTo(q);
        }
    }
}
