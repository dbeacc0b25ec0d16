package jtune.test;

import static org.assertj.core.api.Assertions.fail;

import java.util.function.IntToDoubleFunction;
import jtune.engine.tensor.Tensor;

/**
 * Element-wise comparison of a backend's output with the oracle's, under a per-element bound. The bounds
 * come from rounding-error analysis in units of {@link #U}, the unit roundoff of f32; {@link #gamma} is
 * the classic {@code γ_n = n·u / (1 − n·u)} that bounds the error of any n-term f32 sum or product chain,
 * whatever the order or blocking of the additions.
 */
final class Compare {
    /** Unit roundoff of f32: half the distance from 1 to the next float. */
    static final double U = 0x1p-24;

    /** Below this, absolute differences are subnormal noise (a kernel may flush where the oracle does not). */
    static final double TINY = Float.MIN_NORMAL;

    private Compare() {
    }

    static double gamma(long n) {
        return n * U / (1 - n * U);
    }

    /** Bit-for-bit equal, except that any NaN matches any NaN. */
    static void exact(String what, Tensor got, Tensor want) {
        within(what, Operands.read(got), Operands.read(want), i -> 0);
    }

    static void within(String what, Tensor got, Tensor want, IntToDoubleFunction tolerance) {
        within(what, Operands.read(got), Operands.read(want), tolerance);
    }

    /**
     * {@code |got[i] − want[i]| ≤ tolerance(i)} for every i; NaN where the oracle has NaN and nowhere else. A
     * zero tolerance demands identical bits (so −0 ≠ +0).
     */
    static void within(String what, float[] got, float[] want, IntToDoubleFunction tolerance) {
        if (got.length != want.length) {
            fail("%s: %d elements, the oracle has %d", what, got.length, want.length);
        }
        int bad = 0, first = -1;
        double firstTol = 0;
        for (int i = 0; i < got.length; i++) {
            boolean ok;
            double tol = 0;
            if (Float.isNaN(want[i]) || Float.isNaN(got[i])) {
                ok = Float.isNaN(want[i]) && Float.isNaN(got[i]);
            } else {
                tol = tolerance.applyAsDouble(i);
                ok = tol == 0 ? Float.floatToIntBits(got[i]) == Float.floatToIntBits(want[i])
                        : Math.abs((double) got[i] - want[i]) <= tol;
            }
            if (!ok) {
                if (bad++ == 0) {
                    first = i;
                    firstTol = tol;
                }
            }
        }
        if (bad > 0) {
            fail("%s: %d of %d elements differ; first at %d: got %s, oracle %s, |diff| %s, bound %s",
                    what, bad, got.length, first, got[first], want[first],
                    Math.abs((double) got[first] - want[first]), firstTol);
        }
    }

    /** One scalar result within {@code tolerance}; NaN only where the oracle is NaN. */
    static void scalar(String what, float got, float want, double tolerance) {
        within(what, new float[]{got}, new float[]{want}, i -> tolerance);
    }
}
