package jtune.engine.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A frozen (rows = out, cols = in) weight matrix in a low-bit {@link QuantFormat}; a linear layer computes
 * {@code y = x · dequant(W)ᵀ} from it without ever holding the f32 matrix.
 *
 * <p>Storage, every tensor contiguous:
 * <ul>
 *   <li>{@link #codes()}: u8 (rows, rowBytes), {@code rowBytes = ceil(cols / 8) · bits}. Each run of 8 consecutive
 *       codes of a row takes exactly {@code bits} bytes; code j (0..7) of a run sits at bits [j·b, (j+1)·b) of those
 *       bytes read as one little-endian integer (4 bits: the low nibble is the even element; 8 bits: one byte
 *       each). Codes past cols are 0.</li>
 *   <li>INT: {@link #scales()} (rows, groups) of the format's scale type; asymmetric formats also {@link #zeros()}
 *       (rows, groups) of the same type holding integer-valued zero points; symmetric ones have none and use
 *       z = 2^(bits−1). {@code w = s · (q − z)}.</li>
 *   <li>NF4: {@link #scales()} holds the f32 absmax (rows, groups); {@code w = NF4[q] · absmax}. With double
 *       quantization there is no absmax tensor but, as in bitsandbytes: {@link #absmaxCodes()} u8 (rows, groups),
 *       codes of the signed {@link DynamicMap}; {@link #absmaxScales()} f32 (ceil(rows · groups / 256)), one per
 *       256 consecutive absmax values in row-major order; {@link #absmaxOffset()} f32 (1). The absmax of group k of
 *       row i, with n = i · groups + k, is {@code map[code[n]] · absmaxScales[n / 256] + offset}, both operations
 *       rounded to f32.</li>
 * </ul>
 * The dequantized weight {@link #weight(int, int)} is one f32 product: {@code s · (q − z)} (q − z is exact) or
 * {@code NF4[q] · absmax}; every backend's kernels produce exactly these values when they dequantize.
 *
 * <p>The tensors come from a {@link MemoryPool}, so the ledger counts the true bytes ({@link #bytes()}); this
 * object owns them and {@link #close()} frees them. The element accessors are for quantizers, tests and set-up,
 * not for hot loops.
 */
public final class QuantizedMatrix implements AutoCloseable {
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;

    private final String name;
    private final QuantFormat format;
    private final int rows;
    private final int cols;
    private final int groups;
    private final long rowBytes;
    private final Tensor codes;
    private final Tensor scales;
    private final Tensor zeros;
    private final Tensor absmaxCodes;
    private final Tensor absmaxScales;
    private final Tensor absmaxOffset;

    private QuantizedMatrix(String name, QuantFormat format, int rows, int cols, Tensor codes, Tensor scales,
                            Tensor zeros, Tensor absmaxCodes, Tensor absmaxScales, Tensor absmaxOffset) {
        this.name = name;
        this.format = format;
        this.rows = rows;
        this.cols = cols;
        this.groups = format.groups(cols);
        this.rowBytes = format.rowBytes(cols);
        this.codes = codes;
        this.scales = scales;
        this.zeros = zeros;
        this.absmaxCodes = absmaxCodes;
        this.absmaxScales = absmaxScales;
        this.absmaxOffset = absmaxOffset;
    }

    /** A zero-filled matrix whose tensors are all allocated from {@code pool} as frozen weights. */
    public static QuantizedMatrix allocate(MemoryPool pool, String name, QuantFormat format, long rows, long cols) {
        return allocate(pool, name, format, rows, cols, Category.FROZEN_WEIGHTS);
    }

    /**
     * A zero-filled matrix allocated from {@code pool}: codes and zero points as frozen weights, the scales (or
     * absmax values) under {@code scaleCategory} (PEQA trains the scales: {@link Category#TRAINABLE_PARAMETERS}).
     * Tensors are named {@code name.codes}, {@code name.scales}, {@code name.zeros}, and for NF4 {@code name.absmax},
     * {@code name.absmax_codes}, {@code name.absmax_scales}, {@code name.absmax_offset}.
     */
    public static QuantizedMatrix allocate(MemoryPool pool, String name, QuantFormat format, long rows, long cols,
                                           Category scaleCategory) {
        int r = extent(name, "rows", rows), c = extent(name, "columns", cols);
        long g = format.groups(c);
        Category frozen = Category.FROZEN_WEIGHTS;
        List<Tensor> made = new ArrayList<>();
        try {
            Tensor q = add(made, pool.allocate(name + ".codes", DType.U8, frozen, r, format.rowBytes(c)));
            if (format.kind() == QuantFormat.Kind.INT) {
                Tensor s = add(made, pool.allocate(name + ".scales", format.scaleType(), scaleCategory, r, g));
                Tensor z = format.hasZeros()
                        ? add(made, pool.allocate(name + ".zeros", format.scaleType(), frozen, r, g)) : null;
                return new QuantizedMatrix(name, format, r, c, q, s, z, null, null, null);
            }
            if (!format.doubleQuant()) {
                Tensor a = add(made, pool.allocate(name + ".absmax", DType.F32, scaleCategory, r, g));
                return new QuantizedMatrix(name, format, r, c, q, a, null, null, null, null);
            }
            Tensor ac = add(made, pool.allocate(name + ".absmax_codes", DType.U8, scaleCategory, r, g));
            Tensor as = add(made, pool.allocate(name + ".absmax_scales", DType.F32, scaleCategory,
                    doubleQuantBlocks(r, g)));
            Tensor ao = add(made, pool.allocate(name + ".absmax_offset", DType.F32, scaleCategory, 1));
            return new QuantizedMatrix(name, format, r, c, q, null, null, ac, as, ao);
        } catch (RuntimeException e) {
            made.forEach(Tensor::close);
            throw e;
        }
    }

    /**
     * A matrix over existing tensors (read from a file, say) of an INT format or an NF4 format without double
     * quantization; the matrix takes ownership of them. zeros is null unless the format is asymmetric INT.
     */
    public static QuantizedMatrix of(String name, QuantFormat format, long rows, long cols, Tensor codes,
                                     Tensor scales, Tensor zeros) {
        int r = extent(name, "rows", rows), c = extent(name, "columns", cols);
        if (format.doubleQuant()) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' is " + format
                    + ": a double-quantized matrix is built with ofDoubleQuant, from absmax codes, scales and offset");
        }
        long g = format.groups(c);
        expect(name, "codes", codes, DType.U8, r, format.rowBytes(c));
        expect(name, format.kind() == QuantFormat.Kind.NF4 ? "absmax" : "scales", scales, format.scaleType(), r, g);
        if (format.hasZeros()) {
            expect(name, "zeros", zeros, format.scaleType(), r, g);
        } else if (zeros != null) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' is " + format
                    + ", which has no stored zero points, but a zeros tensor was given; pass null");
        }
        return new QuantizedMatrix(name, format, r, c, codes, scales, zeros, null, null, null);
    }

    /** A double-quantized NF4 matrix over existing tensors; the matrix takes ownership of them. */
    public static QuantizedMatrix ofDoubleQuant(String name, QuantFormat format, long rows, long cols, Tensor codes,
                                                Tensor absmaxCodes, Tensor absmaxScales, Tensor absmaxOffset) {
        int r = extent(name, "rows", rows), c = extent(name, "columns", cols);
        if (!format.doubleQuant()) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' is " + format
                    + ", not double-quantized NF4; build it with of, from codes, scales and zeros");
        }
        long g = format.groups(c);
        expect(name, "codes", codes, DType.U8, r, format.rowBytes(c));
        expect(name, "absmax codes", absmaxCodes, DType.U8, r, g);
        expect(name, "absmax scales", absmaxScales, DType.F32, doubleQuantBlocks(r, g));
        expect(name, "absmax offset", absmaxOffset, DType.F32, 1);
        return new QuantizedMatrix(name, format, r, c, codes, null, null, absmaxCodes, absmaxScales, absmaxOffset);
    }

    public String name() {
        return name;
    }

    public QuantFormat format() {
        return format;
    }

    /** Output features, the rows of W. */
    public int rows() {
        return rows;
    }

    /** Input features, the columns of W. */
    public int cols() {
        return cols;
    }

    /** Groups (scales) per row. */
    public int groups() {
        return groups;
    }

    /** Elements per group: the group size, or cols for one group per row; the last group of a row may be short. */
    public int groupWidth() {
        return format.groupWidth(cols);
    }

    /** Bytes of packed codes per row. */
    public long rowBytes() {
        return rowBytes;
    }

    /** The packed codes, u8 (rows, rowBytes). */
    public Tensor codes() {
        return codes;
    }

    /** INT: the scales (rows, groups); NF4: the f32 absmax (rows, groups); null for double-quantized NF4. */
    public Tensor scales() {
        return scales;
    }

    /** The zero points (rows, groups) of an asymmetric INT format; null otherwise. */
    public Tensor zeros() {
        return zeros;
    }

    /** Double-quantized NF4: the u8 dynamic-map codes of the absmax values (rows, groups); null otherwise. */
    public Tensor absmaxCodes() {
        return absmaxCodes;
    }

    /** Double-quantized NF4: one f32 scale per 256 absmax values; null otherwise. */
    public Tensor absmaxScales() {
        return absmaxScales;
    }

    /** Double-quantized NF4: the f32 offset (1) added to every decoded absmax; null otherwise. */
    public Tensor absmaxOffset() {
        return absmaxOffset;
    }

    /** The tensors this matrix is made of, in the order codes, scales, zeros, absmax codes, scales, offset. */
    public List<Tensor> tensors() {
        List<Tensor> all = new ArrayList<>();
        for (Tensor t : new Tensor[]{codes, scales, zeros, absmaxCodes, absmaxScales, absmaxOffset}) {
            if (t != null) {
                all.add(t);
            }
        }
        return Collections.unmodifiableList(all);
    }

    /** Bytes of storage: the sum over {@link #tensors()}. */
    public long bytes() {
        long b = 0;
        for (Tensor t : tensors()) {
            b += t.dtype().bytesFor(t.size());
        }
        return b;
    }

    /** Code of element (row, col). */
    public int code(int row, int col) {
        check(row, col);
        int b = format.bits();
        int bit = (col & 7) * b;
        long at = codes.offset() + row * rowBytes + (long) (col >>> 3) * b + (bit >>> 3);
        MemorySegment s = codes.segment();
        int v = s.get(BYTE, at) & 0xff;
        if ((bit & 7) + b > 8) {
            v |= (s.get(BYTE, at + 1) & 0xff) << 8;
        }
        return (v >>> (bit & 7)) & format.maxCode();
    }

    /** Sets the code of element (row, col) to q in [0, 2^bits − 1]. Not safe against concurrent writes to a row. */
    public void setCode(int row, int col, int q) {
        check(row, col);
        if (q < 0 || q > format.maxCode()) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' (" + format + ") takes codes from 0 to "
                    + format.maxCode() + ", not " + q);
        }
        int b = format.bits();
        int bit = (col & 7) * b, shift = bit & 7;
        long at = codes.offset() + row * rowBytes + (long) (col >>> 3) * b + (bit >>> 3);
        MemorySegment s = codes.segment();
        boolean two = shift + b > 8;
        int v = (s.get(BYTE, at) & 0xff) | (two ? (s.get(BYTE, at + 1) & 0xff) << 8 : 0);
        v = (v & ~(format.maxCode() << shift)) | (q << shift);
        s.set(BYTE, at, (byte) v);
        if (two) {
            s.set(BYTE, at + 1, (byte) (v >>> 8));
        }
    }

    /** Packs the cols codes {@code q[0..cols)} into row {@code row} (padding codes past cols become 0). */
    public void setRow(int row, int[] q) {
        if (q.length < cols) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' has " + cols + " columns but a row of "
                    + q.length + " codes was given");
        }
        check(row, 0);
        int b = format.bits(), max = format.maxCode();
        long base = codes.offset() + row * rowBytes;
        MemorySegment s = codes.segment();
        for (int run = 0; run * 8 < cols; run++) {
            long word = 0;
            for (int j = 0; j < 8 && run * 8 + j < cols; j++) {
                int v = q[run * 8 + j];
                if (v < 0 || v > max) {
                    throw new IllegalArgumentException("quantized matrix '" + name + "' (" + format
                            + ") takes codes from 0 to " + max + ", not " + v + " (column " + (run * 8 + j) + ")");
                }
                word |= (long) v << (j * b);
            }
            for (int i = 0; i < b; i++) {
                s.set(BYTE, base + (long) run * b + i, (byte) (word >>> (8 * i)));
            }
        }
    }

    /** Unpacks the cols codes of row {@code row} into {@code q[0..cols)}. */
    public void getRow(int row, int[] q) {
        if (q.length < cols) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' has " + cols + " columns but an array of "
                    + q.length + " was given for a row");
        }
        check(row, 0);
        int b = format.bits(), max = format.maxCode();
        long base = codes.offset() + row * rowBytes;
        MemorySegment s = codes.segment();
        for (int run = 0; run * 8 < cols; run++) {
            long word = 0;
            for (int i = 0; i < b; i++) {
                word |= (s.get(BYTE, base + (long) run * b + i) & 0xffL) << (8 * i);
            }
            for (int j = 0; j < 8 && run * 8 + j < cols; j++) {
                q[run * 8 + j] = (int) (word >>> (j * b)) & max;
            }
        }
    }

    /** The f32 scale of group {@code group} of row {@code row}: INT s, NF4 absmax (decoded when double-quantized). */
    public float scale(int row, int group) {
        checkGroup(row, group);
        long n = (long) row * groups + group;
        if (scales != null) {
            return Tensor.load(scales.segment(), scales.dtype(), scales.offset() + n);
        }
        float code = DynamicMap.value(absmaxCodes.segment().get(BYTE, absmaxCodes.offset() + n) & 0xff);
        float blockScale = Tensor.load(absmaxScales.segment(), DType.F32,
                absmaxScales.offset() + n / QuantFormat.DOUBLE_QUANT_BLOCK);
        float offset = Tensor.load(absmaxOffset.segment(), DType.F32, absmaxOffset.offset());
        float product = code * blockScale;
        return product + offset;
    }

    /** The zero point of group {@code group} of row {@code row}: stored (asymmetric INT) or 2^(bits−1) (symmetric). */
    public float zero(int row, int group) {
        checkGroup(row, group);
        if (format.kind() != QuantFormat.Kind.INT) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' is " + format
                    + ", which has no zero points; only integer formats do");
        }
        if (zeros == null) {
            return format.symmetricZero();
        }
        return Tensor.load(zeros.segment(), zeros.dtype(), zeros.offset() + (long) row * groups + group);
    }

    /** {@code out[k] = scale(row, k)} for every group k of the row. */
    public void rowScales(int row, float[] out) {
        for (int k = 0; k < groups; k++) {
            out[k] = scale(row, k);
        }
    }

    /** {@code out[k] = zero(row, k)} for every group k of the row (INT formats only). */
    public void rowZeros(int row, float[] out) {
        for (int k = 0; k < groups; k++) {
            out[k] = zero(row, k);
        }
    }

    /** The dequantized f32 weight at (row, col): {@code s · (q − z)} or {@code NF4[q] · absmax}, one f32 rounding. */
    public float weight(int row, int col) {
        int q = code(row, col), k = col / groupWidth();
        if (format.kind() == QuantFormat.Kind.NF4) {
            return Nf4.value(q) * scale(row, k);
        }
        return scale(row, k) * (q - zero(row, k));
    }

    /** True once closed. */
    public boolean isClosed() {
        return codes.isClosed();
    }

    /** Frees every tensor of the matrix. Idempotent. */
    @Override
    public void close() {
        tensors().forEach(Tensor::close);
    }

    @Override
    public String toString() {
        return "quantized matrix '" + name + "' (" + rows + ", " + cols + ") " + format;
    }

    private void check(int row, int col) {
        if (row < 0 || row >= rows || col < 0 || col >= cols) {
            throw new IndexOutOfBoundsException("element (" + row + ", " + col + ") is outside " + this);
        }
    }

    private void checkGroup(int row, int group) {
        if (row < 0 || row >= rows || group < 0 || group >= groups) {
            throw new IndexOutOfBoundsException("group " + group + " of row " + row + " is outside " + this + ", which has "
                    + groups + " groups per row");
        }
    }

    private static long doubleQuantBlocks(long rows, long groups) {
        return (rows * groups + QuantFormat.DOUBLE_QUANT_BLOCK - 1) / QuantFormat.DOUBLE_QUANT_BLOCK;
    }

    private static Tensor add(List<Tensor> made, Tensor t) {
        made.add(t);
        return t;
    }

    private static int extent(String name, String what, long n) {
        if (n < 1 || n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' must have from 1 to "
                    + Integer.MAX_VALUE + " " + what + ", not " + n);
        }
        return (int) n;
    }

    private static void expect(String name, String what, Tensor t, DType type, long... dims) {
        if (t == null) {
            throw new IllegalArgumentException("quantized matrix '" + name + "' needs its " + what + " tensor, "
                    + type + " " + Shape.of(dims) + ", but none was given");
        }
        t.segment();
        if (t.dtype() != type || !t.shape().equals(Shape.of(dims)) || !t.isContiguous()) {
            throw new IllegalArgumentException("quantized matrix '" + name + "': its " + what + " must be a contiguous "
                    + type + " tensor " + Shape.of(dims) + ", but " + t + (t.isContiguous() ? "" : " (strided)")
                    + " was given");
        }
    }
}
