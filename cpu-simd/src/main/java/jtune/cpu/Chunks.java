package jtune.cpu;

import jtune.engine.util.WorkerPool;

/**
 * How the kernels split their work over the {@link WorkerPool}: into chunks whose size depends on the problem
 * only, never on the number of threads, so every result (partial sums included) is the same with any number of
 * threads. Work of one chunk runs on the calling thread, without the pool.
 */
final class Chunks {
    /** Elements per task: 64 Ki (256 KiB of f32 per operand), so the pool's hand-off is lost in the work. */
    static final int ELEMENTS = 1 << 16;

    /** {@code count} consecutive elements or rows from {@code start}. */
    @FunctionalInterface
    interface Span {
        void run(long start, int count);
    }

    /** A span that yields one number: a partial sum, a partial maximum. */
    @FunctionalInterface
    interface Partial {
        double run(long start, int count);
    }

    private Chunks() {
    }

    /** Runs {@code body} over elements {@code [0, n)}, {@link #ELEMENTS} per task. */
    static void elements(WorkerPool pool, long n, Span body) {
        spans(pool, n, ELEMENTS, body);
    }

    /** The results of {@code body} over elements {@code [0, n)}, {@link #ELEMENTS} per task, in order. */
    static double[] partials(WorkerPool pool, long n, Partial body) {
        return partials(pool, n, ELEMENTS, body);
    }

    /** Rows per task for rows of {@code cols} elements: whole rows, {@link #ELEMENTS} elements or more. */
    static int rowsPerTask(long cols) {
        return (int) Math.max(1, ELEMENTS / Math.max(cols, 1));
    }

    /** Runs {@code body} over rows {@code [0, rows)} of {@code cols} elements, {@link #rowsPerTask} per task. */
    static void rows(WorkerPool pool, long rows, long cols, Span body) {
        spans(pool, rows, rowsPerTask(cols), body);
    }

    /** The results of {@code body} over rows {@code [0, rows)}, {@link #rowsPerTask} per task, in order. */
    static double[] rowPartials(WorkerPool pool, long rows, long cols, Partial body) {
        return partials(pool, rows, rowsPerTask(cols), body);
    }

    /** Tasks that {@link #rows} and {@link #rowPartials} make; task {@code t} starts at row {@code t · rowsPerTask}. */
    static int rowTasks(long rows, long cols) {
        return tasks(rows, rowsPerTask(cols));
    }

    private static void spans(WorkerPool pool, long n, int per, Span body) {
        int tasks = tasks(n, per);
        if (tasks == 1) {
            body.run(0, (int) n);
        } else if (tasks > 1) {
            pool.parallelFor(tasks, t -> {
                long start = (long) t * per;
                body.run(start, (int) Math.min(per, n - start));
            });
        }
    }

    private static double[] partials(WorkerPool pool, long n, int per, Partial body) {
        int tasks = tasks(n, per);
        double[] out = new double[tasks];
        if (tasks == 1) {
            out[0] = body.run(0, (int) n);
        } else if (tasks > 1) {
            pool.parallelFor(tasks, t -> {
                long start = (long) t * per;
                out[t] = body.run(start, (int) Math.min(per, n - start));
            });
        }
        return out;
    }

    private static int tasks(long n, int per) {
        return Math.toIntExact((n + per - 1) / per);
    }
}
