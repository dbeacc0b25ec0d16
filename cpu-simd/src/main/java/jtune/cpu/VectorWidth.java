package jtune.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The one width setting every kernel derives its species from: the machine's preferred width, or the
 * width forced with {@code -Djtune.vector.bits=128|256|512} (tests force it down to cover every path).
 */
public final class VectorWidth {
    public static final String PROPERTY = "jtune.vector.bits";

    /** Widest f32 vector the hardware has, in bits. */
    public static final int PREFERRED_BITS = FloatVector.SPECIES_PREFERRED.vectorBitSize();

    /** The width in use, in bits. */
    public static final int BITS = chosen();

    /** f32 species of the width in use. */
    public static final VectorSpecies<Float> F = VectorSpecies.of(float.class, VectorShape.forBitSize(BITS));

    private VectorWidth() {
    }

    private static int chosen() {
        String forced = System.getProperty(PROPERTY);
        if (forced == null || forced.isBlank()) {
            return PREFERRED_BITS;
        }
        String why = SimdBackendProvider.widthProblem(forced);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        return Integer.parseInt(forced.trim());
    }
}
