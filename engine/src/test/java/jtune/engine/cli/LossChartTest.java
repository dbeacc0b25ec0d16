package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LossChartTest {
    private static final int TRAIN_RGB = 0x1f77b4;
    private static final int EVAL_RGB = 0xff7f0e;

    @Test
    void writesAPngThatDecodesAtTheAskedSizeWithBothCurves(@TempDir Path dir) throws Exception {
        List<LossChart.Point> train = new ArrayList<>();
        for (int s = 1; s <= 120; s++) {
            train.add(new LossChart.Point(s, 1 + 4.5 * Math.exp(-s / 30.0)));
        }
        train.add(new LossChart.Point(121, Double.NaN));
        List<LossChart.Point> eval = List.of(new LossChart.Point(0, 5.6), new LossChart.Point(60, 1.7),
                new LossChart.Point(120, 1.2));
        Path png = dir.resolve("loss.png");
        LossChart.write(png, "test: loss", train, eval, 640, 400);

        assertThat(Files.list(dir).toList()).containsExactly(png);
        BufferedImage image = ImageIO.read(png.toFile());
        assertThat(image.getWidth()).isEqualTo(640);
        assertThat(image.getHeight()).isEqualTo(400);
        assertThat(count(image, TRAIN_RGB)).isGreaterThan(100);
        assertThat(count(image, EVAL_RGB)).isGreaterThan(100);
        assertThat(image.getRGB(2, 2) & 0xffffff).isEqualTo(0xffffff);
    }

    @Test
    void anEmptyChartStillDraws() {
        BufferedImage image = LossChart.draw("nothing yet", List.of(), List.of(), 320, 200);
        assertThat(count(image, 0x000000)).isGreaterThan(100);
        assertThat(count(image, TRAIN_RGB)).isZero();
    }

    @Test
    void ticksAreOneTwoOrFiveTimesAPowerOfTen() {
        assertThat(LossChart.niceStep(0.9)).isEqualTo(1.0);
        assertThat(LossChart.niceStep(1.3)).isEqualTo(2.0);
        assertThat(LossChart.niceStep(37)).isEqualTo(50.0);
        assertThat(LossChart.niceStep(0.06)).isCloseTo(0.1, within(1e-12));
        assertThat(LossChart.niceStep(600)).isEqualTo(1000.0);
    }

    private static int count(BufferedImage image, int rgb) {
        int n = 0;
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                n += (image.getRGB(x, y) & 0xffffff) == rgb ? 1 : 0;
            }
        }
        return n;
    }
}
