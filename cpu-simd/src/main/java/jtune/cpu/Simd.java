package jtune.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * What the kernels share: the species of {@link VectorWidth}, f32 loads and scalar accesses at byte offsets of a
 * segment (native byte order, the order of {@link jtune.engine.tensor.Tensor}'s own accessors), and exp and sigmoid
 * as vector kernels with scalar twins.
 *
 * <p>Every kernel is a vector body over whole vectors and a scalar tail that performs the same f32 operations as one
 * lane (FMA for FMA, the scalar twin of exp for exp), so each element's result is the same wherever it falls and
 * whatever the width. Three rules keep C2 from boxing vectors, each measured: a loop's vectors start from locals
 * ({@code FloatVector.zero(F)}), never from a {@code static final} vector (a sum ran 3× slower); no masks in loops
 * (masked segment loads cost about 3 ns a vector, and a masked loop around exp allocated); and the vector work of a
 * loop sits in the loop's own method, with only small helpers called (a larger step method that C2 had compiled on
 * its own first was left out of line, and its vectors were boxed on every call).
 */
final class Simd {
    /** f32 lanes of the width in use. */
    static final VectorSpecies<Float> F = VectorWidth.F;
    /** Lanes per f32 vector. */
    static final int L = F.length();
    /** int32 lanes, as many as {@link #F} (the same shape). */
    static final VectorSpecies<Integer> I = F.withLanes(int.class);
    /** int16 lanes, as many as {@link #F} (half the shape): the storage of bf16 and f16. */
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(VectorWidth.BITS / 2));
    /** f64 lanes of the same shape (L/2 of them): partial sums are carried in these, lane by lane. */
    static final VectorSpecies<Double> D = VectorSpecies.of(double.class, VectorShape.forBitSize(VectorWidth.BITS));
    static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** Elements summed in f32 lanes before they are widened into the f64 partial sums (a multiple of 8·L). */
    static final int BLOCK = 1024;

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final float LOG2E = 1.44269504088896341f;
    /** ln 2 split for Cody–Waite: LN2_HI has 16 significant bits, so n·LN2_HI is exact for |n| ≤ 256. */
    private static final float LN2_HI = 0.693145751953125f;
    private static final float LN2_LO = 1.42860682030941723e-6f;
    /** 1.5·2²³: adding it rounds a float of magnitude below 2²² to an integer held in the low mantissa bits. */
    private static final float ROUNDER = 12582912f;

    private Simd() {
    }

    /**
     * The first L entries of {@code lanes} (a vector stored there), added in lane order. reduceLanes(ADD) adds in a
     * tree once C2 has compiled it and in lane order before, so its result would depend on the JIT's state: the same
     * product would give one result on its first calls and another once warm.
     */
    static float laneSum(float[] lanes) {
        float s = 0f;
        for (int i = 0; i < L; i++) {
            s += lanes[i];
        }
        return s;
    }

    /** The lanes of v added in lane order ({@link #laneSum(float[])}), stored through {@code lanes} (L floats or more). */
    static float laneSum(FloatVector v, float[] lanes) {
        v.intoArray(lanes, 0);
        return laneSum(lanes);
    }

    static FloatVector load(MemorySegment s, long byteOffset) {
        return FloatVector.fromMemorySegment(F, s, byteOffset, ORDER);
    }

    static float get(MemorySegment s, long byteOffset) {
        return s.get(F32, byteOffset);
    }

    static void set(MemorySegment s, long byteOffset, float v) {
        s.set(F32, byteOffset, v);
    }

    /**
     * e^x per lane. x = n·ln2 + r with n = round(x·log2 e) and |r| ≤ ln2/2 (Cody–Waite, two FMAs); e^r by its Taylor
     * polynomial to r⁷ (truncation error below 6e-9 relative), evaluated as 2·e^r so that the scale is 2^(n−1), which
     * stays a normal float for every n the range allows; the product is then exact scaling. Error below 1 ulp against
     * {@link Math#exp} (0.92 ulp at most over 3.2e8 points of [−86.98, 88.72]). x &lt; −86.98 gives 0 (the true value
     * is below 1.7e-38), x &gt; 88.8 gives +∞, NaN gives NaN.
     */
    static FloatVector exp(FloatVector x) {
        FloatVector t = x.fma(LOG2E, ROUNDER);
        FloatVector n = t.sub(ROUNDER);
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = r.fma(2f / 5040, 2f / 720);
        p = p.fma(r, FloatVector.broadcast(F, 2f / 120));
        p = p.fma(r, FloatVector.broadcast(F, 2f / 24));
        p = p.fma(r, FloatVector.broadcast(F, 2f / 6));
        p = p.fma(r, FloatVector.broadcast(F, 1f));
        p = p.fma(r, FloatVector.broadcast(F, 2f));
        p = p.fma(r, FloatVector.broadcast(F, 2f));
        IntVector scale = t.reinterpretAsInts().add(126).lanewise(VectorOperators.LSHL, 23);
        FloatVector e = p.mul(scale.reinterpretAsFloats());
        e = e.blend(0f, x.compare(VectorOperators.LT, -86.98f));
        return e.blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 88.8f));
    }

    /** The scalar twin of {@link #exp(FloatVector)}: the same operations, so it equals a lane bit for bit. */
    static float exp(float x) {
        if (x < -86.98f) {
            return 0f;
        }
        if (x > 88.8f) {
            return Float.POSITIVE_INFINITY;
        }
        float t = Math.fma(x, LOG2E, ROUNDER);
        float n = t - ROUNDER;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, 2f / 5040, 2f / 720);
        p = Math.fma(p, r, 2f / 120);
        p = Math.fma(p, r, 2f / 24);
        p = Math.fma(p, r, 2f / 6);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 2f);
        p = Math.fma(p, r, 2f);
        return p * Float.intBitsToFloat((Float.floatToRawIntBits(t) + 126) << 23);
    }

    /** σ(x) = 1 / (1 + e^−x) per lane, with {@link #exp}: 0 below x = −88.8, 1 above x = 86.98 (to within f32). */
    static FloatVector sigmoid(FloatVector x) {
        return FloatVector.broadcast(F, 1f).div(exp(x.neg()).add(1f));
    }

    /** The scalar twin of {@link #sigmoid(FloatVector)}. */
    static float sigmoid(float x) {
        return 1f / (exp(-x) + 1f);
    }
}
