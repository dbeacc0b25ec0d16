package jtune.engine.backend;

import jtune.engine.tensor.Device;

/**
 * What the user asked for: a backend by name ("auto" picks the best usable one), the thread count (0 means all
 * cores), and the device: "cpu", "cuda", or "auto" (the best usable backend of either).
 */
public record BackendOptions(String backend, int threads, String device) {
    public static final BackendOptions DEFAULT = new BackendOptions("auto", 0);

    public BackendOptions {
        if (threads < 0) {
            throw new IllegalArgumentException("--threads must be 0 (all cores) or more, got " + threads);
        }
        if (!device.equals("auto") && !device.equals("cpu") && !device.equals("cuda")) {
            throw new IllegalArgumentException("--device must be auto, cpu or cuda, got '" + device + "'");
        }
    }

    /** Any device. */
    public BackendOptions(String backend, int threads) {
        this(backend, threads, "auto");
    }

    /** True when {@code kind} is a device these options allow. */
    public boolean allows(Device.Kind kind) {
        return device.equals("auto") || device.equals(kind.name().toLowerCase(java.util.Locale.ROOT));
    }

    /** The thread count to use: {@link #threads()}, or the number of cores when it is 0. */
    public int resolvedThreads() {
        return threads == 0 ? Runtime.getRuntime().availableProcessors() : threads;
    }
}
