package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * f32 → bf16 rounding against an independent oracle: the two bf16 neighbours of the value, compared by exact
 * decimal distance, ties to the even one (IEEE 754 round to nearest even), overflow to infinity at the
 * IEEE threshold; and f16 storage against {@link Float#floatToFloat16}.
 */
class NarrowFloatTest {
    /** 2^128: the value infinity stands for when deciding overflow (IEEE 754 §4.3.1). */
    private static final BigDecimal TWO_128 = new BigDecimal(2).pow(128);

    /** bf16 bits nearest to {@code v}, ties to even, computed from exact distances. */
    private static int bf16Oracle(float v) {
        if (Float.isNaN(v)) {
            throw new IllegalArgumentException("NaN has no nearest value");
        }
        int bits = Float.floatToRawIntBits(v);
        int sign = bits & 0x8000_0000;
        float mag = Math.abs(v);
        int down = Float.floatToRawIntBits(mag) >>> 16;         // largest bf16 <= |v| (truncation)
        int up = down + 1;                                      // next bf16 above it (0x7f80 is +inf)
        BigDecimal exact = new BigDecimal(mag);
        BigDecimal lo = new BigDecimal(Float.intBitsToFloat(down << 16));
        if (exact.compareTo(lo) == 0 || Float.isInfinite(mag)) {
            return (sign >>> 16) | down;
        }
        BigDecimal hi = up == 0x7f80 ? TWO_128 : new BigDecimal(Float.intBitsToFloat(up << 16));
        int c = exact.subtract(lo).compareTo(hi.subtract(exact));
        int pick = c < 0 ? down : c > 0 ? up : (down % 2 == 0 ? down : up);
        return (sign >>> 16) | pick;
    }

    private static void checkBf16(float v) {
        short got = Tensor.toBf16(v);
        assertThat(got & 0xffff).as("bf16 of %s (bits %08x)", v, Float.floatToRawIntBits(v))
                .isEqualTo(bf16Oracle(v));
    }

    @Test
    void bf16RoundsToNearestEvenOnRandomBitPatterns() {
        SplittableRandom rng = new SplittableRandom(0x6bf16L);
        for (int n = 0; n < 40_000; n++) {
            float v = Float.intBitsToFloat(rng.nextInt());
            if (!Float.isNaN(v)) {
                checkBf16(v);
            }
        }
    }

    @Test
    void bf16HandlesTiesSubnormalsAndOverflow() {
        for (int hi : new int[]{0x3f80, 0x3f81, 0x0000, 0x0001, 0x007f, 0x0080, 0x7f7e, 0x7f7f, 0x4049}) {
            for (int low : new int[]{0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff}) {
                checkBf16(Float.intBitsToFloat((hi << 16) | low));
                checkBf16(Float.intBitsToFloat(0x8000_0000 | (hi << 16) | low));
            }
        }
        checkBf16(Float.MAX_VALUE);
        checkBf16(Float.MIN_VALUE);
        checkBf16(0f);
        checkBf16(-0f);
        assertThat(Tensor.toBf16(Float.POSITIVE_INFINITY)).isEqualTo((short) 0x7f80);
        assertThat(Tensor.toBf16(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xff80);
        // The exact tie at the overflow threshold rounds to even, which is infinity; just below stays finite.
        assertThat(Tensor.toBf16(Float.intBitsToFloat(0x7f7f_8000))).isEqualTo((short) 0x7f80);
        assertThat(Tensor.toBf16(Float.intBitsToFloat(0x7f7f_7fff))).isEqualTo((short) 0x7f7f);
        // 1 + 2^-8 is the tie between 1 and 1 + 2^-7: even is 1. 1 + 3·2^-8 ties up to 1 + 2^-6.
        assertThat(Tensor.toBf16(1f + 0x1p-8f)).isEqualTo((short) 0x3f80);
        assertThat(Tensor.toBf16(1f + 3 * 0x1p-8f)).isEqualTo((short) 0x3f82);
    }

    @Test
    void bf16KeepsNaNsNaN() {
        for (int bits : new int[]{0x7fc0_0000, 0x7f80_0001, 0xff80_0001, 0x7fff_ffff, 0x7f80_ffff, 0xffff_ffff}) {
            short b = Tensor.toBf16(Float.intBitsToFloat(bits));
            assertThat(Float.isNaN(Float.intBitsToFloat((b & 0xffff) << 16))).as("bits %08x", bits).isTrue();
        }
    }

    @Test
    void bf16AndF16TensorsStoreTheRoundedValue() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Tensor b = pool.allocate("b", DType.BF16, Category.WORKSPACE, 1000);
            Tensor h = pool.allocate("h", DType.F16, Category.WORKSPACE, 1000);
            SplittableRandom rng = new SplittableRandom(7);
            float[] v = new float[1000];
            for (int n = 0; n < v.length; n++) {
                v[n] = (float) ((rng.nextDouble() - 0.5) * Math.pow(2, rng.nextInt(-30, 20)));
            }
            v[0] = Float.NaN;
            b.copyFrom(v);
            h.copyFrom(v);
            float[] gb = b.toFloatArray(), gh = h.toFloatArray();
            assertThat(gb[0]).isNaN();
            assertThat(gh[0]).isNaN();
            for (int n = 1; n < v.length; n++) {
                assertThat(Float.floatToRawIntBits(gb[n])).isEqualTo(bf16Oracle(v[n]) << 16);
                assertThat(gh[n]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(v[n])));
            }
        }
    }
}
