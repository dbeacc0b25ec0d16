package jtune.engine.optim;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * AdamW and SGD against hand-written double-precision versions of PyTorch's update rules (torch.optim.AdamW and
 * torch.optim.SGD as documented), over several steps with a changing learning rate and fresh gradients.
 */
class OptimizerTest {
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session s = new Session(new ScalarBackend(), pool);
    private final SplittableRandom rng = new SplittableRandom(7);

    @AfterEach
    void close() {
        pool.close();
    }

    private float[] random(int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (scale * (2 * rng.nextDouble() - 1));
        }
        return v;
    }

    private Parameter param(String name, float[] values, boolean trainable, boolean decay) {
        var t = pool.allocate(name, jtune.engine.tensor.DType.F32,
                trainable ? Category.TRAINABLE_PARAMETERS : Category.FROZEN_WEIGHTS, values.length);
        return new Parameter(name, t.copyFrom(values), trainable, decay);
    }

    private static double[] widen(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    private static void assertClose(float[] actual, double[] expected, double tol) {
        assertThat(actual).hasSize(expected.length);
        for (int i = 0; i < actual.length; i++) {
            assertThat((double) actual[i]).as("element %d", i).isCloseTo(expected[i], within(tol));
        }
    }

    /** PyTorch's AdamW for one tensor: decoupled decay, then the bias-corrected Adam step. */
    private static void adamwReference(double[] p, double[] m, double[] v, float[] g, double lr, double b1, double b2,
                                       double eps, double wd, int t) {
        for (int i = 0; i < p.length; i++) {
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            double mHat = m[i] / (1 - Math.pow(b1, t));
            double vHat = v[i] / (1 - Math.pow(b2, t));
            p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
        }
    }

    @Test
    void adamwMatchesPyTorchsFormulasWithTwoParameterGroups() {
        int n = 37;
        float[] w0 = random(n, 1), b0 = random(5, 1), f0 = random(3, 1);
        Parameter w = param("w", w0, true, true);
        Parameter bias = param("norm", b0, true, false);
        Parameter frozen = param("frozen", f0, false, false);
        Parameter noGrad = param("unused", random(4, 1), true, true);
        float[] unusedBefore = noGrad.value().toFloatArray();
        float b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
        double[] pw = widen(w0), mw = new double[n], vw = new double[n];
        double[] pb = widen(b0), mb = new double[5], vb = new double[5];
        try (AdamW opt = new AdamW(s, List.of(w, bias, frozen, noGrad), b1, b2, eps, wd)) {
            assertThat(opt.parameters()).containsExactly(w, bias, noGrad);
            assertThat(opt.state().keySet()).containsExactly("optimizer.exp_avg.w", "optimizer.exp_avg_sq.w",
                    "optimizer.exp_avg.norm", "optimizer.exp_avg_sq.norm", "optimizer.exp_avg.unused",
                    "optimizer.exp_avg_sq.unused");
            assertThat(pool.ledger().current(Category.OPTIMIZER_STATE)).isEqualTo(2L * 4 * (n + 5 + 4));
            for (int t = 1; t <= 6; t++) {
                float lr = 0.01f * t;
                float[] gw = random(n, 0.5), gb = random(5, 0.5);
                w.grad(s).copyFrom(gw);
                bias.grad(s).copyFrom(gb);
                opt.step(lr);
                adamwReference(pw, mw, vw, gw, lr, b1, b2, eps, wd, t);
                adamwReference(pb, mb, vb, gb, lr, b1, b2, eps, 0, t);
            }
            assertThat(opt.steps()).isEqualTo(6);
            assertClose(w.value().toFloatArray(), pw, 2e-6);
            assertClose(bias.value().toFloatArray(), pb, 2e-6);
            assertClose(opt.state().get("optimizer.exp_avg.w").toFloatArray(), mw, 1e-6);
            assertClose(opt.state().get("optimizer.exp_avg_sq.w").toFloatArray(), vw, 1e-6);
            assertThat(noGrad.value().toFloatArray()).containsExactly(unusedBefore);
            assertThat(frozen.value().toFloatArray()).containsExactly(f0);
            opt.zeroGrad();
            assertThat(w.grad(s).toFloatArray()).containsOnly(0f);
        }
        assertThat(pool.ledger().current(Category.OPTIMIZER_STATE)).isZero();
    }

    /** PyTorch's SGD for one tensor (dampening 0, no Nesterov); buf is null before the first step. */
    private static double[] sgdReference(double[] p, double[] buf, float[] g, double lr, double mu, double wd) {
        double[] d = new double[p.length];
        for (int i = 0; i < p.length; i++) {
            d[i] = g[i] + wd * p[i];
        }
        if (mu != 0) {
            if (buf == null) {
                buf = d.clone();
            } else {
                for (int i = 0; i < p.length; i++) {
                    buf[i] = mu * buf[i] + d[i];
                }
            }
            d = buf;
        }
        for (int i = 0; i < p.length; i++) {
            p[i] -= lr * d[i];
        }
        return buf;
    }

    @Test
    void sgdWithMomentumMatchesPyTorchsFormulas() {
        for (float mu : new float[]{0f, 0.9f}) {
            int n = 29;
            float[] w0 = random(n, 1), b0 = random(3, 1);
            Parameter w = param("w", w0, true, true);
            Parameter bias = param("b", b0, true, false);
            double[] pw = widen(w0), pb = widen(b0);
            double[] bufW = null, bufB = null;
            try (Sgd opt = new Sgd(s, List.of(w, bias), mu, 0.05f)) {
                assertThat(opt.state()).hasSize(mu > 0 ? 2 : 0);
                for (int t = 1; t <= 5; t++) {
                    float lr = 0.1f / t;
                    float[] gw = random(n, 1), gb = random(3, 1);
                    w.grad(s).copyFrom(gw);
                    bias.grad(s).copyFrom(gb);
                    opt.step(lr);
                    bufW = sgdReference(pw, bufW, gw, lr, mu, 0.05);
                    bufB = sgdReference(pb, bufB, gb, lr, mu, 0);
                    assertThat(w.grad(s).toFloatArray()).as("the gradient is left as it was").containsExactly(gw);
                }
                assertClose(w.value().toFloatArray(), pw, 2e-6);
                assertClose(bias.value().toFloatArray(), pb, 2e-6);
            }
            w.close();
            bias.close();
        }
    }

    @Test
    void globalNormClippingScalesEveryGradientLikeClipGradNorm() {
        Parameter a = param("a", new float[2], true, true);
        Parameter b = param("b", new float[1], true, false);
        Parameter none = param("none", new float[3], true, true);
        a.grad(s).copyFrom(new float[]{3, 4});
        b.grad(s).copyFrom(new float[]{12});
        List<Parameter> all = List.of(a, b, none);
        assertThat(Gradients.globalNorm(s, all)).isEqualTo(13.0);
        assertThat(Gradients.clipGlobalNorm(s, all, 20)).isEqualTo(13.0);
        assertThat(a.grad(s).toFloatArray()).containsExactly(3, 4);
        assertThat(Gradients.clipGlobalNorm(s, all, 6.5)).isEqualTo(13.0);
        double c = 6.5 / (13 + 1e-6);
        assertThat(a.grad(s).toFloatArray()).containsExactly((float) (3 * c), (float) (4 * c));
        assertThat(b.grad(s).toFloatArray()).containsExactly((float) (12 * c));
        assertThat(Gradients.globalNorm(s, all)).isCloseTo(6.5, within(1e-5));
        assertThat(none.gradOrNull()).isNull();
    }

    @Test
    void warmupThenCosineToTheMinimumRatio() {
        LrSchedule cos = LrSchedule.cosine(1.0, 4, 12, 0.1);
        assertThat(cos.lr(1)).isEqualTo(0.25f);
        assertThat(cos.lr(2)).isEqualTo(0.5f);
        assertThat(cos.lr(4)).isEqualTo(1f);
        assertThat(cos.lr(8)).isEqualTo((float) (0.1 + 0.9 * 0.5));
        assertThat(cos.lr(6)).isEqualTo((float) (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4))));
        assertThat(cos.lr(12)).isEqualTo(0.1f);
        assertThat(cos.lr(50)).isEqualTo(0.1f);
        for (int t = 5; t <= 12; t++) {
            assertThat(cos.lr(t)).as("decreasing at %d", t).isLessThan(cos.lr(t - 1));
        }
        LrSchedule noWarmup = LrSchedule.cosine(2.0, 0, 10, 0.0);
        assertThat(noWarmup.lr(10)).isEqualTo(0f);
        assertThat(noWarmup.lr(5)).isEqualTo(1f);
        LrSchedule flat = LrSchedule.constant(3e-4, 2, 100);
        assertThat(flat.lr(1)).isEqualTo(1.5e-4f);
        assertThat(flat.lr(2)).isEqualTo(3e-4f);
        assertThat(flat.lr(99)).isEqualTo(3e-4f);
        assertThat(LrSchedule.Decay.parse("cosine")).isEqualTo(LrSchedule.Decay.COSINE);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> LrSchedule.Decay.parse("linear"))
                .hasMessage("schedule 'linear' is not one of cosine, constant");
    }
}
