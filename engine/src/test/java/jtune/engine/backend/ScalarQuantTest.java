package jtune.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The scalar oracle's quantized operations against dequantize-then-multiply computed here in double from the codes,
 * scales and zero points the test chose (not from {@link QuantizedMatrix#weight}): the weight of each element is
 * the f32 product the format defines, every sum is exact in double, so the oracle must agree to the last bit.
 */
class ScalarQuantTest {
    private static final float[] NF4 = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    };

    private final ScalarBackend oracle = new ScalarBackend();

    /** A matrix with random codes, scales and zeros, and the f32 weights the test derives from them. */
    private record Case(QuantizedMatrix m, float[][] w, int[][] q, float[][] s, float[][] z) {
    }

    private static Case random(MemoryPool pool, QuantFormat f, int rows, int cols, SplittableRandom rng) {
        QuantizedMatrix m = QuantizedMatrix.allocate(pool, "w", f, rows, cols);
        int g = f.groupWidth(cols), groups = f.groups(cols);
        int[][] q = new int[rows][cols];
        float[][] s = new float[rows][groups], z = new float[rows][groups], w = new float[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                q[i][j] = rng.nextInt(f.maxCode() + 1);
            }
            m.setRow(i, q[i]);
            for (int k = 0; k < groups; k++) {
                // bf16-exact scales so the stored value is the chosen one.
                s[i][k] = (float) (rng.nextInt(1, 256) / 64.0 * (rng.nextBoolean() ? 1 : -1));
                z[i][k] = f.hasZeros() ? rng.nextInt(f.maxCode() + 1) : f.symmetricZero();
                m.scales().set(s[i][k], i, k);
                if (f.hasZeros()) {
                    m.zeros().set(z[i][k], i, k);
                }
            }
            for (int j = 0; j < cols; j++) {
                int k = j / g;
                w[i][j] = f.kind() == QuantFormat.Kind.NF4 ? NF4[q[i][j]] * s[i][k] : s[i][k] * (q[i][j] - z[i][k]);
            }
        }
        return new Case(m, w, q, s, z);
    }

    private static Tensor randomTensor(MemoryPool pool, SplittableRandom rng, int rows, int cols) {
        Tensor t = pool.allocate("t", DType.F32, Category.WORKSPACE, rows, cols);
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t.set((float) rng.nextGaussian(), i, j);
            }
        }
        return t;
    }

    @Test
    void productsMatchDequantizeThenMultiplyInDouble() {
        SplittableRandom rng = new SplittableRandom(11);
        QuantFormat[] formats = {
            QuantFormat.integer(2, 32, false, DType.F32), QuantFormat.integer(3, 64, true, DType.BF16),
            QuantFormat.integer(4, 0, false, DType.BF16), QuantFormat.integer(8, 128, true, DType.F32),
            QuantFormat.nf4(32, false),
        };
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            for (QuantFormat f : formats) {
                int rows = 5, cols = 77, n = 3;
                Case c = random(pool, f, rows, cols, rng);
                Tensor x = randomTensor(pool, rng, n, cols), dy = randomTensor(pool, rng, n, rows);
                Tensor y = randomTensor(pool, rng, n, rows), y0 = randomTensor(pool, rng, n, rows);
                Tensor dx = randomTensor(pool, rng, n, cols), dx0 = randomTensor(pool, rng, n, cols);
                for (int t = 0; t < n; t++) {
                    for (int i = 0; i < rows; i++) {
                        y0.set(y.get(t, i), t, i);
                    }
                    for (int j = 0; j < cols; j++) {
                        dx0.set(dx.get(t, j), t, j);
                    }
                }
                oracle.quantMatmul(x, c.m(), y, 0.5f, -2f);
                oracle.quantMatmulInputGrad(dy, c.m(), dx, 2f, 0.25f);
                for (int t = 0; t < n; t++) {
                    for (int i = 0; i < rows; i++) {
                        double acc = 0;
                        for (int j = 0; j < cols; j++) {
                            acc += (double) x.get(t, j) * c.w()[i][j];
                        }
                        assertThat(y.get(t, i)).as("%s y[%d, %d]", f, t, i).isEqualTo((float) (0.5 * acc - 2.0 * y0.get(t, i)));
                    }
                    for (int j = 0; j < cols; j++) {
                        double acc = 0;
                        for (int i = 0; i < rows; i++) {
                            acc += (double) dy.get(t, i) * c.w()[i][j];
                        }
                        assertThat(dx.get(t, j)).as("%s dx[%d, %d]", f, t, j).isEqualTo((float) (2.0 * acc + 0.25 * dx0.get(t, j)));
                    }
                }
                Tensor out = pool.allocate("out", DType.F32, Category.WORKSPACE, rows, cols);
                oracle.dequantize(c.m(), out);
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        assertThat(out.get(i, j)).isEqualTo(c.w()[i][j]);
                    }
                }
                c.m().close();
            }
        }
    }

    @Test
    void scaleGradientIsThePerGroupProductWithTheUpstreamGradient() {
        SplittableRandom rng = new SplittableRandom(12);
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            for (QuantFormat f : new QuantFormat[]{QuantFormat.integer(4, 32, false, DType.F32),
                    QuantFormat.integer(2, 0, true, DType.BF16)}) {
                int rows = 4, cols = 70, n = 5, g = f.groupWidth(cols), groups = f.groups(cols);
                Case c = random(pool, f, rows, cols, rng);
                Tensor x = randomTensor(pool, rng, n, cols), dy = randomTensor(pool, rng, n, rows);
                Tensor ds = randomTensor(pool, rng, rows, groups);
                float[][] prior = new float[rows][groups];
                for (int i = 0; i < rows; i++) {
                    for (int k = 0; k < groups; k++) {
                        prior[i][k] = ds.get(i, k);
                    }
                }
                oracle.quantScaleGrad(x, dy, c.m(), ds);
                for (int i = 0; i < rows; i++) {
                    for (int k = 0; k < groups; k++) {
                        double acc = 0;
                        for (int t = 0; t < n; t++) {
                            double partial = 0;
                            for (int j = k * g; j < Math.min(cols, (k + 1) * g); j++) {
                                partial += (c.q()[i][j] - c.z()[i][k]) * (double) x.get(t, j);
                            }
                            acc += dy.get(t, i) * partial;
                        }
                        assertThat(ds.get(i, k)).as("%s dScales[%d, %d]", f, i, k).isEqualTo((float) (prior[i][k] + acc));
                    }
                }
                c.m().close();
            }
        }
    }

    @Test
    void scaleGradientByFiniteDifferencesOfTheForwardProduct() {
        // d/ds_ik of L = Σ_t dy[t, i] · y[t, i]: perturb one scale and difference the oracle's own forward product.
        SplittableRandom rng = new SplittableRandom(13);
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            QuantFormat f = QuantFormat.integer(3, 32, false, DType.F32);
            int rows = 3, cols = 64, n = 4;
            Case c = random(pool, f, rows, cols, rng);
            Tensor x = randomTensor(pool, rng, n, cols), dy = randomTensor(pool, rng, n, rows);
            Tensor y = pool.allocate("y", DType.F32, Category.WORKSPACE, n, rows);
            Tensor ds = pool.allocate("ds", DType.F32, Category.WORKSPACE, rows, 2);
            oracle.quantScaleGrad(x, dy, c.m(), ds);
            for (int i = 0; i < rows; i++) {
                for (int k = 0; k < 2; k++) {
                    float s = c.s()[i][k], h = 1f / 64;
                    double[] loss = new double[2];
                    for (int side = 0; side < 2; side++) {
                        c.m().scales().set(s + (side == 0 ? -h : h), i, k);
                        oracle.quantMatmul(x, c.m(), y, 1f, 0f);
                        for (int t = 0; t < n; t++) {
                            loss[side] += (double) dy.get(t, i) * y.get(t, i);
                        }
                    }
                    c.m().scales().set(s, i, k);
                    assertThat(ds.get(i, k)).isCloseTo((float) ((loss[1] - loss[0]) / (2 * h)),
                            org.assertj.core.api.Assertions.within(1e-3f * (1 + Math.abs(ds.get(i, k)))));
                }
            }
            c.m().close();
        }
    }

    @Test
    void argumentsAreCheckedInOneSentence() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            QuantizedMatrix w = QuantizedMatrix.allocate(pool, "w", QuantFormat.integer(4, 32, true, DType.F32), 6, 40);
            Tensor x = pool.allocate("x", DType.F32, Category.WORKSPACE, 2, 40);
            Tensor y = pool.allocate("y", DType.F32, Category.WORKSPACE, 2, 6);
            Tensor bad = pool.allocate("bad", DType.F32, Category.WORKSPACE, 2, 7);
            assertThatThrownBy(() -> oracle.quantMatmul(x, w, bad, 1f, 0f)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("quantMatmul: x · dequant(W)ᵀ does not fit: 'x' [2, 40], 'bad' [2, 7]")
                    .hasMessageContaining("(N, 40) and (N, 6)");
            assertThatThrownBy(() -> oracle.quantMatmulInputGrad(x, w, y, 1f, 0f))
                    .hasMessageContaining("quantMatmulInputGrad: dy · dequant(W) does not fit");
            assertThatThrownBy(() -> oracle.quantMatmul(x, w, x.slice(1, 0, 6), 1f, 0f))
                    .hasMessageContaining("must be contiguous");
            Tensor xs = x.reshape(80).slice(0, 0, 12).reshape(2, 6);
            assertThatThrownBy(() -> oracle.quantMatmul(x, w, xs, 1f, 0f)).hasMessageContaining("must not alias");
            assertThatThrownBy(() -> oracle.dequantize(w, x)).hasMessageContaining("dequantize: tensor 'x'")
                    .hasMessageContaining("must have shape [6, 40]");
            QuantizedMatrix n = QuantizedMatrix.allocate(pool, "n", QuantFormat.nf4(64, false), 6, 40);
            Tensor ds = pool.allocate("ds", DType.F32, Category.WORKSPACE, 6, 1);
            assertThatThrownBy(() -> oracle.quantScaleGrad(x, y, n, ds)).hasMessageContaining("only integer formats");
            assertThatThrownBy(() -> oracle.quantScaleGrad(x, y, w, ds)).hasMessageContaining("must have shape [6, 2]");
            w.close();
            assertThatThrownBy(() -> oracle.quantMatmul(x, w, y, 1f, 0f)).isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("used after close");
            n.close();
        }
    }
}
