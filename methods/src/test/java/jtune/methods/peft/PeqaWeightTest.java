package jtune.methods.peft;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import jtune.methods.quant.ModelQuantizer;
import jtune.methods.quant.Rtn;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * PEQA's weight against the math of reference §1: the scale gradient against central finite differences of the loss
 * and, per channel, against the identity {@code ∂L/∂s_i = Σ_t δ_ti · y_ti / s_i}; the reference's worked example
 * (§1(e)4); the codes and zero points bit-identical after training while the scales move; the trainable count
 * {@code Σ out · groups}; and a PEQA model with unchanged scales computing exactly what the RTN-quantized model does.
 */
class PeqaWeightTest {
    static final LlamaConfig TINY = LlamaConfig.llama(64, 96, 2, 4, 2, 64, 32, true);
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);
    private final SplittableRandom rng = new SplittableRandom(5);

    @AfterEach
    void close() {
        pool.close();
    }

    private PeqaWeight peqa(float[] w, int rows, int cols, QuantFormat f) {
        try (QuantizedMatrix m = Rtn.quantize(w, rows, cols, f).toMatrix(pool, "layer.weight")) {
            return PeqaWeight.copyOf(pool, m);
        }
    }

    private float[] gaussian(int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (std * rng.nextGaussian());
        }
        return v;
    }

    /** {@code Σ r ⊙ y} in f64 for the weight's forward on x. */
    private double loss(PeqaWeight w, Tensor x, float[] r) {
        try (Tensor y = s.f32("y", Category.WORKSPACE, x.dim(0), w.outFeatures())) {
            w.forward(s, x, y);
            float[] v = y.toFloatArray();
            double l = 0;
            for (int i = 0; i < v.length; i++) {
                l += (double) r[i] * v[i];
            }
            return l;
        }
    }

    @Test
    void scaleGradientMatchesCentralDifferences() {
        int rows = 6, cols = 70, n = 5;
        for (QuantFormat f : List.of(QuantFormat.integer(4, 32, false, DType.F32),
                QuantFormat.integer(3, 0, true, DType.F32), QuantFormat.integer(2, 64, false, DType.BF16))) {
            float[] r = gaussian(n * rows, 1);
            try (PeqaWeight w = peqa(gaussian(rows * cols, 0.1), rows, cols, f);
                 Tensor x = s.f32("x", Category.WORKSPACE, n, cols).copyFrom(gaussian(n * cols, 1));
                 Tensor dy = s.f32("dy", Category.WORKSPACE, n, rows).copyFrom(r)) {
                w.backward(s, x, dy, null);
                float[] g = w.scales().grad(s).toFloatArray();
                double rms = 0;
                for (float v : g) {
                    rms += (double) v * v / g.length;
                }
                rms = Math.sqrt(rms);
                Tensor sc = w.scales().value();
                int groups = w.matrix().groups();
                for (int i = 0; i < rows; i++) {
                    for (int k = 0; k < groups; k++) {
                        float s0 = sc.get(i, k), h = 0.25f * Math.abs(s0);
                        sc.set(s0 + h, i, k);
                        double up = loss(w, x, r);
                        sc.set(s0 - h, i, k);
                        double down = loss(w, x, r);
                        sc.set(s0, i, k);
                        double fd = (up - down) / ((double) (s0 + h) - (s0 - h));
                        assertThat((double) g[i * groups + k]).as("%s dL/ds(%d, %d)", f, i, k)
                                .isCloseTo(fd, within(1e-3 * rms));
                    }
                }
            }
        }
    }

    @Test
    void perChannelGradientIsTheSumOfDeltaTimesOutputOverScale() {
        int rows = 7, cols = 40, n = 6;
        float[] r = gaussian(n * rows, 1);
        try (PeqaWeight w = peqa(gaussian(rows * cols, 0.1), rows, cols, QuantFormat.integer(4, 0, false, DType.F32));
             Tensor x = s.f32("x", Category.WORKSPACE, n, cols).copyFrom(gaussian(n * cols, 1));
             Tensor y = s.f32("y", Category.WORKSPACE, n, rows);
             Tensor dy = s.f32("dy", Category.WORKSPACE, n, rows).copyFrom(r)) {
            w.forward(s, x, y);
            w.backward(s, x, dy, null);
            float[] g = w.scales().grad(s).toFloatArray();
            for (int i = 0; i < rows; i++) {
                double identity = 0, mag = 0;
                for (int t = 0; t < n; t++) {
                    identity += (double) r[t * rows + i] * y.get(t, i) / w.scales().value().get(i, 0);
                    mag += Math.abs((double) r[t * rows + i] * y.get(t, i) / w.scales().value().get(i, 0));
                }
                assertThat((double) g[i]).as("row %d", i).isCloseTo(identity, within(1e-5 * mag));
            }
        }
    }

    @Test
    void workedExampleOfTheReference() {
        float[] row = {0.30f, -0.10f, 0.05f, -0.25f};
        try (PeqaWeight w = peqa(row, 1, 4, QuantFormat.integer(3, 0, false, DType.F32));
             Tensor x = s.f32("x", Category.WORKSPACE, 1, 4).copyFrom(new float[]{1, 1, 1, 1});
             Tensor dy = s.f32("dy", Category.WORKSPACE, 1, 1).copyFrom(new float[]{1})) {
            QuantizedMatrix m = w.matrix();
            assertThat(new int[]{m.code(0, 0), m.code(0, 1), m.code(0, 2), m.code(0, 3)}).containsExactly(7, 2, 4, 0);
            assertThat(m.scale(0, 0)).isCloseTo(0.0785714f, within(1e-7f));
            assertThat(m.zero(0, 0)).isEqualTo(3f);
            float[] expect = {0.314286f, -0.078571f, 0.078571f, -0.235714f};
            for (int j = 0; j < 4; j++) {
                assertThat(m.weight(0, j)).isCloseTo(expect[j], within(1e-6f));
            }
            w.backward(s, x, dy, null);
            assertThat(w.scales().grad(s).get(0, 0)).isCloseTo(1f, within(1e-6f));
        }
    }

    /** A frozen random model whose block layers are PEQA (int4 g32), in model order. */
    private LlamaModel peqaModel(long seed, QuantFormat f, Map<String, PeqaWeight> made) {
        return LlamaModel.create(s, TINY, WeightSource.random(seed), false, PeqaWeight.rtn(f, l -> true, made), false);
    }

    @Test
    void codesAndZerosStayBitIdenticalWhileScalesTrain() {
        Map<String, PeqaWeight> made = new LinkedHashMap<>();
        QuantFormat f = QuantFormat.integer(4, 32, false, DType.F32);
        try (LlamaModel model = peqaModel(1, f, made);
             AdamW adam = new AdamW(s, model.parameters(), 0.9f, 0.999f, 1e-8f, 0.1f);
             Tensor tokens = s.i32("tokens", Category.WORKSPACE, 2, 16);
             Tensor targets = s.i32("targets", Category.WORKSPACE, 2, 16)) {
            assertThat(made).hasSize(14);
            long scales = 0;
            for (PeqaWeight w : made.values()) {
                scales += (long) w.matrix().rows() * w.matrix().groups();
            }
            long trainable = model.parameters().stream().filter(Parameter::trainable)
                    .mapToLong(p -> p.value().size()).sum();
            assertThat(trainable).as("trainable = Σ out · ceil(in / g)").isEqualTo(scales);
            assertThat(ledger.current(Category.TRAINABLE_PARAMETERS)).isEqualTo(4 * scales);
            List<byte[]> frozen = frozenBytes(made);
            List<float[]> before = new ArrayList<>();
            made.values().forEach(w -> before.add(w.scales().value().toFloatArray()));
            float[] ids = new float[32];
            for (int step = 0; step < 3; step++) {
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = rng.nextInt(TINY.vocab());
                }
                tokens.copyFrom(ids);
                targets.copyFrom(ids);
                adam.zeroGrad();
                model.forwardBackward(tokens, targets, 1f);
                adam.step(1e-2f);
            }
            for (Parameter p : model.parameters()) {
                assertThat(p.gradOrNull() != null).as("%s has a gradient", p.name()).isEqualTo(p.trainable());
            }
            assertThat(ledger.current(Category.GRADIENTS)).isEqualTo(4 * scales);
            assertThat(ledger.current(Category.OPTIMIZER_STATE)).isEqualTo(8 * scales);
            List<byte[]> after = frozenBytes(made);
            for (int i = 0; i < frozen.size(); i++) {
                assertThat(after.get(i)).as("codes and zeros of layer %d", i).isEqualTo(frozen.get(i));
            }
            int l = 0;
            for (PeqaWeight w : made.values()) {
                assertThat(w.scales().value().toFloatArray()).as("scales of layer %d moved", l)
                        .isNotEqualTo(before.get(l++));
            }
        }
    }

    /** Each layer's packed codes followed by its zero points, as bytes. */
    private static List<byte[]> frozenBytes(Map<String, PeqaWeight> made) {
        List<byte[]> out = new ArrayList<>();
        for (PeqaWeight w : made.values()) {
            QuantizedMatrix m = w.matrix();
            byte[] codes = m.codes().segment().asSlice(m.codes().byteOffset(), m.rows() * m.rowBytes())
                    .toArray(ValueLayout.JAVA_BYTE);
            byte[] zeros = m.zeros().segment().asSlice(m.zeros().byteOffset(), 4L * m.rows() * m.groups())
                    .toArray(ValueLayout.JAVA_BYTE);
            byte[] both = new byte[codes.length + zeros.length];
            System.arraycopy(codes, 0, both, 0, codes.length);
            System.arraycopy(zeros, 0, both, codes.length, zeros.length);
            out.add(both);
        }
        return out;
    }

    @Test
    void unchangedScalesComputeExactlyTheRtnModel() {
        for (int[] bg : new int[][]{{4, 32}, {3, 0}, {2, 64}}) {
            QuantFormat f = QuantFormat.integer(bg[0], bg[1], false, DType.F32);
            float[] rtn, peqa;
            try (LlamaModel dense = LlamaModel.create(s, TINY, WeightSource.random(2), false, WeightTransform.IDENTITY,
                    false);
                 LlamaModel q = ModelQuantizer.quantize(s, dense, ModelQuantizer.Options.of(ModelQuantizer.Method.RTN,
                         bg[0], bg[1], 0), List.of()).model()) {
                rtn = logits(s, q);
            }
            try (LlamaModel p = peqaModel(2, f, new LinkedHashMap<>())) {
                peqa = logits(s, p);
            }
            assertThat(peqa).as("%s: PEQA with unchanged scales vs the RTN model", f).containsExactly(rtn);
        }
    }

    static float[] logits(Session s, LlamaModel m) {
        float[] ids = new float[12];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 37 + 11) % m.config().vocab();
        }
        try (Tensor t = s.i32("tokens", Category.WORKSPACE, 1, ids.length).copyFrom(ids);
             Tensor out = s.f32("logits", Category.WORKSPACE, ids.length, m.config().vocab())) {
            m.logits(t, out);
            return out.toFloatArray();
        }
    }
}
