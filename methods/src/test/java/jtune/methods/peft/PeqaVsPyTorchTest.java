package jtune.methods.peft;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensorsReader;
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
import jtune.methods.quant.IntQuantization;
import jtune.methods.quant.Rtn;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * PEQA against PyTorch (fixtures/peqa-fixture.safetensors, made by methods/src/test/python/make_peqa_fixture.py, which
 * quantizes by its own RTN and trains the scales with autograd): on a tiny LLaMA whose every block linear layer is
 * PEQA, jtune's RTN gives the fixture's codes, scales and zero points bit for bit; the loss, the logits and the
 * gradient of every scale match, no other parameter gets a gradient, and five AdamW steps on the scales follow
 * PyTorch's losses and end at its scales. Bounds: the fixture's float32 results lie about 1e-6 from float64, so two
 * float32 implementations summing in different orders agree to a few 1e-6; a wrong group, zero point or transposed
 * gradient errs by far more than 1e-2.
 */
class PeqaVsPyTorchTest {
    private static final LlamaConfig CONFIG = new LlamaConfig(32, 80, 2, 4, 2, 8, 48, 16, 10000.0, null, 1e-5f, false,
            false, false);
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session s = new Session(new ScalarBackend(), pool);

    @AfterEach
    void close() {
        pool.close();
    }

