package jtune.cpu;

import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.BackendProvider;

/**
 * Provides {@link SimdBackend}. This class names no incubator type, so that asking it whether it can run
 * is safe on a JVM started without {@code --add-modules jdk.incubator.vector}.
 */
public final class SimdBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "cpu-simd";
    }

    @Override
    public int priority() {
        return 200;
    }

    @Override
    public String unavailableReason() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return "the JVM was started without --add-modules jdk.incubator.vector";
        }
        String forced = System.getProperty(VectorWidth.PROPERTY);
        if (forced != null && !forced.isBlank()) {
            return VectorWidth.problem(forced);
        }
        return null;
    }

    @Override
    public Backend create(BackendOptions options) {
        return new SimdBackend(options.resolvedThreads());
    }
}
