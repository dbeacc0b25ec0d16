package jtune.cpu;

import jdk.incubator.vector.FloatVector;
import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.BackendProvider;

/**
 * Provides {@link SimdBackend}. Only {@link #widthProblem} names an incubator type, and it runs after the
 * module is known to be present, so asking whether this backend can run is safe on a JVM started without
 * {@code --add-modules jdk.incubator.vector}.
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
            return widthProblem(forced);
        }
        return null;
    }

    @Override
    public Backend create(BackendOptions options) {
        return new SimdBackend(options.resolvedThreads());
    }

    /**
     * Null when {@code value} of {@code -Djtune.vector.bits} is a width this machine can use; otherwise the
     * reason it cannot. Kept here, not in {@link VectorWidth}, so that asking does not run VectorWidth's
     * initialisation, which fails on a bad width.
     */
    static String widthProblem(String value) {
        String p = "-D" + VectorWidth.PROPERTY + "=" + value;
        int bits;
        try {
            bits = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            return p + " is not a number; use 128, 256 or 512";
        }
        if (bits != 128 && bits != 256 && bits != 512) {
            return p + " is not a vector width; use 128, 256 or 512";
        }
        int preferred = FloatVector.SPECIES_PREFERRED.vectorBitSize();
        if (bits > preferred) {
            return p + " is wider than this CPU's " + preferred + "-bit vectors";
        }
        return null;
    }
}