    static Path fixture() {
        try {
            return Path.of(PeqaVsPyTorchTest.class.getResource("/fixtures/peqa-fixture.safetensors").toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void perChannelFourBit() throws IOException {
        check("int4_g0");
    }

    @Test
    void groupedThreeBitSymmetric() throws IOException {
        check("int3_g32s");
    }

    private void check(String variant) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(fixture())) {
            Map<String, Object> v = Json.parseObject(r.metadata().get(variant));
            QuantFormat format = QuantFormat.integer(((Number) v.get("bits")).intValue(),
                    ((Number) v.get("group")).intValue(), (Boolean) v.get("symmetric"), DType.F32);
            Map<String, PeqaWeight> peqa = new LinkedHashMap<>();
            WeightTransform t = (s2, layer, dense) -> {
                if (!layer.startsWith("model.layers.")) {
                    return dense;
                }
                try (dense) {
                    int rows = Math.toIntExact(dense.outFeatures()), cols = Math.toIntExact(dense.inFeatures());
                    IntQuantization q = Rtn.quantize(dense.weight().value().toFloatArray(), rows, cols, format);
                    checkQuantization(r, variant, layer, q);
                    try (QuantizedMatrix m = q.toMatrix(pool, layer + ".weight")) {
                        PeqaWeight p = PeqaWeight.copyOf(pool, m);
                        peqa.put(layer, p);
                        return p;
                    }
                }
            };
            WeightSource source = (s2, name, init, category, dims) -> {
                Tensor x = s2.f32(name, category, dims);
                try {
                    r.read(name, x);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                return x;
            };
            try (LlamaModel model = LlamaModel.create(s, CONFIG, source, false, t, false);
                 Tensor tokens = s.i32("tokens", Category.WORKSPACE, 2, 8);
                 Tensor targets = s.i32("targets", Category.WORKSPACE, 2, 8);
                 Tensor logits = s.f32("logits", Category.WORKSPACE, 16, CONFIG.vocab())) {
                assertThat(peqa).hasSize(14);
                r.read("tokens", tokens);
                r.read("targets", targets);
                model.logits(tokens, logits);
                report(variant + " logits", logits.toFloatArray(), floats(r, variant + ".logits"), 1e-5);
                float loss = model.forwardBackward(tokens, targets, 1f);
                report(variant + " loss", new float[]{loss}, floats(r, variant + ".loss"), 1e-6);
                for (Parameter p : model.parameters()) {
                    boolean scale = peqa.values().stream().anyMatch(w -> w.scales() == p);
                    assertThat(p.trainable()).as("%s trainable", p.name()).isEqualTo(scale);
                    assertThat(p.gradOrNull() != null).as("%s has a gradient", p.name()).isEqualTo(scale);
                }
                double worst = 0;
                for (Map.Entry<String, PeqaWeight> e : peqa.entrySet()) {
                    worst = Math.max(worst, relative(e.getValue().scales().grad(s).toFloatArray(),
                            floats(r, variant + ".grad." + e.getKey())));
                }
                System.out.printf(Locale.ROOT, "%s scale gradients: worst relative error over 14 layers %.2e%n",
                        variant, worst);
                assertThat(worst).as("%s: scale gradients, worst layer", variant).isLessThan(1e-5);
                train(model, tokens, targets, r, variant, peqa);
            }
        }
    }

    /** Five AdamW steps (lr 1e-3, betas 0.9/0.999, eps 1e-8, no decay) follow the fixture's losses and scales. */
    private void train(LlamaModel model, Tensor tokens, Tensor targets, SafeTensorsReader r, String variant,
                       Map<String, PeqaWeight> peqa) throws IOException {
        float[] want = floats(r, variant + ".losses");
        float[] got = new float[want.length];
        try (AdamW adam = new AdamW(s, model.parameters(), 0.9f, 0.999f, 1e-8f, 0f)) {
            assertThat(adam.parameters()).hasSize(14);
            for (int i = 0; i < got.length; i++) {
                adam.zeroGrad();
                got[i] = model.forwardBackward(tokens, targets, 1f);
                adam.step(1e-3f);
            }
        }
        report(variant + " losses over 5 AdamW steps", got, want, 1e-5);
        double worst = 0;
        for (Map.Entry<String, PeqaWeight> e : peqa.entrySet()) {
            worst = Math.max(worst, relative(e.getValue().scales().value().toFloatArray(),
                    floats(r, variant + ".final." + e.getKey())));
        }
        System.out.printf(Locale.ROOT, "%s scales after 5 steps: worst relative error %.2e%n", variant, worst);
        assertThat(worst).as("%s: scales after 5 AdamW steps", variant).isLessThan(1e-5);
    }

    /** jtune's RTN of the layer has the fixture's codes, scales and zero points exactly. */
    private static void checkQuantization(SafeTensorsReader r, String variant, String layer, IntQuantization q) {
        try {
            float[] codes = floats(r, variant + ".codes." + layer);
            for (int e = 0; e < codes.length; e++) {
                assertThat(q.codes()[e] & 0xff).as("%s %s code %d", variant, layer, e).isEqualTo((int) codes[e]);
            }
            assertThat(q.scales()).as("%s %s scales", variant, layer)
                    .containsExactly(floats(r, variant + ".scales." + layer));
            assertThat(q.zeros()).as("%s %s zeros", variant, layer)
                    .containsExactly(floats(r, variant + ".zeros." + layer));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static float[] floats(SafeTensorsReader r, String name) throws IOException {
        MemoryPool p = new MemoryPool(new MemoryLedger());
        try (p; Tensor t = r.tensor(name, p, Category.WORKSPACE)) {
            if (t.dtype() == DType.U8) {
                float[] out = new float[Math.toIntExact(t.size())];
                for (int i = 0; i < out.length; i++) {
                    out[i] = t.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, t.byteOffset() + i) & 0xff;
                }
                return out;
            }
            return t.toFloatArray();
        }
    }

    /** ‖got − want‖ / ‖want‖. */
    static double relative(float[] got, float[] want) {
        assertThat(got).hasSameSizeAs(want);
        double d = 0, n = 0;
        for (int i = 0; i < got.length; i++) {
            d += ((double) got[i] - want[i]) * ((double) got[i] - want[i]);
            n += (double) want[i] * want[i];
        }
        return Math.sqrt(d / n);
    }

    private static void report(String what, float[] got, float[] want, double bound) {
        double e = relative(got, want);
        System.out.printf(Locale.ROOT, "%s: relative error %.2e%n", what, e);
        assertThat(e).as(what).isLessThan(bound);
    }
}
