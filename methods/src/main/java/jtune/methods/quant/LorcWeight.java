package jtune.methods.quant;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.backend.Backend;
import jtune.engine.backend.Checks;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/**
 * ZeroQuant-V2's low-rank compensation (LoRC, reference §4) over a quantized base: {@code W_eff = Ŵ + Û V̂} with the
 * frozen factors Û (out, r) and V̂ (r, in) of the quantization error, so {@code y = x Ŵᵀ + (x V̂ᵀ) Ûᵀ}, never forming
 * Û V̂. Backward gives only {@code dx = dy Ŵ + (dy Û) V̂} (and whatever the base's own trainable parts need).
 *
 * <p>The factors are stored either as f32 or, as the paper counts them, as 8-bit codes ({@link #FACTOR_FORMAT}:
 * symmetric, one f32 scale per rank component, the absolute maximum over 127.5): V̂ by rows, Û as Ûᵀ (r, out) by
 * rows, so each scale covers one singular direction, whose entries share the magnitude √σ. 8-bit factors go through
 * the backend's fused quantized products like any quantized weight; both are stored r rows long, so the products
 * stream long rows also when decoding one token. Owns the base and the factors.
 */
public final class LorcWeight implements LinearWeight {
    /** The format of 8-bit factors: per-row (per output channel) symmetric int8 with f32 scales. */
    public static final QuantFormat FACTOR_FORMAT = QuantFormat.integer(8, 0, true, DType.F32);

    /**
     * One factor F as stored: an f32 tensor (a frozen parameter) holding F, or 8-bit codes in {@link #FACTOR_FORMAT}
     * holding F, or Fᵀ when {@code transposed}; exactly one of dense and quantized is non-null.
     */
    public record Factor(Parameter dense, QuantizedMatrix quantized, boolean transposed) {
        public Factor {
            if ((dense == null) == (quantized == null) || dense != null && transposed) {
                throw new IllegalArgumentException("a LoRC factor is either f32 or 8-bit (maybe transposed), not both or"
                        + " neither");
            }
            if (quantized != null && !quantized.format().equals(FACTOR_FORMAT)) {
                throw new IllegalArgumentException("an 8-bit LoRC factor is stored as " + FACTOR_FORMAT + ", not "
                        + quantized.format());
            }
        }

        public static Factor of(Parameter dense) {
            return new Factor(dense, null, false);
        }

        /** F from its 8-bit codes: the codes of F itself, or of Fᵀ when {@code transposed}. */
        public static Factor of(QuantizedMatrix quantized, boolean transposed) {
            return new Factor(null, quantized, transposed);
        }

        /** Rows of F. */
        public long rows() {
            return dense != null ? dense.value().dim(0) : transposed ? quantized.cols() : quantized.rows();
        }

        /** Columns of F. */
        public long cols() {
            return dense != null ? dense.value().dim(1) : transposed ? quantized.rows() : quantized.cols();
        }

        /** 32 for f32, 8 for 8-bit codes. */
        public int bits() {
            return dense != null ? 32 : 8;
        }

        /** Bytes stored. */
        public long bytes() {
            return dense != null ? dense.value().dtype().bytesFor(dense.value().size()) : quantized.bytes();
        }

        /** F's values, row-major (rows, cols): the f32 entries or the dequantized codes. */
        public float[] values() {
            if (dense != null) {
                return dense.value().toFloatArray();
            }
            int cols = Math.toIntExact(cols());
            float[] out = new float[Math.toIntExact(rows() * cols)];
            for (int i = 0; i < quantized.rows(); i++) {
                for (int j = 0; j < quantized.cols(); j++) {
                    out[transposed ? j * cols + i : i * cols + j] = quantized.weight(i, j);
                }
            }
            return out;
        }

        /** {@code y = a · Fᵀ + beta · y}. */
        void timesTransposed(Backend b, Tensor a, Tensor y, float beta) {
            if (dense != null) {
                b.matmul(a, false, dense.value(), true, y, 1f, beta);
            } else if (transposed) {
                b.quantMatmulInputGrad(a, quantized, y, 1f, beta);
            } else {
                b.quantMatmul(a, quantized, y, 1f, beta);
            }
        }

        /** {@code y = a · F + beta · y}. */
        void times(Backend b, Tensor a, Tensor y, float beta) {
            if (dense != null) {
                b.matmul(a, false, dense.value(), false, y, 1f, beta);
            } else if (transposed) {
                b.quantMatmul(a, quantized, y, 1f, beta);
            } else {
                b.quantMatmulInputGrad(a, quantized, y, 1f, beta);
            }
        }

        void close() {
            if (dense != null) {
                dense.close();
            } else {
                quantized.close();
            }
        }
    }

    private final LinearWeight base;
    private final Factor u;
    private final Factor v;

