package jtune.engine.train;

import java.io.PrintStream;
import java.util.Locale;
import jtune.engine.tensor.MemoryLedger;

/**
 * The trainer's report on stderr. On a terminal it is one line redrawn in place (a bar, the step, loss,
 * learning rate, tokens per second, time left and the ledger's peak memory); elsewhere (a pipe, a log file)
 * it degrades to plain lines, about twenty over the run plus the first and last step. Messages and eval
 * results are always whole lines.
 */
public final class Progress {
    private static final int BAR = 24;

    private final PrintStream err;
    private final boolean terminal;
    private int drawn;

    /** {@code terminal}: redraw one line in place (see {@link #stderrIsTerminal()}); else print plain lines. */
    public Progress(PrintStream err, boolean terminal) {
        this.err = err;
        this.terminal = terminal;
    }

    /**
     * Whether the JVM runs on an interactive terminal ({@link java.io.Console#isTerminal()}: standard input and
     * output are both a terminal), where a bar redrawn in place on stderr is welcome.
     */
    public static boolean stderrIsTerminal() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal();
    }

    /** What one training step reports. */
    public record Step(long step, long total, float loss, float lr, double tokensPerSecond, double etaSeconds,
                       long peakBytes) {
    }

    public void step(Step s) {
        if (terminal) {
            int filled = (int) (BAR * s.step() / Math.max(1, s.total()));
            String bar = "#".repeat(filled) + ".".repeat(BAR - filled);
            String line = String.format(Locale.ROOT, "[%s] %s", bar, text(s));
            err.print("\r" + line + " ".repeat(Math.max(0, drawn - line.length())));
            err.flush();
            drawn = line.length();
        } else {
            long every = Math.max(1, s.total() / 20);
            if (s.step() == 1 || s.step() % every == 0 || s.step() == s.total()) {
                err.println(text(s));
            }
        }
    }

    private static String text(Step s) {
        return String.format(Locale.ROOT, "step %d/%d  loss %.4f  lr %.2e  %.0f tok/s  eta %s  peak %s", s.step(),
                s.total(), s.loss(), s.lr(), s.tokensPerSecond(), duration(s.etaSeconds()),
                MemoryLedger.human(s.peakBytes()));
    }

    /** A whole line, below the bar if one is drawn. */
    public void message(String line) {
        clear();
        err.println(line);
    }

    /** Ends the bar's line so that what follows starts on a fresh one. */
    public void finish() {
        clear();
    }

    private void clear() {
        if (terminal && drawn > 0) {
            err.println();
            drawn = 0;
        }
    }

    /** "45s", "3m07s", "2h05m". */
    public static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) {
            return "?";
        }
        long s = Math.round(seconds);
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
        }
        return String.format(Locale.ROOT, "%dh%02dm", s / 3600, s % 3600 / 60);
    }
}
