package jtune.methods.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The calibration sample: its windows are slices of the text, seeded, and all of a text too short for the count. */
class CalibrationTest {
    /** Tokens 0..n−1, so a window's first token is its start. */
    private static int[] ramp(int n) {
        return IntStream.range(0, n).toArray();
    }

    @Test
    void longTextGivesSeededRandomSlices() {
        int[] text = ramp(10_000);
        List<int[]> w = Calibration.windows(text, 128, 64, 5);
        assertThat(w).hasSize(128).allSatisfy(x -> {
            assertThat(x).hasSize(64);
            assertThat(x[0]).isBetween(0, 10_000 - 64);
            assertThat(x).isEqualTo(IntStream.range(x[0], x[0] + 64).toArray());
        });
        assertThat(w.stream().mapToInt(x -> x[0]).distinct().count()).as("starts spread over the text").isGreaterThan(100);
        assertThat(Calibration.windows(text, 128, 64, 5)).usingRecursiveComparison().isEqualTo(w);
        assertThat(Calibration.windows(text, 128, 64, 6).getFirst()[0] != w.getFirst()[0]
                || Calibration.windows(text, 128, 64, 6).get(1)[0] != w.get(1)[0]).isTrue();
    }

    @Test
    void shortTextGivesAllOfItsWholeWindows() {
        List<int[]> w = Calibration.windows(ramp(1000), 128, 64, 0);
        assertThat(w).hasSize(15);
        for (int i = 0; i < w.size(); i++) {
            assertThat(w.get(i)).isEqualTo(IntStream.range(64 * i, 64 * (i + 1)).toArray());
        }
        assertThat(Calibration.windows(ramp(50), 128, 64, 0)).singleElement().isEqualTo(ramp(50));
        assertThatThrownBy(() -> Calibration.windows(ramp(1), 128, 64, 0)).hasMessageContaining("1 token;");
    }
}
