package jtune.engine.tensor;

/**
 * How a {@link QuantizedMatrix} encodes its weights.
 *
 * <ul>
 *   <li>{@link Kind#INT}: unsigned {@code bits}-bit codes q (2, 3, 4 or 8 bits) with one scale s, and for an
 *       asymmetric format one integer-valued zero point z, per group of {@code groupSize} consecutive elements of a
 *       row; {@code w = s · (q − z)}. A symmetric format stores no zero points: z = 2^(bits−1). groupSize is 32,
 *       64, 128 or 256, or 0 for one group per row (per output channel). Scales and zero points are
 *       stored as {@code scaleType}, f32 or bf16.</li>
 *   <li>{@link Kind#NF4}: 4-bit indexes into the NF4 code book ({@link Nf4}) with one f32 absmax per block of
 *       {@code groupSize} elements of a row (a power of two from 32 to 4096; bitsandbytes' default is 64);
 *       {@code w = NF4[q] · absmax}. With {@code doubleQuant} the absmax values are themselves stored as 8-bit codes
 *       of the signed dynamic map ({@link DynamicMap}) as bitsandbytes does: see {@link QuantizedMatrix}.</li>
 * </ul>
 *
 * @param kind        INT or NF4
 * @param bits        bits per code: 2, 3, 4 or 8 for INT, 4 for NF4
 * @param groupSize   elements of a row per scale (INT: 0 means the whole row)
 * @param symmetric   INT only: no stored zero points, z = 2^(bits−1); false for NF4
 * @param scaleType   storage of INT scales and zero points, {@link DType#F32} or {@link DType#BF16}; F32 for NF4
 * @param doubleQuant NF4 only: the absmax values are 8-bit codes; false for INT
 */
public record QuantFormat(Kind kind, int bits, int groupSize, boolean symmetric, DType scaleType, boolean doubleQuant) {

    /** The two families of formats. */
    public enum Kind {
        /** Uniform integer grid with a scale and a zero point per group. */
        INT,
        /** The NormalFloat-4 code book of QLoRA with a per-block absmax. */
        NF4
    }

    /** bitsandbytes' NF4 block size. */
    public static final int NF4_DEFAULT_BLOCK = 64;
    /** Absmax values per f32 scale of the double quantization. */
    public static final int DOUBLE_QUANT_BLOCK = 256;

    public QuantFormat {
        if (kind == null) {
            throw new IllegalArgumentException("a quantization format needs a kind, INT or NF4");
        }
        if (scaleType != DType.F32 && scaleType != DType.BF16) {
            throw new IllegalArgumentException("quantization scales must be stored as f32 or bf16, not " + scaleType);
        }
        if (kind == Kind.INT) {
            if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
                throw new IllegalArgumentException("integer quantization takes 2, 3, 4 or 8 bits, not " + bits);
            }
            if (groupSize != 0 && groupSize != 32 && groupSize != 64 && groupSize != 128 && groupSize != 256) {
                throw new IllegalArgumentException("integer quantization groups must be 32, 64, 128 or 256 elements,"
                        + " or 0 for one group per row, not " + groupSize);
            }
            if (doubleQuant) {
                throw new IllegalArgumentException("double quantization applies to NF4 absmax values only, not to"
                        + " integer formats");
            }
        } else {
            if (bits != 4) {
                throw new IllegalArgumentException("NF4 codes have 4 bits, not " + bits);
            }
            if (groupSize < 32 || groupSize > 4096 || Integer.bitCount(groupSize) != 1) {
                throw new IllegalArgumentException("NF4 blocks must be a power of two from 32 to 4096 elements, not "
                        + groupSize);
            }
            if (symmetric) {
                throw new IllegalArgumentException("NF4 has no zero point, so it cannot be marked symmetric");
            }
            if (scaleType != DType.F32) {
                throw new IllegalArgumentException("NF4 absmax values are f32, not " + scaleType);
            }
        }
    }

    /** An integer format: {@code bits} of 2/3/4/8, groups of {@code groupSize} (0: per row), f32 or bf16 scales. */
    public static QuantFormat integer(int bits, int groupSize, boolean symmetric, DType scaleType) {
        return new QuantFormat(Kind.INT, bits, groupSize, symmetric, scaleType, false);
    }

    /** NF4 with blocks of {@code blockSize} elements, optionally double-quantized absmax values. */
    public static QuantFormat nf4(int blockSize, boolean doubleQuant) {
        return new QuantFormat(Kind.NF4, 4, blockSize, false, DType.F32, doubleQuant);
    }

    /** Elements per group in a row of {@code cols} elements: groupSize, or cols when groupSize is 0. */
    public int groupWidth(int cols) {
        return groupSize == 0 ? cols : groupSize;
    }

    /** Groups (scales) per row of {@code cols} elements: {@code ceil(cols / groupWidth)}. */
    public int groups(int cols) {
        return groupSize == 0 ? 1 : (cols + groupSize - 1) / groupSize;
    }

    /** Bytes of packed codes per row of {@code cols} elements: {@code ceil(cols / 8) · bits}. */
    public long rowBytes(int cols) {
        return (cols + 7L) / 8 * bits;
    }

    /** The largest code, 2^bits − 1. */
    public int maxCode() {
        return (1 << bits) - 1;
    }

    /** The zero point of a symmetric integer format, 2^(bits−1). */
    public int symmetricZero() {
        return 1 << (bits - 1);
    }

    /** True when the format stores a zero point per group (asymmetric INT). */
    public boolean hasZeros() {
        return kind == Kind.INT && !symmetric;
    }

    /** A short label: "int4 g128 asym bf16", "int8 per-channel sym f32", "nf4 b64 dq". */
    @Override
    public String toString() {
        if (kind == Kind.NF4) {
            return "nf4 b" + groupSize + (doubleQuant ? " dq" : "");
        }
        return "int" + bits + (groupSize == 0 ? " per-channel" : " g" + groupSize) + (symmetric ? " sym " : " asym ")
                + scaleType;
    }
}
