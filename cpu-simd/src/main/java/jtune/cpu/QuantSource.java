package jtune.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.DynamicMap;
import jtune.engine.tensor.Nf4;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/**
 * One {@link QuantizedMatrix} opened for the kernels of {@link QuantKernels}: its geometry as fields, its segments
 * and byte offsets, and fast readers of runs of codes, scales and zero points that decode bf16 and
 * double-quantized absmax values exactly as {@link QuantizedMatrix#scale} and {@link QuantizedMatrix#zero} do.
 */
final class QuantSource {
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED;

    final int rows, cols, groups, bits, mask;
    /** Elements per group; for one group per row, Integer.MAX_VALUE, so that {@code j / width} is 0 everywhere. */
    final int width;
    final boolean nf4;
    final long rowBytes;
    final MemorySegment codes;
    /** Byte offset of code (0, 0)'s run in {@link #codes}. */
    final long codesAt;

    private final DType scaleType;
    private final MemorySegment scales, zeros, absmaxCodes, absmaxScales;
    private final long scalesAt, zerosAt, absmaxCodesAt, absmaxScalesAt;
    private final float absmaxOffset, symmetricZero;

    QuantSource(QuantizedMatrix m) {
        QuantFormat f = m.format();
        rows = m.rows();
        cols = m.cols();
        groups = m.groups();
        bits = f.bits();
        mask = f.maxCode();
        width = f.groupSize() == 0 ? Integer.MAX_VALUE : f.groupSize();
        nf4 = f.kind() == QuantFormat.Kind.NF4;
        rowBytes = m.rowBytes();
        codes = m.codes().segment();
        codesAt = m.codes().offset();
        scaleType = f.scaleType();
        Tensor s = m.scales(), z = m.zeros(), ac = m.absmaxCodes(), as = m.absmaxScales();
        scales = s == null ? null : s.segment();
        scalesAt = s == null ? 0 : s.offset();
        zeros = z == null ? null : z.segment();
        zerosAt = z == null ? 0 : z.offset();
        absmaxCodes = ac == null ? null : ac.segment();
        absmaxCodesAt = ac == null ? 0 : ac.offset();
        absmaxScales = as == null ? null : as.segment();
        absmaxScalesAt = as == null ? 0 : as.offset();
        absmaxOffset = m.absmaxOffset() == null ? 0f : m.absmaxOffset().get(0);
        symmetricZero = f.kind() == QuantFormat.Kind.INT ? f.symmetricZero() : 0f;
    }

    /** Byte offset in {@link #codes} of the run (8 codes) {@code run} of row {@code row}. */
    long runAt(int row, int run) {
        return codesAt + row * rowBytes + (long) run * bits;
    }

    /** The {@code bits} bytes of the run at byte offset {@code at}, as a little-endian integer. */
    long run(long at) {
        return switch (bits) {
            case 2 -> codes.get(SHORT, at) & 0xffffL;
            case 3 -> (codes.get(SHORT, at) & 0xffffL) | (codes.get(BYTE, at + 2) & 0xffL) << 16;
            case 4 -> codes.get(INT, at) & 0xffffffffL;
            default -> codes.get(LONG, at);
        };
    }

    /** The code of element (row, col). */
    int code(int row, int col) {
        return (int) (run(runAt(row, col >>> 3)) >>> ((col & 7) * bits)) & mask;
    }

    /** The f32 scale (INT) or absmax (NF4) of group k of row {@code row}. */
    float scale(int row, int k) {
        long n = (long) row * groups + k;
        if (scales != null) {
            return scaleType == DType.F32 ? scales.getAtIndex(FLOAT, scalesAt + n)
                    : Float.intBitsToFloat((scales.getAtIndex(ValueLayout.JAVA_SHORT, scalesAt + n) & 0xffff) << 16);
        }
        float code = DynamicMap.value(absmaxCodes.get(BYTE, absmaxCodesAt + n) & 0xff);
        float product = code * absmaxScales.getAtIndex(FLOAT, absmaxScalesAt + n / QuantFormat.DOUBLE_QUANT_BLOCK);
        return product + absmaxOffset;
    }

    /** The zero point of group k of row {@code row} (INT formats). */
    float zero(int row, int k) {
        if (zeros == null) {
            return symmetricZero;
        }
        long n = (long) row * groups + k;
        return scaleType == DType.F32 ? zeros.getAtIndex(FLOAT, zerosAt + n)
                : Float.intBitsToFloat((zeros.getAtIndex(ValueLayout.JAVA_SHORT, zerosAt + n) & 0xffff) << 16);
    }

    /** {@code dst[r · groups + k] = scale(row + r, k)} for every group of {@code count} consecutive rows. */
    void scales(int row, int count, float[] dst) {
        int n = count * groups;
        if (scales != null && scaleType == DType.F32) {
            MemorySegment.copy(scales, FLOAT, (scalesAt + (long) row * groups) * Float.BYTES, dst, 0, n);
            return;
        }
        for (int e = 0; e < n; e++) {
            dst[e] = scale(row + e / groups, e % groups);
        }
    }

    /** {@code dst[r · groups + k] = zero(row + r, k)} for every group of {@code count} consecutive rows (INT). */
    void zeros(int row, int count, float[] dst) {
        int n = count * groups;
        if (zeros != null && scaleType == DType.F32) {
            MemorySegment.copy(zeros, FLOAT, (zerosAt + (long) row * groups) * Float.BYTES, dst, 0, n);
            return;
        }
        for (int e = 0; e < n; e++) {
            dst[e] = zero(row + e / groups, e % groups);
        }
    }

    /**
     * The value of each code of group k of row {@code row} (2^bits entries): {@code s · (q − z)} or
     * {@code NF4[q] · absmax}, the f32 values of {@link QuantizedMatrix#weight}; unscaled, {@code q − z} (INT only).
     */
    void table(int row, int k, boolean scaled, float[] t) {
        if (nf4) {
            float a = scale(row, k);
            for (int q = 0; q <= mask; q++) {
                t[q] = Nf4.value(q) * a;
            }
            return;
        }
        float s = scale(row, k), z = zero(row, k);
        for (int q = 0; q <= mask; q++) {
            t[q] = scaled ? s * (q - z) : q - z;
        }
    }
}
