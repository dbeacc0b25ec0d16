package jtune.methods.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The packed matrices the quantizers make decode to exactly their array dequantization, and the frozen linear
 * weights over them (plain and with LoRC) compute {@code y = x W_effᵀ} and {@code dx = dy W_eff} against an f64
 * product with the array values; their bytes are in the ledger as frozen weights until closed.
 */
class QuantizedWeightTest {
    private static final int ROWS = 12, COLS = 70, N = 5;
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);
    private final SplittableRandom rng = new SplittableRandom(17);

    @AfterEach
    void close() {
        pool.close();
    }

    private static final List<QuantFormat> FORMATS = List.of(
            QuantFormat.integer(2, 32, false, DType.F32), QuantFormat.integer(3, 0, false, DType.F32),
            QuantFormat.integer(4, 64, true, DType.BF16), QuantFormat.integer(8, 32, false, DType.BF16),
            QuantFormat.nf4(32, false), QuantFormat.nf4(64, true));

    private QuantizedArrays quantize(float[] w, QuantFormat f) {
        return f.kind() == QuantFormat.Kind.NF4 ? Nf4Quantizer.quantize(w, ROWS, COLS, f) : Rtn.quantize(w, ROWS, COLS, f);
    }

    @Test
    void packedMatrixDecodesToTheArrays() {
        for (QuantFormat f : FORMATS) {
            QuantizedArrays q = quantize(GptqTest.gaussian(rng, ROWS * COLS, 0.1), f);
            float[] d = q.dequantize();
            try (QuantizedMatrix m = q.toMatrix(pool, "w")) {
                for (int i = 0; i < ROWS; i++) {
                    for (int j = 0; j < COLS; j++) {
                        assertThat(m.code(i, j)).as("%s code (%d, %d)", f, i, j).isEqualTo(q.code(i, j));
                        assertThat(m.weight(i, j)).as("%s weight (%d, %d)", f, i, j).isEqualTo(d[i * COLS + j]);
                    }
                }
                assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isEqualTo(m.bytes());
            }
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
        }
    }

    @Test
    void quantizedWeightForwardAndInputGradient() {
        for (QuantFormat f : FORMATS) {
            QuantizedArrays q = quantize(GptqTest.gaussian(rng, ROWS * COLS, 0.1), f);
            try (QuantizedWeight w = new QuantizedWeight(q.toMatrix(pool, "layer.weight"))) {
                assertThat(w.parameters()).allMatch(p -> !p.trainable());
                check(w, toDouble(q.dequantize()), f.toString());
            }
        }
    }

    @Test
    void lorcWeightAddsTheLowRankCorrection() {
        float[] w = GptqTest.gaussian(rng, ROWS * COLS, 0.1);
        IntQuantization q = Rtn.quantize(w, ROWS, COLS, QuantFormat.integer(3, 32, false, DType.F32));
        float[] d = q.dequantize(), e = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            e[i] = w[i] - d[i];
        }
        LowRank f = LowRank.of(e, ROWS, COLS, 4, 1);
        double[] residual = new double[2];
        for (int bits : new int[]{32, 8}) {
            float[] u = bits == 32 ? f.u() : eightBitU(f.u(), ROWS, 4);
            float[] v = bits == 32 ? f.v() : Rtn.quantize(f.v(), 4, COLS, LorcWeight.FACTOR_FORMAT).dequantize();
            double[] eff = toDouble(d);
            double res = 0;
            for (int i = 0; i < ROWS; i++) {
                for (int j = 0; j < COLS; j++) {
                    for (int c = 0; c < 4; c++) {
                        eff[i * COLS + j] += (double) u[i * 4 + c] * v[c * COLS + j];
                    }
                    res += Math.pow(w[i * COLS + j] - eff[i * COLS + j], 2);
                }
            }
            residual[bits / 32] = Math.sqrt(res);
            try (LorcWeight lw = LorcWeight.of(s, "layer", new QuantizedWeight(q.toMatrix(pool, "layer.weight")), f,
                    bits)) {
                assertThat(lw.rank()).isEqualTo(4);
                assertThat(lw.bits()).isEqualTo(bits);
                assertThat(lw.parameters()).extracting(Parameter::name).anyMatch(n -> n.startsWith("layer.lorc_u"))
                        .anyMatch(n -> n.startsWith("layer.lorc_v"));
                assertThat(lw.parameters()).allMatch(p -> !p.trainable());
                // 8-bit: Ûᵀ and V̂, 4 rows each of codes padded to runs of 8 and an f32 scale.
                assertThat(lw.u().bytes() + lw.v().bytes()).isEqualTo(bits == 32 ? 4L * 4 * (ROWS + COLS)
                        : 4 * (16 + 4) + 4 * (72 + 4));
                check(lw, eff, "LoRC " + bits + "-bit");
                if (bits == 8) {
                    LorcWeight.Factor asIs = LorcWeight.Factor.of(lw.u().quantized(), false);
                    assertThatThrownBy(() -> new LorcWeight(lw.base(), asIs, lw.v()))
                            .hasMessageContaining("8-bit LoRC factors are stored as Ûᵀ and V̂ by rows");
                }
            }
        }
        // Reference §4 (e) 3: 8-bit factors (a scale per singular direction) change the LoRC residual by less than 1 %.
        assertThat(residual[0]).isCloseTo(residual[1], within(0.01 * residual[1]));
        assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
    }

    /**
     * The oracle of an 8-bit Û (rows, r) row-major: each column (one singular direction) rounded to its own
     * symmetric int8 grid, as Ûᵀ's rows are stored.
     */
    static float[] eightBitU(float[] u, int rows, int r) {
        float[] ut = new float[r * rows], out = new float[rows * r];
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < r; c++) {
                ut[c * rows + i] = u[i * r + c];
            }
        }
        float[] q = Rtn.quantize(ut, r, rows, LorcWeight.FACTOR_FORMAT).dequantize();
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < r; c++) {
                out[i * r + c] = q[c * rows + i];
            }
        }
        return out;
    }

    /** forward and backward of w against f64 products with the (rows, cols) matrix eff. */
    private void check(LinearWeight w, double[] eff, String what) {
        float[] xs = GptqTest.gaussian(rng, N * COLS, 1), dys = GptqTest.gaussian(rng, N * ROWS, 1);
        try (Tensor x = s.f32("x", Category.WORKSPACE, N, COLS).copyFrom(xs);
             Tensor y = s.f32("y", Category.WORKSPACE, N, ROWS);
             Tensor dy = s.f32("dy", Category.WORKSPACE, N, ROWS).copyFrom(dys);
             Tensor dx = s.f32("dx", Category.WORKSPACE, N, COLS)) {
            w.forward(s, x, y);
            w.backward(s, x, dy, dx);
            for (int t = 0; t < N; t++) {
                for (int i = 0; i < ROWS; i++) {
                    double ref = 0, mag = 0;
                    for (int j = 0; j < COLS; j++) {
                        ref += xs[t * COLS + j] * eff[i * COLS + j];
                        mag += Math.abs(xs[t * COLS + j] * eff[i * COLS + j]);
                    }
                    assertThat((double) y.get(t, i)).as("%s y(%d, %d)", what, t, i).isCloseTo(ref, within(1e-5 * mag));
                }
                for (int j = 0; j < COLS; j++) {
                    double ref = 0, mag = 0;
                    for (int i = 0; i < ROWS; i++) {
                        ref += dys[t * ROWS + i] * eff[i * COLS + j];
                        mag += Math.abs(dys[t * ROWS + i] * eff[i * COLS + j]);
                    }
                    assertThat((double) dx.get(t, j)).as("%s dx(%d, %d)", what, t, j).isCloseTo(ref, within(1e-5 * mag));
                }
            }
        }
    }

    private static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
