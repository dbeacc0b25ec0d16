package jtune.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The scalar backend's forward ops, reductions and optimizer against math written here in double (the
 * backward ops are in {@link ScalarGradientTest}); and its argument errors.
 */
class ScalarOpsTest {
    private static final double U = 0x1p-24; // unit roundoff of f32

    private final ScalarBackend backend = new ScalarBackend();
    private final Fixture f = new Fixture(20250101L);

    @AfterEach
    void close() {
        f.close();
    }

    @Test
    void elementwiseOpsAreTheCorrectlyRoundedFloatResults() {
        int n = 37;
        Tensor a = f.random("a", -3, 3, n), b = f.random("b", -3, 3, n), out = f.f32("out", n);
        float[] av = a.toFloatArray(), bv = b.toFloatArray();
        backend.add(a, b, out);
        for (int i = 0; i < n; i++) {
            assertThat(out.get(i)).isEqualTo(av[i] + bv[i]);
        }
        backend.mul(a, b, out);
        for (int i = 0; i < n; i++) {
            assertThat(out.get(i)).isEqualTo(av[i] * bv[i]);
        }
        backend.scale(a, -1.25f, out);
        for (int i = 0; i < n; i++) {
            assertThat(out.get(i)).isEqualTo(-1.25f * av[i]);
        }
        Tensor y = f.random("y", -1, 1, n);
        float[] yv = y.toFloatArray();
        backend.axpy(0.3f, a, y);
        for (int i = 0; i < n; i++) {
            double exact = 0.3f * (double) av[i] + yv[i];
            assertThat((double) y.get(i)).isCloseTo(exact, within(Math.ulp((float) exact) / 2.0));
        }
        backend.fill(out, 2.5f);
        assertThat(out.toFloatArray()).containsOnly(2.5f);
        // out may alias an input.
        backend.add(a, b, a);
        for (int i = 0; i < n; i++) {
            assertThat(a.get(i)).isEqualTo(av[i] + bv[i]);
        }
    }

