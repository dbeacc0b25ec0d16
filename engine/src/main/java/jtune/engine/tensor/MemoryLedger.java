package jtune.engine.tensor;

import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;

/**
 * Every byte of tensor storage, by {@link Category}: current and peak bytes per category, and the peak of
 * the total. Allocation and release go through {@link #allocated} and {@link #released}; the pools call
 * them, nothing else should. Thread-safe.
 */
public final class MemoryLedger {
    private final long[] current = new long[Category.values().length];
    private final long[] peak = new long[Category.values().length];
    private long total;
    private long totalPeak;

    public synchronized void allocated(Category category, long bytes) {
        int i = category.ordinal();
        current[i] += bytes;
        peak[i] = Math.max(peak[i], current[i]);
        total += bytes;
        totalPeak = Math.max(totalPeak, total);
    }

    public synchronized void released(Category category, long bytes) {
        int i = category.ordinal();
        if (bytes > current[i]) {
            throw new IllegalStateException("ledger: releasing " + bytes + " bytes of " + category.label()
                    + " but only " + current[i] + " are recorded");
        }
        current[i] -= bytes;
        total -= bytes;
    }

    public synchronized long current(Category category) {
        return current[category.ordinal()];
    }

    public synchronized long peak(Category category) {
        return peak[category.ordinal()];
    }

    public synchronized long currentTotal() {
        return total;
    }

    /** Peak of the sum over all categories (not the sum of the per-category peaks). */
    public synchronized long peakTotal() {
        return totalPeak;
    }

    /** A snapshot of the current bytes per category. */
    public synchronized Map<Category, Long> snapshot() {
        Map<Category, Long> m = new EnumMap<>(Category.class);
        for (Category c : Category.values()) {
            m.put(c, current[c.ordinal()]);
        }
        return m;
    }

    /** The ledger as a text table: one row per category, then the total. */
    public synchronized String table() {
        StringBuilder sb = new StringBuilder();
        String fmt = "%-22s %12s %12s%n";
        sb.append(String.format(Locale.ROOT, fmt, "category", "current", "peak"));
        for (Category c : Category.values()) {
            sb.append(String.format(Locale.ROOT, fmt, c.label(), human(current[c.ordinal()]), human(peak[c.ordinal()])));
        }
        sb.append(String.format(Locale.ROOT, fmt, "total", human(total), human(totalPeak)));
        return sb.toString();
    }

    /** Bytes in binary units with three significant digits ("1.50 MiB"). */
    public static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, units[u]);
    }
}
