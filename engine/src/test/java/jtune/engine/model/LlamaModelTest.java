package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The model's contract beyond its gradients: names, initialisation, the weight seam, memory, checkpointing, the loss. */
class LlamaModelTest {
    private static final LlamaConfig GQA = new LlamaConfig(16, 24, 3, 4, 2, 4, 11, 8, 10000, null, 1e-5f, false, false, false);

    private final GradCheck g = new GradCheck(0x70deL);
    private final Session s = g.session;

    @AfterEach
    void close() {
        g.close();
    }

    private Tensor tokens() {
        return g.ints("tokens", new int[]{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}, 2, 6);
    }

    private Tensor targets() {
        return g.ints("targets", new int[]{1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, -1}, 2, 6);
    }

    private static List<float[]> grads(LlamaModel m) {
        return m.parameters().stream().map(p -> p.gradOrNull() == null ? new float[0] : p.gradOrNull().toFloatArray()).toList();
    }

    @Test
    void parametersHaveHuggingFaceNamesInOrder() {
        var c = new LlamaConfig(8, 12, 1, 2, 1, 4, 5, 4, 10000, null, 1e-6f, false, true, true);
        try (LlamaModel m = LlamaModel.create(s, c, 1, WeightTransform.IDENTITY, false)) {
            String l = "model.layers.0.";
            assertThat(m.parameters()).extracting(Parameter::name).containsExactly(
                    "model.embed_tokens.weight",
                    l + "self_attn.q_proj.weight", l + "self_attn.q_proj.bias",
                    l + "self_attn.k_proj.weight", l + "self_attn.k_proj.bias",
                    l + "self_attn.v_proj.weight", l + "self_attn.v_proj.bias",
                    l + "self_attn.o_proj.weight", l + "self_attn.q_norm.weight", l + "self_attn.k_norm.weight",
                    l + "mlp.gate_proj.weight", l + "mlp.up_proj.weight", l + "mlp.down_proj.weight",
                    l + "input_layernorm.weight", l + "post_attention_layernorm.weight",
                    "model.norm.weight", "lm_head.weight");
            assertThat(m.parameters()).filteredOn(Parameter::decay).extracting(Parameter::name)
                    .allMatch(n -> n.endsWith("proj.weight") || n.equals("model.embed_tokens.weight") || n.equals("lm_head.weight"));
            assertThat(m.parameters()).allMatch(p -> p.value().category() == Category.TRAINABLE_PARAMETERS);
        }
        try (LlamaModel tied = LlamaModel.create(s, tied(GQA), 1, WeightTransform.IDENTITY, false)) {
            assertThat(tied.parameters()).extracting(Parameter::name).doesNotContain("lm_head.weight");
        }
    }

    @Test
    void theConfigCountsTheParametersTheModelHas() {
        for (LlamaConfig c : List.of(GQA, tied(GQA), new LlamaConfig(8, 12, 2, 2, 1, 4, 5, 4, 10000, null, 1e-6f, false,
                true, true), new LlamaConfig(12, 20, 3, 3, 3, 6, 7, 4, 10000, null, 1e-6f, true, false, true))) {
            try (LlamaModel m = LlamaModel.create(s, c, 1, WeightTransform.IDENTITY, false)) {
                assertThat(c.parameterCount()).as(c.toString())
                        .isEqualTo(m.parameters().stream().mapToLong(p -> p.value().size()).sum());
            }
        }
    }

    private static LlamaConfig tied(LlamaConfig c) {
        return new LlamaConfig(c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.kvHeads(), c.headDim(), c.vocab(), c.maxSeq(),
                c.ropeTheta(), c.ropeScaling(), c.normEps(), true, c.qkvBias(), c.qkNorm());
    }

    @Test
    void initialisationIsSeededNormalWithUnitNormsAndZeroBiases() {
        var c = new LlamaConfig(16, 24, 1, 4, 2, 4, 1000, 8, 10000, null, 1e-5f, false, true, false);
        try (LlamaModel a = LlamaModel.create(s, c, 42, WeightTransform.IDENTITY, false);
             LlamaModel b = LlamaModel.create(s, c, 42, WeightTransform.IDENTITY, false);
             LlamaModel other = LlamaModel.create(s, c, 43, WeightTransform.IDENTITY, false)) {
            for (int i = 0; i < a.parameters().size(); i++) {
                Parameter p = a.parameters().get(i);
                float[] v = p.value().toFloatArray();
                assertThat(v).as(p.name()).containsExactly(b.parameters().get(i).value().toFloatArray());
                if (p.name().endsWith("norm.weight")) {
                    assertThat(v).as(p.name()).containsOnly(1f);
                } else if (p.name().endsWith(".bias")) {
                    assertThat(v).as(p.name()).containsOnly(0f);
                } else {
                    assertThat(v).as(p.name()).isNotEqualTo(other.parameters().get(i).value().toFloatArray());
                }
            }
            // 16000 draws of normal(0, 0.02): the sample deviation is within 2% of 0.02, the mean within 3e-4 of 0.
            float[] e = a.parameters().getFirst().value().toFloatArray();
            double sum = 0, sq = 0;
            for (float x : e) {
                sum += x;
                sq += (double) x * x;
            }
            assertThat(sum / e.length).isCloseTo(0, within(3e-4));
            assertThat(Math.sqrt(sq / e.length)).isCloseTo(0.02, within(4e-4));
        }
    }