    @Test
    void copyGathersAStridedSource() {
        Tensor src = f.random("src", -1, 1, 4, 6);
        Tensor view = src.slice(1, 1, 4).transpose(0, 1); // (3, 4), strides (1, 6)
        Tensor dst = f.f32("dst", 3, 4);
        backend.copy(view, dst);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 4; j++) {
                assertThat(dst.get(i, j)).isEqualTo(src.get(j, i + 1));
            }
        }
        assertThatThrownBy(() -> backend.copy(src, f.f32("d2", 6, 4)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[4, 6]").hasMessageContaining("[6, 4]");
    }

    @Test
    void convertRoundsToNearestEvenAndKeepsSpecials() {
        float[] v = {1f + 0x1p-8f, 1f + 3 * 0x1p-8f, -0f, Float.NaN, Float.POSITIVE_INFINITY, 70000f, 1e-30f, 3.14159f};
        Tensor src = f.of("src", v, v.length);
        Tensor bf = f.pool.allocate("bf", DType.BF16, Category.WORKSPACE, v.length);
        Tensor hf = f.pool.allocate("hf", DType.F16, Category.WORKSPACE, v.length);
        Tensor back = f.f32("back", v.length);
        backend.convert(src, bf);
        backend.convert(src, hf);
        for (int i = 0; i < v.length; i++) {
            int bits = bf.segment().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i) & 0xffff;
            if (Float.isNaN(v[i])) {
                assertThat(Float.isNaN(bf.get(i)) && Float.isNaN(hf.get(i))).isTrue();
            } else {
                assertThat(bits).isEqualTo(Tensor.toBf16(v[i]) & 0xffff);
                assertThat(hf.get(i)).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(v[i])));
            }
        }
        assertThat(bf.get(0)).isEqualTo(1f);
        assertThat(bf.get(1)).isEqualTo(1f + 0x1p-6f);
        assertThat(hf.get(5)).isEqualTo(Float.POSITIVE_INFINITY);
        backend.convert(bf, back);
        assertThat(back.get(4)).isEqualTo(Float.POSITIVE_INFINITY);
        assertThat(back.get(3)).isNaN();
        assertThatThrownBy(() -> backend.convert(src, f.pool.allocate("i", DType.I32, Category.WORKSPACE, v.length)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("int32");
    }

    @Test
    void reductionsMatchDoubleSums() {
        int n = 1001;
        Tensor a = f.random("a", -2, 2, n), b = f.random("b", -2, 2, n);
        float[] av = a.toFloatArray(), bv = b.toFloatArray();
        double sum = 0, sq = 0, dot = 0;
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            sum += av[i];
            sq += (double) av[i] * av[i];
            dot += (double) av[i] * bv[i];
            max = Math.max(max, av[i]);
        }
        double slack = n * 0x1p-52 * 4 * n;
        assertThat((double) backend.sum(a)).isCloseTo(sum, within(Math.ulp((float) sum) / 2 + slack));
        assertThat((double) backend.sumOfSquares(a)).isCloseTo(sq, within(Math.ulp((float) sq) / 2 + slack));
        assertThat((double) backend.dot(a, b)).isCloseTo(dot, within(Math.ulp((float) dot) / 2 + slack));
        assertThat(backend.max(a)).isEqualTo(max);
        Tensor neg = f.of("neg", new float[]{-5f, -3f, -4f}, 3);
        assertThat(backend.max(neg)).isEqualTo(-3f);
        neg.set(Float.NaN, 2);
        assertThat(backend.max(neg)).isNaN();
        assertThatThrownBy(() -> backend.max(f.f32("empty", 0)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[0]");
    }

    @Test
    void softmaxRowsSumToOneAndMatchTheFormula() {
        Tensor x = f.random("x", -6, 6, 3, 11), out = f.f32("out", 3, 11);
        backend.softmax(x, out, false);
        for (int r = 0; r < 3; r++) {
            double m = Double.NEGATIVE_INFINITY, s = 0, total = 0;
            for (int j = 0; j < 11; j++) {
                m = Math.max(m, x.get(r, j));
            }
            for (int j = 0; j < 11; j++) {
                s += Math.exp(x.get(r, j) - m);
            }
            for (int j = 0; j < 11; j++) {
                double want = Math.exp(x.get(r, j) - m) / s;
                assertThat((double) out.get(r, j)).isCloseTo(want, within(2 * U * want));
                total += out.get(r, j);
            }
            assertThat(total).isCloseTo(1.0, within(11 * U));
        }
        // In place.
        float[] before = out.toFloatArray();
        backend.softmax(x, x, false);
        assertThat(x.toFloatArray()).containsExactly(before);
    }

    @Test
    void causalSoftmaxZeroesTheFutureExactly() {
        int b = 2, t = 4, s = 6; // row t attends to columns j <= t + s - t0 = t + 2
        Tensor x = f.random("x", -3, 3, b, t, s), out = f.f32("out", b, t, s);
        backend.fill(out, Float.NaN);
        backend.softmax(x, out, true);
        for (int p = 0; p < b; p++) {
            for (int i = 0; i < t; i++) {
                int valid = i + s - t + 1;
                double m = Double.NEGATIVE_INFINITY, z = 0, total = 0;
                for (int j = 0; j < valid; j++) {
                    m = Math.max(m, x.get(p, i, j));
                }
                for (int j = 0; j < valid; j++) {
                    z += Math.exp(x.get(p, i, j) - m);
                }
                for (int j = 0; j < s; j++) {
                    if (j < valid) {
                        double want = Math.exp(x.get(p, i, j) - m) / z;
                        assertThat((double) out.get(p, i, j)).isCloseTo(want, within(2 * U * want));
                        total += out.get(p, i, j);
                    } else {
                        assertThat(Float.floatToRawIntBits(out.get(p, i, j))).as("(%d,%d,%d)", p, i, j).isZero();
                    }
                }
                assertThat(total).isCloseTo(1.0, within(s * U));
            }
        }
        assertThatThrownBy(() -> backend.softmax(f.f32("wide", 5, 3), f.f32("o", 5, 3), true))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[5, 3]");
        assertThatThrownBy(() -> backend.softmax(f.f32("v", 5), f.f32("o1", 5), true))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[5]");
    }

    @Test
    void rmsNormMatchesTheFormula() {
        int n = 4, d = 9;
        float eps = 1e-5f;
        Tensor x = f.random("x", -2, 2, n, d), w = f.random("w", -1.5, 1.5, d);
        Tensor out = f.f32("out", n, d), rstd = f.f32("rstd", n);
        backend.rmsNorm(x, w, eps, out, rstd);
        for (int r = 0; r < n; r++) {
            double ss = 0;
            for (int j = 0; j < d; j++) {
                ss += (double) x.get(r, j) * x.get(r, j);
            }
            double k = 1 / Math.sqrt(ss / d + eps);
            assertThat((double) rstd.get(r)).isCloseTo(k, within(U * k));
            for (int j = 0; j < d; j++) {
                double want = x.get(r, j) * k * w.get(j);
                assertThat((double) out.get(r, j)).isCloseTo(want, within(4 * U * Math.abs(want)));
            }
        }
        assertThatThrownBy(() -> backend.rmsNorm(x, f.f32("w2", d + 1), eps, out, rstd))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'w2' [10]").hasMessageContaining("[9]");
        assertThatThrownBy(() -> backend.rmsNorm(x, w, eps, out, f.f32("r2", n + 1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[5]").hasMessageContaining("[4]");
    }

    @Test
    void ropeRotatesHalvesByTheAngle() {
        int b = 2, t = 3, h = 2, d = 8, half = d / 2;
        Tensor x = f.random("x", -1, 1, b, t, h, d);
        float[] before = x.toFloatArray();
        Tensor cos = f.f32("cos", t, half), sin = f.f32("sin", t, half);
        for (int p = 0; p < t; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * Math.pow(10000, -2.0 * i / d) + 0.3 * i;
                cos.set((float) Math.cos(angle), p, i);
                sin.set((float) Math.sin(angle), p, i);
            }
        }
        backend.rope(x, cos, sin, false);
        for (int q = 0; q < b; q++) {
            for (int p = 0; p < t; p++) {
                for (int hh = 0; hh < h; hh++) {
                    int base = ((q * t + p) * h + hh) * d;
                    for (int i = 0; i < half; i++) {
                        double c = cos.get(p, i), s = sin.get(p, i), x1 = before[base + i], x2 = before[base + i + half];
                        double w1 = x1 * c - x2 * s, w2 = x1 * s + x2 * c;
                        assertThat((double) x.get(q, p, hh, i)).isCloseTo(w1, within(U * (Math.abs(x1 * c) + Math.abs(x2 * s))));
                        assertThat((double) x.get(q, p, hh, i + half)).isCloseTo(w2, within(U * (Math.abs(x1 * s) + Math.abs(x2 * c))));
                    }
                }
            }
        }
        backend.rope(x, cos, sin, true);
        float[] restored = x.toFloatArray();
        for (int i = 0; i < before.length; i++) {
            assertThat((double) restored[i]).isCloseTo(before[i], within(8 * U));
        }
        assertThatThrownBy(() -> backend.rope(f.f32("odd", 3, 2, 5), f.f32("c", 3, 2), f.f32("s", 3, 2), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3, 2, 5]");
        assertThatThrownBy(() -> backend.rope(f.f32("flat", 3, 8), f.f32("c1", 3, 4), f.f32("s1", 3, 4), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3, 8]");
        assertThatThrownBy(() -> backend.rope(x, f.f32("c2", t, d), sin, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'c2' [3, 8]").hasMessageContaining("[3, 4]");
    }

    @Test
    void ropeIsOrthogonalSoItsInverseIsItsTranspose() {
        // For an orthogonal R: <R x, y> = <x, R⁻¹ y> and |R x| = |x|, which is why the inverse is the backward.
        int t = 5, h = 3, d = 6;
        Tensor x = f.random("x", -1, 1, t, h, d), y = f.random("y", -1, 1, t, h, d);
        Tensor cos = f.f32("cos", t, d / 2), sin = f.f32("sin", t, d / 2);
        float[] angles = f.uniform(t * d / 2, -Math.PI, Math.PI);
        for (int i = 0; i < angles.length; i++) {
            cos.set((float) Math.cos(angles[i]), i / (d / 2), i % (d / 2));
            sin.set((float) Math.sin(angles[i]), i / (d / 2), i % (d / 2));
        }
        float[] xv = x.toFloatArray(), yv = y.toFloatArray();
        backend.rope(x, cos, sin, false);
        backend.rope(y, cos, sin, true);
        float[] rx = x.toFloatArray(), ry = y.toFloatArray();
        double lhs = 0, rhs = 0, nx = 0, nrx = 0;
        for (int i = 0; i < xv.length; i++) {
            lhs += (double) rx[i] * yv[i];
            rhs += (double) xv[i] * ry[i];
            nx += (double) xv[i] * xv[i];
            nrx += (double) rx[i] * rx[i];
        }
        assertThat(lhs).isCloseTo(rhs, within(1e-5));
        assertThat(nrx).isCloseTo(nx, within(1e-5 * nx));
    }

    @Test
    void crossEntropyIsLogSumExpMinusTheTargetLogit() {
        int n = 5, v = 9;
        Tensor logits = f.random("logits", -4, 4, n, v);
        int[] targets = {3, -1, 0, 8, 5};
        Tensor tg = f.ints("targets", targets);
        Tensor dl = f.f32("dl", n, v);
        float loss = backend.crossEntropy(logits, tg, dl, 0.25f);
        double want = 0;
        for (int r = 0; r < n; r++) {
            double m = Double.NEGATIVE_INFINITY, s = 0;
            for (int j = 0; j < v; j++) {
                m = Math.max(m, logits.get(r, j));
            }
            for (int j = 0; j < v; j++) {
                s += Math.exp(logits.get(r, j) - m);
            }
            double lse = m + Math.log(s);
            if (targets[r] >= 0) {
                want += lse - logits.get(r, targets[r]);
            }
            for (int j = 0; j < v; j++) {
                double g = targets[r] < 0 ? 0 : 0.25 * (Math.exp(logits.get(r, j) - lse) - (j == targets[r] ? 1 : 0));
                assertThat((double) dl.get(r, j)).isCloseTo(g, within(4 * U * 0.25));
            }
        }
        assertThat((double) loss).isCloseTo(want, within((double) Math.ulp((float) want)));
        assertThat(backend.crossEntropy(logits, tg, null, 1f)).isEqualTo(loss);
        // dlogits may alias logits.
        float[] separate = dl.toFloatArray();
        assertThat(backend.crossEntropy(logits, tg, logits, 0.25f)).isEqualTo(loss);
        assertThat(logits.toFloatArray()).containsExactly(separate);
    }

    @Test
    void crossEntropyRejectsBadTargetsAndShapes() {
        Tensor logits = f.random("logits", -1, 1, 2, 4);
        assertThatThrownBy(() -> backend.crossEntropy(logits, f.ints("t", 1, 4), null, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("target 4").hasMessageContaining("[0, 4)");
        assertThatThrownBy(() -> backend.crossEntropy(logits, f.ints("t3", 1, 2, 3), null, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'t3' [3]").hasMessageContaining("[2]");
        assertThatThrownBy(() -> backend.crossEntropy(logits, f.f32("tf", 2), null, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'tf' [2]").hasMessageContaining("int32");
        assertThatThrownBy(() -> backend.crossEntropy(f.f32("l3", 1, 2, 4), f.ints("t2", 1, 2), null, 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[1, 2, 4]");
        assertThatThrownBy(() -> backend.crossEntropy(logits, f.ints("t4", 1, 2), f.f32("dl", 2, 5), 1f))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, 4]").hasMessageContaining("[2, 5]");
    }

    @Test
    void embeddingGathersRowsAndRejectsBadIds() {
        int vocab = 6, d = 5;
        Tensor table = f.random("table", -1, 1, vocab, d);
        int[] ids = {2, 0, 5, 2};
        Tensor out = f.f32("out", ids.length, d);
        backend.embedding(table, f.ints("ids", ids), out);
        for (int r = 0; r < ids.length; r++) {
            for (int j = 0; j < d; j++) {
                assertThat(out.get(r, j)).isEqualTo(table.get(ids[r], j));
            }
        }
        for (int bad : new int[]{-1, 6}) {
            assertThatThrownBy(() -> backend.embedding(table, f.ints("bad", 1, bad), f.f32("o", 2, d)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("id " + bad).hasMessageContaining("[0, 6)");
            assertThatThrownBy(() -> backend.embeddingBackward(f.f32("g", 2, d), f.ints("bad", bad, 1), f.f32("dt", vocab, d)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("id " + bad);
        }
        assertThatThrownBy(() -> backend.embedding(table, f.ints("ids2", 1, 2), f.f32("o3", 3, d)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3, 5]").hasMessageContaining("[2, 5]");
        assertThatThrownBy(() -> backend.embedding(f.f32("flat", 30), f.ints("ids3", 1), f.f32("o4", 1, 5)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'flat' [30]");
    }

    @Test
    void adamwFollowsPyTorchOverThreeSteps() {
        int n = 50;
        float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
        Tensor p = f.random("p", -1, 1, n), m = f.f32("m", n), v = f.f32("v", n), g = f.f32("g", n);
        double[] pd = new double[n], md = new double[n], vd = new double[n];
        for (int i = 0; i < n; i++) {
            pd[i] = p.get(i);
        }
        for (int t = 1; t <= 3; t++) {
            float[] gv = f.uniform(n, -1, 1);
            g.copyFrom(gv);
            backend.adamw(p, g, m, v, new AdamWStep(lr, b1, b2, eps, wd, t));
            // torch.optim.AdamW (amsgrad=False): decay, moments, bias-corrected step.
            double bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
            for (int i = 0; i < n; i++) {
                pd[i] *= 1 - (double) lr * wd;
                md[i] = b1 * md[i] + (1 - (double) b1) * gv[i];
                vd[i] = b2 * vd[i] + (1 - (double) b2) * gv[i] * gv[i];
                double denom = Math.sqrt(vd[i]) / Math.sqrt(bc2) + eps;
                pd[i] -= lr / bc1 * md[i] / denom;
            }
            for (int i = 0; i < n; i++) {
                assertThat((double) p.get(i)).as("p[%d] step %d", i, t).isCloseTo(pd[i], within(4 * t * U * (Math.abs(pd[i]) + lr)));
                assertThat((double) m.get(i)).isCloseTo(md[i], within(4 * t * U * Math.abs(md[i]) + 1e-30));
                assertThat((double) v.get(i)).isCloseTo(vd[i], within(4 * t * U * Math.abs(vd[i]) + 1e-30));
            }
        }
        assertThatThrownBy(() -> new AdamWStep(lr, b1, b2, eps, wd, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new AdamWStep(lr, 1f, b2, eps, wd, 1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void argumentErrorsNameTheShapes() {
        Tensor a = f.f32("a", 3, 4), b = f.f32("b", 4, 3), c = f.f32("c", 3, 4);
        assertThatThrownBy(() -> backend.add(a, b, c))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'a' [3, 4]").hasMessageContaining("'b' [4, 3]");
        assertThatThrownBy(() -> backend.mul(a, c, f.f32("o", 12)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'o' [12]");
        Tensor half = f.pool.allocate("half", DType.BF16, Category.WORKSPACE, 3, 4);
        assertThatThrownBy(() -> backend.add(a, half, c))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'half' [3, 4]").hasMessageContaining("bf16");
        Tensor strided = f.f32("wide", 3, 8).slice(1, 0, 4);
        assertThatThrownBy(() -> backend.scale(strided, 2f, c))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3, 4]").hasMessageContaining("contiguous");
        assertThatThrownBy(() -> backend.swigluBackward(a, a, a, c, b))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'b' [4, 3]");
        Tensor gone = f.f32("gone", 3, 4);
        gone.close();
        assertThatThrownBy(() -> backend.silu(gone, c))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("'gone' [3, 4]").hasMessageContaining("after close");
        assertThatThrownBy(() -> backend.sum(null))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("null");
    }
}
