package jtune.engine.optim;

/**
 * The learning rate of each update: a linear warm-up from {@code peak/warmup} to {@code peak} over the first
 * {@code warmup} updates, then either constant or a half cosine down to {@code minRatio · peak} at update
 * {@code total}. Updates count from 1: for {@code t ≤ warmup}, {@code lr = peak · t / warmup}; after it, with
 * {@code progress = (t − warmup) / (total − warmup)}, cosine gives
 * {@code lr = peak · (minRatio + (1 − minRatio) · (1 + cos(π · progress)) / 2)}. Past {@code total} the rate
 * stays at its final value.
 */
public record LrSchedule(Decay decay, double peak, long warmup, long total, double minRatio) {

    /** What follows the warm-up. */
    public enum Decay {
        COSINE, CONSTANT;

        /** "cosine" or "constant"; anything else fails naming the valid ones. */
        public static Decay parse(String s) {
            return switch (s) {
                case "cosine" -> COSINE;
                case "constant" -> CONSTANT;
                default -> throw new IllegalArgumentException("schedule '" + s + "' is not one of cosine, constant");
            };
        }
    }

    public LrSchedule {
        if (!(peak >= 0) || warmup < 0 || total < 1 || !(minRatio >= 0 && minRatio <= 1)) {
            throw new IllegalArgumentException("schedule needs peak >= 0, warmup >= 0, total >= 1 and min ratio in "
                    + "[0, 1], got peak " + peak + ", warmup " + warmup + ", total " + total + ", min ratio " + minRatio);
        }
    }

    public static LrSchedule cosine(double peak, long warmup, long total, double minRatio) {
        return new LrSchedule(Decay.COSINE, peak, warmup, total, minRatio);
    }

    public static LrSchedule constant(double peak, long warmup, long total) {
        return new LrSchedule(Decay.CONSTANT, peak, warmup, total, 1.0);
    }

    /** The learning rate of update {@code t} (counting from 1). */
    public float lr(long t) {
        if (t < 1) {
            throw new IllegalArgumentException("updates count from 1, got " + t);
        }
        if (t <= warmup) {
            return (float) (peak * t / warmup);
        }
        if (decay == Decay.CONSTANT || warmup >= total) {
            return (float) peak;
        }
        double progress = Math.min(1.0, (double) (t - warmup) / (total - warmup));
        return (float) (peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress))));
    }
}
