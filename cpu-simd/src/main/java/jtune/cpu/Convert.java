package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.I;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;
import static jtune.cpu.Simd.S;
import static jtune.cpu.Simd.load;

import java.lang.foreign.MemorySegment;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * Conversion between f32, bf16 and f16, contiguous to contiguous (checked by the caller). Every value passes
 * through its f32 bit pattern in int lanes: a 16-bit load widens to int lanes and to f32 bits, and f32 bits
 * narrow to a 16-bit pattern and store. Widening is exact; narrowing rounds to nearest even, so the result is
 * the single rounding the scalar oracle makes ({@link Tensor#toBf16}, {@link Float#floatToFloat16}) and agrees
 * with it bit for bit, NaN payloads included. The JDK's Vector API has no half-float conversion, so the f16
 * formats are done with integer operations. bf16 → bf16 and f16 → f16 pass through f32 too, as in the oracle (a
 * signalling NaN comes out quiet); f32 → f32 is a plain copy. One load/convert/store per step, a scalar tail; split
 * by {@link Chunks#elements}.
 */
final class Convert {
    private Convert() {
    }

    static void convert(WorkerPool pool, Tensor src, Tensor dst) {
        DType from = src.dtype(), to = dst.dtype();
        MemorySegment ss = src.segment(), sd = dst.segment();
        long so = src.byteOffset(), dO = dst.byteOffset(), n = src.size();
        if (from == DType.F32 && to == DType.F32) {
            Elementwise.copyBytes(pool, ss, so, sd, dO, n, 4);
            return;
        }
        int sb = from.byteSize(), db = to.byteSize();
        Chunks.elements(pool, n, (st, c) -> {
            long a = so + st * sb, b = dO + st * db;
            switch (from) {
                case F32 -> {
                    if (to == DType.BF16) {
                        toBf16(ss, a, sd, b, c);
                    } else {
                        toF16(ss, a, sd, b, c);
                    }
                }
                case BF16 -> {
                    if (to == DType.F32) {
                        fromBf16(ss, a, sd, b, c);
                    } else {
                        between16(from, ss, a, to, sd, b, c);
                    }
                }
                default -> {
                    if (to == DType.F32) {
                        fromF16(ss, a, sd, b, c);
                    } else {
                        between16(from, ss, a, to, sd, b, c);
                    }
                }
            }
        });
    }

    // One loop per direction, so that C2 compiles each with its own types (one shared loop over all directions ran
    // 2–8× slower once it had seen several of them). Tails convert one element at a time with the oracle's own
    // scalar conversions (Tensor.load/store), which the vector code matches bit for bit.

    private static void toBf16(MemorySegment s, long so, MemorySegment d, long dO, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            storeShorts(f32ToBf16(load(s, so + 4L * i).reinterpretAsInts()), d, dO + 2L * i);
        }
        tail(DType.F32, s, so, DType.BF16, d, dO, i, n);
    }

    private static void toF16(MemorySegment s, long so, MemorySegment d, long dO, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            storeShorts(f32ToF16(load(s, so + 4L * i).reinterpretAsInts()), d, dO + 2L * i);
        }
        tail(DType.F32, s, so, DType.F16, d, dO, i, n);
    }

    private static void fromBf16(MemorySegment s, long so, MemorySegment d, long dO, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            IntVector bits = loadShorts(s, so + 2L * i).lanewise(VectorOperators.LSHL, 16);
            bits.reinterpretAsFloats().intoMemorySegment(d, dO + 4L * i, ORDER);
        }
        tail(DType.BF16, s, so, DType.F32, d, dO, i, n);
    }

    private static void fromF16(MemorySegment s, long so, MemorySegment d, long dO, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            f16ToF32(loadShorts(s, so + 2L * i)).reinterpretAsFloats().intoMemorySegment(d, dO + 4L * i, ORDER);
        }
        tail(DType.F16, s, so, DType.F32, d, dO, i, n);
    }

    /** bf16 or f16 to bf16 or f16 through the f32 bits (rare: one loop for the four directions). */
    private static void between16(DType from, MemorySegment s, long so, DType to, MemorySegment d, long dO, int n) {
        int i = 0;
        for (int bound = F.loopBound(n); i < bound; i += L) {
            IntVector h = loadShorts(s, so + 2L * i);
            IntVector bits = from == DType.BF16 ? h.lanewise(VectorOperators.LSHL, 16) : f16ToF32(h);
            storeShorts(to == DType.BF16 ? f32ToBf16(bits) : f32ToF16(bits), d, dO + 2L * i);
        }
        tail(from, s, so, to, d, dO, i, n);
    }

    /** Elements i .. n−1, one at a time. */
    private static void tail(DType from, MemorySegment s, long so, DType to, MemorySegment d, long dO, int i, int n) {
        long se = so / from.byteSize(), de = dO / to.byteSize();
        for (; i < n; i++) {
            Tensor.store(d, to, de + i, Tensor.load(s, from, se + i));
        }
    }

    /** L 16-bit patterns, zero-extended to int lanes. */
    private static IntVector loadShorts(MemorySegment s, long off) {
        ShortVector h = ShortVector.fromMemorySegment(S, s, off, ORDER);
        return (IntVector) h.convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
    }

    /** Stores the low 16 bits of each int lane. */
    private static void storeShorts(IntVector h, MemorySegment s, long off) {
        ((ShortVector) h.convertShape(VectorOperators.I2S, S, 0)).intoMemorySegment(s, off, ORDER);
    }

    /**
     * f32 bits → bf16 bits (low 16 of each lane): add 0x7fff plus the lowest kept bit and drop 16 bits (round to
     * nearest even; a carry into the exponent gives the next binade or ∞); a NaN keeps its top bits with the
     * quiet bit set.
     */
    private static IntVector f32ToBf16(IntVector b) {
        IntVector high = b.lanewise(VectorOperators.LSHR, 16);
        IntVector rounded = b.add(high.and(1)).add(0x7fff).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = b.and(0x7fffffff).compare(VectorOperators.GT, 0x7f800000);
        return rounded.blend(high.or(0x40), nan);
    }

    /**
     * f32 bits → f16 bits (low 16 of each lane), round to nearest even. Normal results: rebias the exponent by
     * −112, add 0xfff plus the lowest kept bit, drop 13 bits; a carry rounds up into the next binade and, past
     * 65504, into ∞ (0x7c00), the cap for every larger magnitude. Below 2⁻¹⁴ (subnormal f16): |x| + 0.5 in f32
     * rounds to a multiple of 2⁻²⁴, the f16 subnormal step, so its low mantissa bits are the f16 pattern. NaN:
     * the top 10 mantissa bits with the quiet bit set. The sign is copied.
     */
    private static IntVector f32ToF16(IntVector b) {
        IntVector a = b.and(0x7fffffff);
        IntVector normal = a.add(a.lanewise(VectorOperators.LSHR, 13).and(1)).add(0xfff - 0x38000000)
                .lanewise(VectorOperators.LSHR, 13).min(0x7c00);
        IntVector tiny = a.reinterpretAsFloats().add(0.5f).reinterpretAsInts().sub(0x3f000000);
        IntVector h = normal.blend(tiny, a.compare(VectorOperators.LT, 0x38800000));
        IntVector nan = a.lanewise(VectorOperators.LSHR, 13).and(0x3ff).or(0x7e00);
        h = h.blend(nan, a.compare(VectorOperators.GT, 0x7f800000));
        return h.or(b.lanewise(VectorOperators.LSHR, 16).and(0x8000));
    }

    /**
     * f16 bits (zero-extended) → f32 bits, exact. The 15 magnitude bits shifted left by 13 line up with f32's
     * exponent and mantissa: a normal rebiases its exponent by +112, ∞/NaN by +224 (a NaN also gets the quiet
     * bit), a subnormal or zero is its mantissa × 2⁻²⁴, converted as an integer. The sign is copied.
     */
    private static IntVector f16ToF32(IntVector h) {
        IntVector exponent = h.and(0x7c00);
        IntVector shifted = h.and(0x7fff).lanewise(VectorOperators.LSHL, 13);
        IntVector bits = shifted.add(0x38000000);
        bits = bits.blend(shifted.add(0x70000000), exponent.compare(VectorOperators.EQ, 0x7c00));
        bits = bits.lanewise(VectorOperators.OR, 0x00400000, h.and(0x7fff).compare(VectorOperators.GT, 0x7c00));
        FloatVector sub = ((FloatVector) h.and(0x3ff).convert(VectorOperators.I2F, 0)).mul(0x1p-24f);
        bits = bits.blend(sub.reinterpretAsInts(), exponent.compare(VectorOperators.EQ, 0));
        return bits.or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16));
    }
}
