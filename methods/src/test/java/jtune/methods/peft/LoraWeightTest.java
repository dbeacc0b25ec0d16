package jtune.methods.peft;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.Tensor;
import jtune.methods.quant.Nf4Quantizer;
import jtune.methods.quant.QuantizedArrays;
import jtune.methods.quant.QuantizedWeight;
import jtune.methods.quant.Rtn;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * LoRA's weight against f64 products of PEFT's formula {@code y = x Wᵀ + scaling · (x Aᵀ) Bᵀ} over dense,
 * integer and NF4 bases (QLoRA), its gradients, PEFT's initialisation, rsLoRA's scaling, dropout (seeded, the same
 * mask in a pass's forward and backward, off at evaluation, checked by finite differences), and merge/unmerge.
 */
class LoraWeightTest {
    private static final int ROWS = 12, COLS = 70, N = 5, R = 4;
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session s = new Session(new ScalarBackend(), pool);
    private final SplittableRandom rng = new SplittableRandom(23);

    @AfterEach
    void close() {
        pool.close();
    }

    private float[] gaussian(int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (std * rng.nextGaussian());
        }
        return v;
    }

    private DenseWeight dense(float[] w) {
        Tensor t = s.f32("layer.weight", Category.FROZEN_WEIGHTS, ROWS, COLS).copyFrom(w);
        return new DenseWeight(new Parameter(t.name(), t, false, true));
    }

    private LoraWeight lora(LinearWeight base, LoraConfig c, Dropout d) {
        LoraWeight w = LoraWeight.create(s, "layer", base, c, new SplittableRandom(7), d, 0);
        w.b().value().copyFrom(gaussian(ROWS * c.rank(), 0.5));
        return w;
    }

    @Test
    void startsAsPeftDoesAndAsTheBase() {
        float[] w = gaussian(ROWS * COLS, 0.1);
        LoraConfig c = new LoraConfig(R, 8, 0, false, List.of("q_proj"));
        try (LoraWeight l = LoraWeight.create(s, "layer", dense(w), c, new SplittableRandom(1), new Dropout(0, 0), 0);
             DenseWeight ref = dense(w);
             Tensor x = s.f32("x", Category.WORKSPACE, N, COLS).copyFrom(gaussian(N * COLS, 1));
             Tensor y = s.f32("y", Category.WORKSPACE, N, ROWS);
             Tensor y0 = s.f32("y0", Category.WORKSPACE, N, ROWS)) {
            float[] a = l.a().value().toFloatArray();
            double bound = 1 / Math.sqrt(COLS), mean = 0, var = 0;
            for (float v : a) {
                assertThat(Math.abs(v)).isLessThanOrEqualTo((float) bound);
                mean += v / a.length;
                var += (double) v * v / a.length;
            }
            assertThat(mean).isCloseTo(0, within(0.2 * bound));
            assertThat(var).as("U(-b, b) has variance b²/3")
                    .isCloseTo(bound * bound / 3, within(0.25 * bound * bound / 3));
            assertThat(l.b().value().toFloatArray()).containsOnly(0f);
            assertThat(l.a().name()).isEqualTo("layer.lora_A.weight");
            assertThat(l.b().name()).isEqualTo("layer.lora_B.weight");
            assertThat(l.parameters()).filteredOn(Parameter::trainable).containsExactly(l.a(), l.b());
            l.forward(s, x, y);
            ref.forward(s, x, y0);
            assertThat(y.toFloatArray()).containsExactly(y0.toFloatArray());
        }
    }

    @Test
    void scalingIsAlphaOverRankOrOverItsRootWithRsLora() {
        assertThat(new LoraConfig(16, 32, 0, false, List.of("q_proj")).scaling()).isEqualTo(2.0);
        assertThat(new LoraConfig(16, 32, 0, true, List.of("q_proj")).scaling()).isEqualTo(8.0);
        assertThat(LoraConfig.parseTargets("v,q_proj,down")).containsExactly("q_proj", "v_proj", "down_proj");
        assertThatThrownBy(() -> LoraConfig.parseTargets("q,x")).hasMessageContaining("unknown target 'x'");
    }

    @Test
    void forwardAndGradientsOverDenseIntegerAndNf4Bases() {
        float[] w = gaussian(ROWS * COLS, 0.1);
        QuantizedArrays int3 = Rtn.quantize(w, ROWS, COLS, QuantFormat.integer(3, 32, false, DType.F32));
        QuantizedArrays nf4 = Nf4Quantizer.quantize(w, ROWS, COLS, QuantFormat.nf4(64, true));
        for (boolean rs : new boolean[]{false, true}) {
            LoraConfig c = new LoraConfig(R, 6, 0, rs, List.of("q_proj"));
            check(lora(dense(w), c, new Dropout(0, 0)), w, "dense");
            check(lora(new QuantizedWeight(int3.toMatrix(pool, "layer.weight")), c, new Dropout(0, 0)),
                    int3.dequantize(), "int3 g32");
            check(lora(new QuantizedWeight(nf4.toMatrix(pool, "layer.weight")), c, new Dropout(0, 0)), nf4.dequantize(),
                    "nf4 dq (QLoRA)");
        }
    }

    /** y, dx, dA and dB of {@code l} against f64 products with the base's effective matrix {@code w}. */
    private void check(LoraWeight l, float[] w, String what) {
        float[] xs = gaussian(N * COLS, 1), dys = gaussian(N * ROWS, 1);
        double sc = l.scaling();
        try (l; Tensor x = s.f32("x", Category.WORKSPACE, N, COLS).copyFrom(xs);
             Tensor y = s.f32("y", Category.WORKSPACE, N, ROWS);
             Tensor dy = s.f32("dy", Category.WORKSPACE, N, ROWS).copyFrom(dys);
             Tensor dx = s.f32("dx", Category.WORKSPACE, N, COLS)) {
            l.forward(s, x, y);
            l.backward(s, x, dy, dx);
            double[][] wEff = new double[ROWS][COLS];
            float[] a = l.a().value().toFloatArray(), b = l.b().value().toFloatArray();
            for (int i = 0; i < ROWS; i++) {
                for (int j = 0; j < COLS; j++) {
                    double ba = 0;
                    for (int k = 0; k < R; k++) {
                        ba += (double) b[i * R + k] * a[k * COLS + j];
                    }
                    wEff[i][j] = w[i * COLS + j] + sc * ba;
                }
            }
            for (int t = 0; t < N; t++) {
                for (int i = 0; i < ROWS; i++) {
                    double ref = 0, mag = 0;
                    for (int j = 0; j < COLS; j++) {
                        ref += xs[t * COLS + j] * wEff[i][j];
                        mag += Math.abs(xs[t * COLS + j] * wEff[i][j]);
                    }
                    assertThat((double) y.get(t, i)).as("%s y(%d, %d)", what, t, i).isCloseTo(ref, within(1e-5 * mag));
                }
                for (int j = 0; j < COLS; j++) {
                    double ref = 0, mag = 0;
                    for (int i = 0; i < ROWS; i++) {
                        ref += dys[t * ROWS + i] * wEff[i][j];
                        mag += Math.abs(dys[t * ROWS + i] * wEff[i][j]);
                    }
                    assertThat((double) dx.get(t, j)).as("%s dx(%d, %d)", what, t, j)
                            .isCloseTo(ref, within(1e-5 * mag));
                }
            }
            // dA = scaling · Bᵀ dyᵀ x (r, in); dB = scaling · dyᵀ (x Aᵀ) (out, r)
            for (int k = 0; k < R; k++) {
                for (int j = 0; j < COLS; j++) {
                    double ref = 0, mag = 0;
                    for (int t = 0; t < N; t++) {
                        for (int i = 0; i < ROWS; i++) {
                            double v = sc * b[i * R + k] * dys[t * ROWS + i] * xs[t * COLS + j];
                            ref += v;
                            mag += Math.abs(v);
                        }
                    }
                    assertThat((double) l.a().grad(s).get(k, j)).as("%s dA(%d, %d)", what, k, j)
                            .isCloseTo(ref, within(1e-5 * mag));
                }
                for (int i = 0; i < ROWS; i++) {
                    double ref = 0, mag = 0;
                    for (int t = 0; t < N; t++) {
                        double xa = 0;
                        for (int j = 0; j < COLS; j++) {
                            xa += (double) xs[t * COLS + j] * a[k * COLS + j];
                        }
                        ref += sc * dys[t * ROWS + i] * xa;
                        mag += Math.abs(sc * dys[t * ROWS + i] * xa);
                    }
                    assertThat((double) l.b().grad(s).get(i, k)).as("%s dB(%d, %d)", what, i, k)
                            .isCloseTo(ref, within(1e-5 * mag));
                }
            }
            assertThat(l.base().parameters()).allMatch(p -> !p.trainable() && p.gradOrNull() == null);
        }
    }

    /** {@code Σ r ⊙ y} in f64. */
    private double loss(LoraWeight l, Tensor x, float[] r) {
        try (Tensor y = s.f32("y", Category.WORKSPACE, N, ROWS)) {
            l.forward(s, x, y);
            float[] v = y.toFloatArray();
            double sum = 0;
            for (int i = 0; i < v.length; i++) {
                sum += (double) r[i] * v[i];
            }
            return sum;
        }
    }

    @Test
    void dropoutIsSeededSharedByForwardAndBackwardAndOffAtEvaluation() {
        float[] w = gaussian(ROWS * COLS, 0.1), r = gaussian(N * ROWS, 1);
        Dropout d = new Dropout(0.5, 99);
        LoraConfig c = new LoraConfig(R, 8, 0.5, false, List.of("q_proj"));
        try (LoraWeight l = lora(dense(w), c, d); LoraWeight plain = lora(dense(w), c, new Dropout(0, 0));
             Tensor x = s.f32("x", Category.WORKSPACE, N, COLS).copyFrom(gaussian(N * COLS, 1));
             Tensor dy = s.f32("dy", Category.WORKSPACE, N, ROWS).copyFrom(r);
             Tensor dx = s.f32("dx", Category.WORKSPACE, N, COLS);
             Tensor dxPlain = s.f32("dx0", Category.WORKSPACE, N, COLS)) {
            plain.b().value().copyFrom(l.b().value().toFloatArray());
            assertThat(loss(l, x, r)).as("evaluation: no dropout").isEqualTo(loss(plain, x, r));
            d.setTraining(true);
            double first = loss(l, x, r);
            assertThat(first).as("dropout changes the output").isNotEqualTo(loss(plain, x, r));
            assertThat(loss(l, x, r)).as("a recomputed forward sees the same mask").isEqualTo(first);
            int k = 1, j = 5;
            Tensor a = l.a().value();
            float a0 = a.get(k, j), h = 0.05f;
            a.set(a0 + h, k, j);
            double up = loss(l, x, r);
            a.set(a0 - h, k, j);
            double down = loss(l, x, r);
            a.set(a0, k, j);
            l.backward(s, x, dy, dx);
            plain.backward(s, x, dy, dxPlain);
            double fd = (up - down) / ((double) (a0 + h) - (a0 - h));
            assertThat((double) l.a().grad(s).get(k, j)).as("dA under the pass's mask")
                    .isCloseTo(fd, within(1e-3 * Math.abs(fd)));
            assertThat(dx.toFloatArray()).as("dx goes through the mask").isNotEqualTo(dxPlain.toFloatArray());
            assertThat(loss(l, x, r)).as("the next pass draws a new mask").isNotEqualTo(first);
        }
        float[] mask = new float[100_000];
        d.mask(3, 17, mask);
        int kept = 0;
        for (float m : mask) {
            assertThat(m).isIn(0f, 2f);
            kept += m == 0f ? 0 : 1;
        }
        assertThat(kept / 100_000.0).isCloseTo(0.5, within(0.01));
        float[] again = new float[100_000];
        new Dropout(0.5, 99).mask(3, 17, again);
        assertThat(again).containsExactly(mask);
    }

    @Test
    void mergeAddsTheUpdateIntoADenseBaseAndUnmergeTakesItOut() {
        float[] w = gaussian(ROWS * COLS, 0.1);
        LoraConfig c = new LoraConfig(R, 8, 0, false, List.of("q_proj"));
        try (LoraWeight l = lora(dense(w), c, new Dropout(0, 0));
             Tensor x = s.f32("x", Category.WORKSPACE, N, COLS).copyFrom(gaussian(N * COLS, 1));
             Tensor y = s.f32("y", Category.WORKSPACE, N, ROWS);
             Tensor ym = s.f32("ym", Category.WORKSPACE, N, ROWS);
             Tensor dy = s.f32("dy", Category.WORKSPACE, N, ROWS)) {
            l.forward(s, x, y);
            l.merge(s);
            assertThat(l.merged()).isTrue();
            l.forward(s, x, ym);
            float[] a = y.toFloatArray(), b = ym.toFloatArray();
            for (int i = 0; i < a.length; i++) {
                assertThat(b[i]).isCloseTo(a[i], within(1e-5f));
            }
            assertThatThrownBy(() -> l.backward(s, x, dy, null)).hasMessageContaining("unmerge it to train");
            assertThatThrownBy(() -> l.merge(s)).hasMessageContaining("already merged");
            l.unmerge(s);
            float[] back = ((DenseWeight) l.base()).weight().value().toFloatArray();
            for (int i = 0; i < w.length; i++) {
                assertThat(back[i]).isCloseTo(w[i], within(1e-6f));
            }
        }
        QuantizedArrays q = Nf4Quantizer.quantize(w, ROWS, COLS, QuantFormat.nf4(64, false));
        try (LoraWeight l = lora(new QuantizedWeight(q.toMatrix(pool, "layer.weight")), c, new Dropout(0, 0))) {
            assertThatThrownBy(() -> l.merge(s)).hasMessageContaining("merges into a dense f32 base only");
        }
    }
}
