package jtune.engine.model;

import static jtune.engine.model.GradCheck.weighted;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import jtune.engine.backend.Backend;
import jtune.engine.nn.CausalAttention;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.Linear;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.RmsNorm;
import jtune.engine.nn.Rotary;
import jtune.engine.nn.SelfAttention;
import jtune.engine.nn.Session;
import jtune.engine.nn.SwiGluMlp;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Each layer's backward against finite differences of its forward on random inputs (see {@link GradCheck} for the
 * step and why {@code 1e-4 + 1e-3 · |fd|} separates right from wrong), and the forward of attention and RoPE against
 * direct formulas written out here.
 */
class LayerGradientTest {
    private static final double ATOL = 1e-4, RTOL = 1e-3;

    private final GradCheck g = new GradCheck(0x1a7e5L);
    private final Session s = g.session;
    private final Backend be = s.backend();

    @AfterEach
    void close() {
        g.close();
    }

    private Parameter param(String name, double lo, double hi, long... dims) {
        Tensor t = s.f32(name, Category.TRAINABLE_PARAMETERS, dims);
        g.fill(t, lo, hi);
        return new Parameter(name, t, true, dims.length > 1);
    }

    @Test
    void rmsNormGivesInputAndWeightGradients() {
        Parameter w = param("norm.weight", 0.5, 1.5, 8);
        RmsNorm norm = new RmsNorm(w, 1e-5f);
        Tensor x = g.random("x", -2, 2, 5, 8), dy = g.random("dy", -1, 1, 5, 8);
        Tensor y = g.f32("y", 5, 8), rstd = g.f32("rstd", 5), dx = g.f32("dx", 5, 8);
        norm.forward(s, x, y, rstd);
        norm.backward(s, x, rstd, dy, dx);
        GradCheck.check("dx", x, dx.toFloatArray(), null, ATOL, RTOL, () -> {
            norm.forward(s, x, y, rstd);
            return weighted(dy, y);
        });
        GradCheck.check("dweight", w.value(), w.grad(s).toFloatArray(), null, ATOL, RTOL, () -> {
            norm.forward(s, x, y, rstd);
            return weighted(dy, y);
        });
    }

    @Test
    void frozenRmsNormStillGivesTheInputGradientAndKeepsNoWeightGradient() {
        Parameter trained = param("norm.weight", 0.5, 1.5, 8);
        Parameter frozen = new Parameter("frozen.weight", trained.value(), false, false);
        Tensor x = g.random("x", -2, 2, 5, 8), dy = g.random("dy", -1, 1, 5, 8);
        Tensor y = g.f32("y", 5, 8), rstd = g.f32("rstd", 5), dx = g.f32("dx", 5, 8), want = g.f32("want", 5, 8);
        new RmsNorm(trained, 1e-5f).forward(s, x, y, rstd);
        new RmsNorm(trained, 1e-5f).backward(s, x, rstd, dy, want);
        new RmsNorm(frozen, 1e-5f).backward(s, x, rstd, dy, dx);
        assertThat(dx.toFloatArray()).containsExactly(want.toFloatArray());
        assertThat(frozen.gradOrNull()).isNull();
    }

    @ParameterizedTest(name = "bias {0}")
    @CsvSource({"false", "true"})
    void linearGivesInputWeightAndBiasGradients(boolean withBias) {
        Parameter w = param("lin.weight", -1, 1, 4, 6);
        Parameter b = withBias ? param("lin.bias", -1, 1, 4) : null;
        Linear lin = new Linear(new DenseWeight(w), b);
        Tensor x = g.random("x", -1, 1, 5, 6), dy = g.random("dy", -1, 1, 5, 4);
        Tensor y = g.f32("y", 5, 4), dx = g.f32("dx", 5, 6);
        lin.forward(s, x, y);
        if (withBias) {
            // y[n, o] = Σ_i x[n, i] · W[o, i] + b[o], written out.
            for (int n = 0; n < 5; n++) {
                for (int o = 0; o < 4; o++) {
                    double e = b.value().get(o);
                    for (int i = 0; i < 6; i++) {
                        e += (double) x.get(n, i) * w.value().get(o, i);
                    }
                    assertThat((double) y.get(n, o)).isCloseTo(e, within(1e-6));
                }
            }
        }
        lin.backward(s, x, dy, dx);
        var loss = (java.util.function.DoubleSupplier) () -> {
            lin.forward(s, x, y);
            return weighted(dy, y);
        };
        GradCheck.check("dx", x, dx.toFloatArray(), null, ATOL, RTOL, loss);
        GradCheck.check("dW", w.value(), w.grad(s).toFloatArray(), null, ATOL, RTOL, loss);
        if (withBias) {
            GradCheck.check("db", b.value(), b.grad(s).toFloatArray(), null, ATOL, RTOL, loss);
        }
    }

