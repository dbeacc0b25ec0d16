package jtune.engine.cli;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A loss curve as a PNG, drawn with the JDK's own imaging (BufferedImage, Graphics2D, ImageIO) in headless
 * mode and the built-in {@link PixelFont}: a title, axes with round-numbered ticks, the training loss per step
 * as a thin line and the evaluation loss as a line with markers, and a legend. Non-finite losses are skipped.
 */
public final class LossChart {
    static {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    /** One point of a curve: the optimizer step and the loss after it. */
    public record Point(double step, double loss) {
    }

    private static final Color TRAIN = new Color(0x1f77b4);
    private static final Color EVAL = new Color(0xff7f0e);
    private static final Color GRID = new Color(0xe6e6e6);
    private static final int LEFT = 80;
    private static final int RIGHT = 24;
    private static final int TOP = 64;
    private static final int BOTTOM = 64;

    private LossChart() {
    }

    /** Draws the chart and writes it as a PNG to {@code file} (through a temporary file, then a rename). */
    public static void write(Path file, String title, List<Point> train, List<Point> eval, int width, int height)
            throws IOException {
        BufferedImage image = draw(title, train, eval, width, height);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        if (!ImageIO.write(image, "png", tmp.toFile())) {
            throw new IOException("this JDK has no PNG writer, so " + file + " cannot be written");
        }
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The chart as an RGB image of {@code width × height} pixels (at least 320 × 200). */
    public static BufferedImage draw(String title, List<Point> train, List<Point> eval, int width, int height) {
        if (width < 320 || height < 200) {
            throw new IllegalArgumentException("loss chart: " + width + "×" + height + " is too small; use at least 320×200");
        }
        List<Point> tr = train.stream().filter(LossChart::finite).toList();
        List<Point> ev = eval.stream().filter(LossChart::finite).toList();
        double maxStep = 1, lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (List<Point> curve : List.of(tr, ev)) {
            for (Point p : curve) {
                maxStep = Math.max(maxStep, p.step());
                lo = Math.min(lo, p.loss());
                hi = Math.max(hi, p.loss());
            }
        }
        if (lo > hi) {
            lo = 0;
            hi = 1;
        } else if (hi - lo < 1e-3) {
            lo -= 0.5;
            hi += 0.5;
        }
        double yStep = niceStep((hi - lo) / 5);
        double yLo = Math.floor(lo / yStep) * yStep;
        double yHi = Math.ceil(hi / yStep) * yStep;
        double xStep = niceStep(maxStep / 8);
        double xHi = Math.ceil(maxStep / xStep) * xStep;
        Axes ax = new Axes(LEFT, TOP, width - LEFT - RIGHT, height - TOP - BOTTOM, xHi, yLo, yHi);

        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            ticks(g, ax, xStep, yStep);
            g.setColor(Color.BLACK);
            g.setStroke(new BasicStroke(1.5f));
            g.drawRect(ax.x, ax.y, ax.w, ax.h);
            int scale = PixelFont.width(title, 3) <= width - 80 ? 3 : 2;
            PixelFont.draw(g, title, (width - PixelFont.width(title, scale)) / 2, 12, scale);
            PixelFont.draw(g, "step", ax.x + (ax.w - PixelFont.width("step", 2)) / 2, height - 24, 2);
            PixelFont.draw(g, "loss", 8, ax.y - 28, 2);
            g.setClip(ax.x, ax.y, ax.w + 1, ax.h + 1);
            curve(g, ax, tr, TRAIN, 1.2f, false);
            curve(g, ax, ev, EVAL, 2.2f, true);
            g.setClip(null);
            legend(g, ax, !tr.isEmpty(), !ev.isEmpty());
        } finally {
            g.dispose();
        }
        return image;
    }

    /** The plot area in pixels and the data ranges it shows (x from 0). */
    private record Axes(int x, int y, int w, int h, double xHi, double yLo, double yHi) {
        double px(double step) {
            return x + w * step / xHi;
        }

        double py(double loss) {
            return y + h * (yHi - loss) / (yHi - yLo);
        }
    }

    private static void ticks(Graphics2D g, Axes ax, double xStep, double yStep) {
        g.setStroke(new BasicStroke(1f));
        for (int i = 0; i * xStep <= ax.xHi + xStep * 1e-9; i++) {
            int px = (int) Math.round(ax.px(i * xStep));
            g.setColor(GRID);
            g.drawLine(px, ax.y, px, ax.y + ax.h);
            g.setColor(Color.BLACK);
            g.drawLine(px, ax.y + ax.h, px, ax.y + ax.h + 5);
            String label = label(i * xStep, xStep);
            PixelFont.draw(g, label, px - PixelFont.width(label, 2) / 2, ax.y + ax.h + 10, 2);
        }
        for (int i = 0; ax.yLo + i * yStep <= ax.yHi + yStep * 1e-9; i++) {
            double v = ax.yLo + i * yStep;
            int py = (int) Math.round(ax.py(v));
            g.setColor(GRID);
            g.drawLine(ax.x, py, ax.x + ax.w, py);
            g.setColor(Color.BLACK);
            g.drawLine(ax.x - 5, py, ax.x, py);
            String label = label(v, yStep);
            PixelFont.draw(g, label, ax.x - 10 - PixelFont.width(label, 2), py - PixelFont.HEIGHT, 2);
        }
    }

    private static void curve(Graphics2D g, Axes ax, List<Point> points, Color color, float width, boolean markers) {
        if (points.isEmpty()) {
            return;
        }
        g.setColor(color);
        g.setStroke(new BasicStroke(width, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
        Path2D.Double path = new Path2D.Double();
        path.moveTo(ax.px(points.getFirst().step()), ax.py(points.getFirst().loss()));
        for (Point p : points) {
            path.lineTo(ax.px(p.step()), ax.py(p.loss()));
        }
        g.draw(path);
        if (markers) {
            for (Point p : points) {
                g.fillRect((int) Math.round(ax.px(p.step())) - 3, (int) Math.round(ax.py(p.loss())) - 3, 7, 7);
            }
        }
    }

    private static void legend(Graphics2D g, Axes ax, boolean train, boolean eval) {
        int x = ax.x + ax.w - 190;
        int y = ax.y + 12;
        for (int i = 0; i < 2; i++) {
            if (i == 0 ? !train : !eval) {
                continue;
            }
            g.setColor(i == 0 ? TRAIN : EVAL);
            g.fillRect(x, y + 5, 28, 4);
            g.setColor(Color.BLACK);
            PixelFont.draw(g, i == 0 ? "train loss" : "eval loss", x + 38, y, 2);
            y += 24;
        }
    }

    /** 1, 2 or 5 times a power of ten, at least {@code raw}. */
    static double niceStep(double raw) {
        double p = Math.pow(10, Math.floor(Math.log10(raw)));
        for (double m : new double[] {1, 2, 5}) {
            if (m * p >= raw * (1 - 1e-9)) {
                return m * p;
            }
        }
        return 10 * p;
    }

    /** A tick value with as many decimals as its step needs ("0.5", "250"). */
    private static String label(double v, double step) {
        int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
        return String.format(Locale.ROOT, "%." + decimals + "f", Math.abs(v) < step * 1e-9 ? 0.0 : v);
    }

    private static boolean finite(Point p) {
        return Double.isFinite(p.step()) && Double.isFinite(p.loss());
    }
}
