package jtune.engine.tensor;

/**
 * The NormalFloat-4 code book of QLoRA (Dettmers et al. 2023) as bitsandbytes hard-codes it: 16 f32 values, 7
 * negative, an exact 0 at index 7 and 8 positive, ending at ±1. A weight block is normalised by its absmax and
 * each value takes the index of the nearest entry; {@code w = NF4[q] · absmax} decodes it.
 */
public final class Nf4 {
    private static final float[] CODE_BOOK = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    /** Midpoints between consecutive entries, computed in f32 as (a + b) / 2. */
    private static final float[] THRESHOLDS = new float[15];

    static {
        for (int i = 0; i < 15; i++) {
            THRESHOLDS[i] = (CODE_BOOK[i] + CODE_BOOK[i + 1]) / 2f;
        }
    }

    private Nf4() {
    }

    /** The value of code {@code q} (0..15). */
    public static float value(int q) {
        return CODE_BOOK[q];
    }

    /** A copy of the 16 values, index = code. */
    public static float[] codeBook() {
        return CODE_BOOK.clone();
    }

    /**
     * The code of a normalised value {@code x} (x = w · (1 / absmax), nominally in [−1, 1]): the nearest entry,
     * found by comparing against the midpoints with a strict {@code >}, so a value exactly on a midpoint takes the
     * lower code (bitsandbytes' rule). Values beyond ±1 take the end codes; NaN takes code 0.
     */
    public static int nearest(float x) {
        int q = 0;
        while (q < 15 && x > THRESHOLDS[q]) {
            q++;
        }
        return q;
    }
}