    @Test
    void embeddingGradientAddsRepeatedIds() {
        Tensor table = g.random("table", -1, 1, 7, 3), ids = g.ints("ids", new int[]{1, 4, 1, 6, 0}, 5);
        Tensor out = g.f32("out", 5, 3), dy = g.random("dy", -1, 1, 5, 3), dtable = g.f32("dtable", 7, 3);
        be.embeddingBackward(dy, ids, dtable);
        GradCheck.check("dtable", table, dtable.toFloatArray(), null, ATOL, RTOL, () -> {
            be.embedding(table, ids, out);
            return weighted(dy, out);
        });
    }

    @Test
    void ropeRotatesByPositionTimesFrequencyAndInverseIsItsGradient() {
        int b = 2, t = 5, h = 3, d = 8;
        try (Rotary rope = new Rotary(Rotary.inverseFrequencies(d, 10000))) {
            Tensor x = g.random("x", -1, 1, b, t, h, d), y = g.f32("y", b, t, h, d);
            be.copy(x, y);
            rope.apply(s, y, false);
            for (int bb = 0; bb < b; bb++) {
                for (int p = 0; p < t; p++) {
                    for (int hh = 0; hh < h; hh++) {
                        for (int i = 0; i < d / 2; i++) {
                            double angle = p * Math.pow(10000, -2.0 * i / d);
                            double x1 = x.get(bb, p, hh, i), x2 = x.get(bb, p, hh, i + d / 2);
                            assertThat((double) y.get(bb, p, hh, i)).isCloseTo(x1 * Math.cos(angle) - x2 * Math.sin(angle), within(1e-5));
                            assertThat((double) y.get(bb, p, hh, i + d / 2)).isCloseTo(x1 * Math.sin(angle) + x2 * Math.cos(angle), within(1e-5));
                        }
                    }
                }
            }
            Tensor dy = g.random("dy", -1, 1, b, t, h, d), dx = g.f32("dx", b, t, h, d);
            be.copy(dy, dx);
            rope.apply(s, dx, true);
            GradCheck.check("rope dx", x, dx.toFloatArray(), null, ATOL, RTOL, () -> {
                be.copy(x, y);
                rope.apply(s, y, false);
                return weighted(dy, y);
            });
        }
    }

    @Test
    void llama3ScalingKeepsHighDividesLowAndBlendsTheMiddle() {
        // original 1024 positions, low factor 1 (λ_low = 1024), high factor 4 (λ_high = 256), factor 8.
        float[] f = Rotary.llama3Scaling(new float[]{1f, 0.1f, 0.01f, 0.001f}, 8, 1, 4, 1024);
        double wavelen = 2 * Math.PI / 0.01f;
        double smooth = (1024 / wavelen - 1) / (4 - 1);
        assertThat(f[0]).isEqualTo(1f);
        assertThat(f[1]).isEqualTo(0.1f);
        assertThat((double) f[2]).isCloseTo((1 - smooth) * 0.01f / 8 + smooth * 0.01f, within(1e-9));
        assertThat((double) f[3]).isCloseTo(0.001f / 8.0, within(1e-10));
    }

    @ParameterizedTest(name = "{0} heads, {1} kv heads")
    @CsvSource({"4, 2", "4, 4", "4, 1"})
    void attentionMatchesDirectFormulaAndFiniteDifferences(int heads, int kvHeads) {
        int b = 2, t = 5, hd = 4, n = b * t;
        CausalAttention att = new CausalAttention(heads, kvHeads, hd);
        Tensor q = g.random("q", -1, 1, n, heads * hd), k = g.random("k", -1, 1, n, kvHeads * hd);
        Tensor v = g.random("v", -1, 1, n, kvHeads * hd);
        Tensor probs = g.f32("probs", b, heads, t, t), out = g.f32("out", n, heads * hd);
        att.forward(s, b, t, q, k, v, probs, out);
        float[] expected = directAttention(q.toFloatArray(), k.toFloatArray(), v.toFloatArray(), b, t, heads, kvHeads, hd);
        float[] got = out.toFloatArray();
        for (int i = 0; i < got.length; i++) {
            assertThat((double) got[i]).as("out[%d]", i).isCloseTo(expected[i], within(1e-5));
        }
        for (int p = 0; p < t; p++) {
            for (int j = p + 1; j < t; j++) {
                assertThat(probs.get(1, heads - 1, p, j)).as("masked probability (%d, %d)", p, j).isZero();
            }
        }
        Tensor dy = g.random("dy", -1, 1, n, heads * hd);
        Tensor dq = g.f32("dq", n, heads * hd), dk = g.f32("dk", n, kvHeads * hd), dv = g.f32("dv", n, kvHeads * hd);
        att.backward(s, b, t, q, k, v, probs, dy, dq, dk, dv);
        var loss = (java.util.function.DoubleSupplier) () -> {
            att.forward(s, b, t, q, k, v, probs, out);
            return weighted(dy, out);
        };
        GradCheck.check("dq", q, dq.toFloatArray(), null, ATOL, RTOL, loss);
        GradCheck.check("dk", k, dk.toFloatArray(), null, ATOL, RTOL, loss);
        GradCheck.check("dv", v, dv.toFloatArray(), null, ATOL, RTOL, loss);
    }

