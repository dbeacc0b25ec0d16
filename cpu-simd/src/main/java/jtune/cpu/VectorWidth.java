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

    /** Null when {@code value} is a width this machine can use; otherwise the reason it cannot. */
    static String problem(String value) {
        int bits;
        try {
            bits = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            return "-D" + PROPERTY + "=" + value + " is not a number; use 128, 256 or 512";
        }
        if (bits != 128 && bits != 256 && bits != 512) {
            return "-D" + PROPERTY + "=" + bits + " is not a vector width; use 128, 256 or 512";
        }
        if (bits > PREFERRED_BITS) {
            return "-D" + PROPERTY + "=" + bits + " is wider than this CPU's " + PREFERRED_BITS + "-bit vectors";
        }
        return null;
    }

    private static int chosen() {
        String forced = System.getProperty(PROPERTY);
        if (forced == null || forced.isBlank()) {
            return PREFERRED_BITS;
        }
        String why = problem(forced);
        if (why != null) {
            throw new IllegalArgumentException(why);
        }
        return Integer.parseInt(forced.trim());
    }
}
