package jtune.engine.backend;

/**
 * What the user asked for: a backend by name ("auto" picks the best usable one) and the thread count
 * (0 means all cores).
 */
public record BackendOptions(String backend, int threads) {
    public static final BackendOptions DEFAULT = new BackendOptions("auto", 0);

    public BackendOptions {
        if (threads < 0) {
            throw new IllegalArgumentException("--threads must be 0 (all cores) or more, got " + threads);
        }
    }

    /** The thread count to use: {@link #threads()}, or the number of cores when it is 0. */
    public int resolvedThreads() {
        return threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
    }
}