    /** A weight that forwards to a dense one and counts the calls: what an adapter looks like to the model. */
    private static final class Counting implements LinearWeight {
        final DenseWeight base;
        int forwards, backwards;

        Counting(DenseWeight base) {
            this.base = base;
        }

        public long inFeatures() {
            return base.inFeatures();
        }

        public long outFeatures() {
            return base.outFeatures();
        }

        public void forward(Session s, Tensor x, Tensor y) {
            forwards++;
            base.forward(s, x, y);
        }

        public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
            backwards++;
            base.backward(s, x, dy, dx);
        }

        public List<Parameter> parameters() {
            return base.parameters();
        }
    }

    @Test
    void everyLinearLayerGoesThroughTheWeightTransform() {
        List<String> layers = new ArrayList<>();
        List<Counting> made = new ArrayList<>();
        WeightTransform t = (session, layer, base) -> {
            layers.add(layer);
            Counting c = new Counting(base);
            made.add(c);
            return c;
        };
        try (LlamaModel m = LlamaModel.create(s, GQA, 1, t, false)) {
            List<String> expected = new ArrayList<>();
            for (int i = 0; i < GQA.layers(); i++) {
                for (String n : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                    expected.add("model.layers." + i + "." + n);
                }
            }
            expected.add("lm_head");
            assertThat(layers).containsExactlyElementsOf(expected);
            m.forwardBackward(tokens(), targets(), 1f);
            assertThat(made).allMatch(c -> c.forwards == 1 && c.backwards == 1);
        }
    }

    @Test
    void savedActivationsAreFreedByTheEndOfTheStepAndNothingIsLeftInWorkspace() {
        try (LlamaModel m = LlamaModel.create(s, GQA, 1, WeightTransform.IDENTITY, false)) {
            MemoryLedger ledger = s.ledger();
            Tensor tokens = tokens(), targets = targets();
            m.forwardBackward(tokens, targets, 1f);
            long activations = ledger.current(Category.ACTIVATIONS), workspace = ledger.current(Category.WORKSPACE);
            long gradients = ledger.current(Category.GRADIENTS);
            m.forwardBackward(tokens, targets, 1f);
            m.loss(tokens, targets);
            assertThat(ledger.current(Category.ACTIVATIONS)).isEqualTo(activations).isZero();
            assertThat(ledger.current(Category.WORKSPACE)).isEqualTo(workspace);
            assertThat(ledger.current(Category.GRADIENTS)).isEqualTo(gradients)
                    .isEqualTo(ledger.current(Category.TRAINABLE_PARAMETERS));
            // Per layer the step keeps at least the attention probabilities, (B, H, T, T) f32.
            assertThat(ledger.peak(Category.ACTIVATIONS)).isGreaterThan((long) GQA.layers() * 2 * 4 * 6 * 6 * Float.BYTES);
        }
    }

    @Test
    void checkpointingGivesTheSameLossAndGradientsWithFewerSavedActivations() {
        float plainLoss, ckptLoss;
        List<float[]> plain, ckpt;
        long plainPeak, ckptPeak;
        try (GradCheck g1 = new GradCheck(1); GradCheck g2 = new GradCheck(1)) {
            try (LlamaModel m = LlamaModel.create(g1.session, GQA, 5, WeightTransform.IDENTITY, false)) {
                LlamaModelGradientTest.randomize(g1, m.parameters());
                plainLoss = m.forwardBackward(tokens(), targets(), 1f);
                plain = grads(m);
                plainPeak = g1.pool.ledger().peak(Category.ACTIVATIONS);
            }
            try (LlamaModel m = LlamaModel.create(g2.session, GQA, 5, WeightTransform.IDENTITY, true)) {
                assertThat(m.checkpointing()).isTrue();
                LlamaModelGradientTest.randomize(g2, m.parameters());
                ckptLoss = m.forwardBackward(tokens(), targets(), 1f);
                ckpt = grads(m);
                ckptPeak = g2.pool.ledger().peak(Category.ACTIVATIONS);
                assertThat(g2.pool.ledger().current(Category.ACTIVATIONS)).isZero();
            }
        }
        // The recomputed forward runs the same ops on the same inputs, so on one backend the results are identical.
        assertThat(ckptLoss).isEqualTo(plainLoss);
        for (int i = 0; i < plain.size(); i++) {
            assertThat(ckpt.get(i)).containsExactly(plain.get(i));
        }
        // Three layers' activations against one layer's plus the block inputs.
        assertThat(ckptPeak).isLessThan(plainPeak / 2);
    }

    @Test
    void lossIsTheMeanCrossEntropyOfTheLogitsOverTargetsNotIgnored() {
        try (LlamaModel m = LlamaModel.create(s, GQA, 3, WeightTransform.IDENTITY, false)) {
            LlamaModelGradientTest.randomize(g, m.parameters());
            Tensor tokens = tokens(), targets = targets();
            Tensor logits = g.f32("logits", 12, GQA.vocab());
            m.logits(tokens, logits);
            float[] t = targets.toFloatArray();
            double total = 0;
            int count = 0;
            for (int r = 0; r < 12; r++) {
                if (t[r] < 0) {
                    continue;
                }
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j < GQA.vocab(); j++) {
                    max = Math.max(max, logits.get(r, j));
                }
                for (int j = 0; j < GQA.vocab(); j++) {
                    sum += Math.exp(logits.get(r, j) - max);
                }
                total += max + Math.log(sum) - logits.get(r, (int) t[r]);
                count++;
            }
            float loss = m.loss(tokens, targets);
            assertThat((double) loss).isCloseTo(total / count, within(1e-6 * total / count));
            assertThat(m.forwardBackward(tokens, targets, 1f)).isEqualTo(loss);
        }
    }

    @Test
    void gradientsAccumulateOverCallsInProportionToTheScale() {
        try (LlamaModel m = LlamaModel.create(s, GQA, 3, WeightTransform.IDENTITY, false)) {
            LlamaModelGradientTest.randomize(g, m.parameters());
            m.forwardBackward(tokens(), targets(), 1f);
            List<float[]> once = grads(m);
            m.parameters().forEach(p -> s.backend().fill(p.grad(s), 0f));
            m.forwardBackward(tokens(), targets(), 0.25f);
            m.forwardBackward(tokens(), targets(), 0.75f);
            List<float[]> twice = grads(m);
            for (int i = 0; i < once.size(); i++) {
                float[] a = once.get(i), b = twice.get(i);
                for (int j = 0; j < a.length; j++) {
                    assertThat(b[j]).isCloseTo(a[j], within(1e-6f + 1e-5f * Math.abs(a[j])));
                }
            }
        }
    }

    @Test
    void aBatchWithEveryTargetIgnoredHasLossZeroAndAddsNoGradient() {
        try (LlamaModel m = LlamaModel.create(s, GQA, 3, WeightTransform.IDENTITY, false)) {
            Tensor ignored = g.ints("targets", new int[]{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, 2, 6);
            assertThat(m.forwardBackward(tokens(), ignored, 1f)).isZero();
            assertThat(m.loss(tokens(), ignored)).isZero();
            for (Parameter p : m.parameters()) {
                assertThat(p.grad(s).toFloatArray()).as(p.name()).containsOnly(0f);
            }
        }
    }

    @Test
    void badShapesFailWithOneClearSentence() {
        try (LlamaModel m = LlamaModel.create(s, GQA, 3, WeightTransform.IDENTITY, false)) {
            Tensor longer = g.ints("tokens", new int[18], 2, 9);
            assertThatThrownBy(() -> m.forwardBackward(longer, longer, 1f))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("sequence length 9 exceeds the model's 8 positions");
            Tensor other = g.ints("targets", new int[12], 3, 4);
            assertThatThrownBy(() -> m.loss(tokens(), other))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, 6]").hasMessageContaining("[3, 4]");
            assertThatThrownBy(() -> m.logits(tokens(), g.f32("logits", 12, 10)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[12, 11]");
            Tensor bad = g.ints("tokens", new int[]{0, 1, 2, 3, 4, 11}, 1, 6);
            assertThatThrownBy(() -> m.loss(bad, bad)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("11");
            assertThat(s.ledger().current(Category.ACTIVATIONS)).isZero();
        }
    }
}
