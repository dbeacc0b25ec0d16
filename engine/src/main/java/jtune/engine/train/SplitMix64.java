package jtune.engine.train;

import java.util.random.RandomGenerator;

/**
 * SplitMix64 (Steele, Lea and Flood), written out so that its whole state is one long that a checkpoint can
 * save and restore, and so that the same seed gives the same numbers on every JVM:
 * {@code state += 0x9E3779B97F4A7C15}, then a 64-bit finalizer of the state is the output.
 */
public final class SplitMix64 implements RandomGenerator {
    private long state;

    public SplitMix64(long state) {
        this.state = state;
    }

    /** The whole state: {@code new SplitMix64(state())} continues with the same numbers. */
    public long state() {
        return state;
    }

    @Override
    public long nextLong() {
        state += 0x9E3779B97F4A7C15L;
        long z = state;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * A number in [0, bound): the high 32 bits of the next output times bound, shifted down (bias below
     * bound / 2³², negligible here). Written out rather than inherited so that it never changes with the JDK.
     */
    @Override
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new IllegalArgumentException("bound must be positive, got " + bound);
        }
        return (int) (((nextLong() >>> 32) * bound) >>> 32);
    }
}