    /** {@code u} (out, r) and {@code v} (r, in) frozen factors matching {@code base}'s shape, stored alike. */
    public LorcWeight(LinearWeight base, Factor u, Factor v) {
        if (u.bits() == 8 && (!u.transposed() || v.transposed())) {
            throw new IllegalArgumentException("8-bit LoRC factors are stored as Ûᵀ and V̂ by rows (the layout of a"
                    + " quantized folder); got Û " + (u.transposed() ? "transposed" : "as is") + " and V̂ "
                    + (v.transposed() ? "transposed" : "as is"));
        }
        if (u.rows() != base.outFeatures() || u.cols() != v.rows() || v.cols() != base.inFeatures()
                || u.bits() != v.bits()) {
            throw new IllegalArgumentException("LoRC factors for a (" + base.outFeatures() + ", " + base.inFeatures()
                    + ") weight must be (" + base.outFeatures() + ", r) and (r, " + base.inFeatures() + "), stored alike;"
                    + " got (" + u.rows() + ", " + u.cols() + ") " + u.bits() + "-bit and (" + v.rows() + ", " + v.cols()
                    + ") " + v.bits() + "-bit");
        }
        this.base = base;
        this.u = u;
        this.v = v;
    }

    /**
     * Builds the weight from {@link LowRank} factors as frozen weights: f32 {@code layer.lorc_u/v} when {@code bits}
     * is 32; when it is 8, {@code layer.lorc_ut} (Ûᵀ) and {@code layer.lorc_v} rounded to {@link #FACTOR_FORMAT}.
     */
    public static LorcWeight of(Session s, String layer, LinearWeight base, LowRank f, int bits) {
        checkBits(bits);
        String nu = layer + ".lorc_u", nv = layer + ".lorc_v";
        int rows = f.rows(), r = f.rank();
        List<Factor> made = new ArrayList<>(2);
        try {
            if (bits == 32) {
                Tensor tu = s.f32(nu, Category.FROZEN_WEIGHTS, rows, r).copyFrom(f.u());
                made.add(Factor.of(new Parameter(nu, tu, false, false)));
                Tensor tv = s.f32(nv, Category.FROZEN_WEIGHTS, r, f.cols()).copyFrom(f.v());
                made.add(Factor.of(new Parameter(nv, tv, false, false)));
            } else {
                float[] ut = new float[r * rows];
                for (int i = 0; i < rows; i++) {
                    for (int c = 0; c < r; c++) {
                        ut[c * rows + i] = f.u()[i * r + c];
                    }
                }
                made.add(Factor.of(Rtn.quantize(ut, r, rows, FACTOR_FORMAT).toMatrix(s.pool(), nu + "t"), true));
                made.add(Factor.of(Rtn.quantize(f.v(), r, f.cols(), FACTOR_FORMAT).toMatrix(s.pool(), nv), false));
            }
            return new LorcWeight(base, made.get(0), made.get(1));
        } catch (RuntimeException e) {
            made.forEach(Factor::close);
            throw e;
        }
    }

    /** Refuses factor storage other than 8 or 32 bits in one sentence. */
    public static void checkBits(int bits) {
        if (bits != 8 && bits != 32) {
            throw new IllegalArgumentException("LoRC factors are stored in 8 bits (per-row int8) or 32 (f32), not "
                    + bits);
        }
    }

    public LinearWeight base() {
        return base;
    }

    /** The frozen factor Û (out, r). */
    public Factor u() {
        return u;
    }

    /** The frozen factor V̂ (r, in). */
    public Factor v() {
        return v;
    }

    /** Rank of the correction. */
    public long rank() {
        return v.rows();
    }

    /** 8 or 32: how the factors are stored. */
    public int bits() {
        return u.bits();
    }

    /** {@code Û V̂} of the stored factors, (out, in) row-major, in f64. */
    public double[] product() {
        return LowRank.product(u.values(), v.values(), Math.toIntExact(outFeatures()), Math.toIntExact(inFeatures()),
                Math.toIntExact(rank()));
    }

    @Override
    public long inFeatures() {
        return base.inFeatures();
    }

    @Override
    public long outFeatures() {
        return base.outFeatures();
    }

    @Override
    public void forward(Session s, Tensor x, Tensor y) {
        base.forward(s, x, y);
        try (Tensor t = s.f32("lorc.xv", Category.WORKSPACE, x.dim(0), rank())) {
            v.timesTransposed(s.backend(), x, t, 0f);
            u.timesTransposed(s.backend(), t, y, 1f);
        }
    }

    @Override
    public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
        base.backward(s, x, dy, dx);
        if (dx != null) {
            Checks.shape("LoRC linear backward", dx, x.dim(0), inFeatures());
            try (Tensor t = s.f32("lorc.dyu", Category.WORKSPACE, dy.dim(0), rank())) {
                u.times(s.backend(), dy, t, 0f);
                v.times(s.backend(), t, dx, 1f);
            }
        }
    }

    /** The base's parameters, then the factors' tensors, all frozen. */
    @Override
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(base.parameters());
        for (Factor f : List.of(u, v)) {
            if (f.dense() != null) {
                all.add(f.dense());
            } else {
                f.quantized().tensors().forEach(t -> all.add(new Parameter(t.name(), t, false, false)));
            }
        }
        return all;
    }

    @Override
    public void close() {
        base.close();
        u.close();
        v.close();
    }
}