    /** Attention written out in double: head h reads kv head h / (H/KVH), row p attends to positions ≤ p. */
    private static float[] directAttention(float[] q, float[] k, float[] v, int b, int t, int heads, int kvHeads, int hd) {
        float[] out = new float[b * t * heads * hd];
        for (int bb = 0; bb < b; bb++) {
            for (int h = 0; h < heads; h++) {
                int kvh = h / (heads / kvHeads);
                for (int p = 0; p < t; p++) {
                    double[] w = new double[p + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j <= p; j++) {
                        for (int d = 0; d < hd; d++) {
                            w[j] += (double) q[((bb * t + p) * heads + h) * hd + d] * k[((bb * t + j) * kvHeads + kvh) * hd + d];
                        }
                        w[j] /= Math.sqrt(hd);
                        max = Math.max(max, w[j]);
                    }
                    for (int j = 0; j <= p; j++) {
                        w[j] = Math.exp(w[j] - max);
                        sum += w[j];
                    }
                    for (int d = 0; d < hd; d++) {
                        double o = 0;
                        for (int j = 0; j <= p; j++) {
                            o += w[j] / sum * v[((bb * t + j) * kvHeads + kvh) * hd + d];
                        }
                        out[((bb * t + p) * heads + h) * hd + d] = (float) o;
                    }
                }
            }
        }
        return out;
    }

    @Test
    void swigluMlpGivesInputAndWeightGradients() {
        Parameter gw = param("gate.weight", -0.6, 0.6, 8, 6), uw = param("up.weight", -0.6, 0.6, 8, 6);
        Parameter dw = param("down.weight", -0.5, 0.5, 6, 8);
        SwiGluMlp mlp = new SwiGluMlp(new Linear(new DenseWeight(gw), null), new Linear(new DenseWeight(uw), null),
                new Linear(new DenseWeight(dw), null));
        Tensor x = g.random("x", -1.5, 1.5, 5, 6), dy = g.random("dy", -1, 1, 5, 6);
        Tensor y = g.f32("y", 5, 6), dx = g.f32("dx", 5, 6);
        long before = g.pool.ledger().current(Category.ACTIVATIONS);
        mlp.backward(s, mlp.forward(s, x, y, Category.ACTIVATIONS), dy, dx);
        assertThat(g.pool.ledger().current(Category.ACTIVATIONS)).isEqualTo(before);
        var loss = (java.util.function.DoubleSupplier) () -> {
            mlp.forward(s, x, y, Category.WORKSPACE).close();
            return weighted(dy, y);
        };
        GradCheck.check("dx", x, dx.toFloatArray(), null, ATOL, RTOL, loss);
        for (Parameter p : List.of(gw, uw, dw)) {
            GradCheck.check(p.name(), p.value(), p.grad(s).toFloatArray(), null, ATOL, RTOL, loss);
        }
    }

    @ParameterizedTest(name = "q/k/v bias {0}, q/k norm {1}")
    @CsvSource({"false, false", "true, false", "false, true", "true, true"})
    void selfAttentionGivesInputAndParameterGradients(boolean bias, boolean qkNorm) {
        int b = 2, t = 4, d = 8, heads = 4, kvHeads = 2, hd = 4, n = b * t;
        List<Linear> proj = List.of(linear("q", heads * hd, d, bias), linear("k", kvHeads * hd, d, bias),
                linear("v", kvHeads * hd, d, bias), linear("o", d, heads * hd, false));
        RmsNorm qn = qkNorm ? new RmsNorm(param("q_norm.weight", 0.5, 1.5, hd), 1e-5f) : null;
        RmsNorm kn = qkNorm ? new RmsNorm(param("k_norm.weight", 0.5, 1.5, hd), 1e-5f) : null;
        Rotary rope = new Rotary(Rotary.inverseFrequencies(hd, 100));
        SelfAttention att = new SelfAttention(proj.get(0), proj.get(1), proj.get(2), proj.get(3), qn, kn, rope, heads, kvHeads, hd);
        Tensor x = g.random("x", -1, 1, n, d), dy = g.random("dy", -1, 1, n, d);
        Tensor y = g.f32("y", n, d), dx = g.f32("dx", n, d);
        att.backward(s, att.forward(s, x, b, t, y, Category.ACTIVATIONS), dy, dx);
        assertThat(g.pool.ledger().current(Category.ACTIVATIONS)).isZero();
        var loss = (java.util.function.DoubleSupplier) () -> {
            att.forward(s, x, b, t, y, Category.WORKSPACE).close();
            return weighted(dy, y);
        };
        GradCheck.check("dx", x, dx.toFloatArray(), null, ATOL, RTOL, loss);
        for (Parameter p : att.parameters()) {
            GradCheck.check(p.name(), p.value(), p.grad(s).toFloatArray(), g.sample(p.value().size(), 12), ATOL, RTOL, loss);
        }
        rope.close();
    }

    private Linear linear(String name, int out, int in, boolean bias) {
        double a = 1.2 / Math.sqrt(in);
        return new Linear(new DenseWeight(param(name + "_proj.weight", -a, a, out, in)),
                bias ? param(name + "_proj.bias", -0.3, 0.3, out) : null);
    }
}
