package jtune.methods.quant;

import static jtune.methods.quant.Fixtures.cases;
import static jtune.methods.quant.Fixtures.doubles;
import static jtune.methods.quant.Fixtures.floats;
import static jtune.methods.quant.Fixtures.integer;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * LoRC's factors against LAPACK's singular values (make_quant_fixtures.py): Eckart–Young, {@code ‖E − ÛV̂‖_F² =
 * Σ_{i>r} σ_i²}, to 1e-5 relative at every rank, for square, wide and tall matrices; the residual never grows with the
 * rank and vanishes at full rank.
 */
class LowRankTest {

    @Test
    void residualIsTheTailOfTheSpectrum() {
        for (Map<String, Object> c : cases(Fixtures.get().get("lorc"))) {
            int rows = integer(c, "rows"), cols = integer(c, "cols"), p = Math.min(rows, cols);
            float[] e = floats(c, "e");
            double[] sigma = doubles(c, "sigma");
            double total = 0;
            for (double s : sigma) {
                total += s * s;
            }
            double previous = Double.POSITIVE_INFINITY;
            for (int r : new int[]{1, 2, 4, 8, 16, 24, p - 1, p}) {
                LowRank f = LowRank.of(e, rows, cols, r, 7);
                double tail = 0;
                for (int i = r; i < p; i++) {
                    tail += sigma[i] * sigma[i];
                }
                double residual = residual(e, f.product());
                String what = rows + "x" + cols + " rank " + r;
                assertThat(residual).as(what).isCloseTo(tail, within(1e-5 * tail + 1e-9 * total));
                assertThat(residual).as("%s: not above the lower rank's", what).isLessThanOrEqualTo(previous);
                for (int i = 0; i < r; i++) {
                    assertThat(f.sigma()[i]).as("%s: sigma %d", what, i).isCloseTo(sigma[i], within(1e-9 * sigma[0]));
                }
                previous = residual;
            }
            assertThat(previous).as("full rank leaves nothing").isLessThan(1e-9 * total);
        }
    }

    @Test
    void factorsSplitTheSingularValuesEvenly() {
        Map<String, Object> c = cases(Fixtures.get().get("lorc")).get(1);
        int rows = integer(c, "rows"), cols = integer(c, "cols");
        LowRank f = LowRank.of(floats(c, "e"), rows, cols, 4, 1);
        for (int k = 0; k < 4; k++) {
            double uu = 0, vv = 0;
            for (int i = 0; i < rows; i++) {
                uu += (double) f.u()[i * 4 + k] * f.u()[i * 4 + k];
            }
            for (int j = 0; j < cols; j++) {
                vv += (double) f.v()[k * cols + j] * f.v()[k * cols + j];
            }
            assertThat(uu).as("‖Û_%d‖² = σ_%d", k, k).isCloseTo(f.sigma()[k], within(1e-5 * f.sigma()[k]));
            assertThat(vv).as("‖V̂_%d‖² = σ_%d", k, k).isCloseTo(f.sigma()[k], within(1e-5 * f.sigma()[k]));
        }
    }

    @Test
    void zeroMatrixAndZeroRankGiveNoCorrection() {
        LowRank zero = LowRank.of(new float[12], 3, 4, 2, 0);
        assertThat(zero.product()).containsOnly(0.0);
        LowRank none = LowRank.of(new float[]{1, 2, 3, 4}, 2, 2, 0, 0);
        assertThat(none.rank()).isZero();
        assertThat(none.product()).containsOnly(0.0);
    }

    static double residual(float[] e, double[] approx) {
        double s = 0;
        for (int i = 0; i < e.length; i++) {
            double d = e[i] - approx[i];
            s += d * d;
        }
        return s;
    }
}
