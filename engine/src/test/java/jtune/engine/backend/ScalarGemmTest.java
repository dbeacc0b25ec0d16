package jtune.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * The scalar GEMM against a triple loop in double written here, on small matrices in every layout, batched,
 * on strided slices, with alpha and beta. The scalar backend sums in double and rounds once, so it must agree
 * with the exact product to within half an ulp of f32 plus the double sum's rounding.
 */
class ScalarGemmTest {
    private final ScalarBackend backend = new ScalarBackend();

    /**
     * Stores the logical (rows, cols) matrices of {@code m} (one per batch) as a tensor, transposed when
     * {@code trans} (then each is stored (cols, rows)), inside a wider buffer: {@code pad} extra columns per
     * stored row and one extra leading batch, so the view has a non-zero offset and non-trivial strides.
     */
    private static Tensor store(Fixture f, String name, double[][][] m, boolean trans, int pad, boolean batched) {
        int batch = m.length, rows = m[0].length, cols = m[0][0].length;
        int sr = trans ? cols : rows, sc = trans ? rows : cols;
        Tensor view = batched
                ? f.random(name, -9, 9, batch + 1, sr, sc + pad).slice(0, 1, batch + 1).slice(2, 0, sc).named(name)
                : f.random(name, -9, 9, sr + 1, sc + pad).slice(0, 1, sr + 1).slice(1, 0, sc).named(name);
        for (int p = 0; p < batch; p++) {
            for (int i = 0; i < rows; i++) {
                for (int j = 0; j < cols; j++) {
                    long r = trans ? j : i, c = trans ? i : j;
                    if (batched) {
                        view.set((float) m[p][i][j], p, r, c);
                    } else {
                        view.set((float) m[p][i][j], r, c);
                    }
                }
            }
        }
        return view;
    }

    private static double[][][] randomMatrices(Fixture f, int batch, int rows, int cols) {
        double[][][] m = new double[batch][rows][cols];
        for (double[][] mat : m) {
            for (double[] row : mat) {
                for (int j = 0; j < cols; j++) {
                    row[j] = (float) (f.rng.nextDouble() * 2 - 1);
                }
            }
        }
        return m;
    }

    private void check(long seed, int batch, int m, int n, int k, boolean ta, boolean tb, int pad, float alpha, float beta) {
        boolean batched = batch > 0;
        int nb = Math.max(batch, 1);
        try (Fixture f = new Fixture(seed)) {
            double[][][] a = randomMatrices(f, nb, m, k), b = randomMatrices(f, nb, k, n), c0 = randomMatrices(f, nb, m, n);
            if (beta == 0) {
                for (double[][] mat : c0) {
                    for (double[] row : mat) {
                        Arrays.fill(row, Double.NaN);
                    }
                }
            }
            Tensor ta_ = store(f, "A", a, ta, pad, batched);
            Tensor tb_ = store(f, "B", b, tb, pad + 1, batched);
            Tensor tc = store(f, "C", c0, false, pad + 2, batched);
            backend.matmul(ta_, ta, tb_, tb, tc, alpha, beta);
            for (int p = 0; p < nb; p++) {
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double acc = 0, mag = 0;
                        for (int l = 0; l < k; l++) {
                            acc += a[p][i][l] * b[p][l][j];
                            mag += Math.abs(a[p][i][l] * b[p][l][j]);
                        }
                        double prior = beta == 0 ? 0 : beta * c0[p][i][j];
                        double want = alpha * acc + prior;
                        double tol = Math.ulp((float) want) / 2 + 1e-15 * (Math.abs(alpha) * mag + Math.abs(prior));
                        float got = batched ? tc.get(p, i, j) : tc.get(i, j);
                        assertThat((double) got)
                                .as("C[%d,%d,%d] of %dx%dx%d ta=%s tb=%s alpha=%s beta=%s", p, i, j, m, n, k, ta, tb, alpha, beta)
                                .isCloseTo(want, within(tol));
                    }
                }
            }
        }
    }

    @Test
    void allLayoutsAgainstTheTripleLoop() {
        int[][] sizes = {{1, 1, 1}, {1, 5, 3}, {4, 1, 7}, {5, 7, 3}, {6, 4, 1}, {3, 8, 9}, {9, 2, 16}};
        long seed = 11;
        for (int[] s : sizes) {
            for (int layout = 0; layout < 4; layout++) {
                boolean ta = (layout & 1) != 0, tb = (layout & 2) != 0;
                check(seed++, 0, s[0], s[1], s[2], ta, tb, 0, 1f, 0f);
                check(seed++, 0, s[0], s[1], s[2], ta, tb, 3, -0.75f, 0.5f);
                check(seed++, 3, s[0], s[1], s[2], ta, tb, 2, 1.5f, 1f);
                check(seed++, 2, s[0], s[1], s[2], ta, tb, 0, 2f, 0f);
            }
        }
    }

    @Test
    void betaZeroDoesNotReadC() {
        try (Fixture f = new Fixture(3)) {
            Tensor a = f.random("a", -1, 1, 2, 3), b = f.random("b", -1, 1, 3, 4), c = f.f32("c", 2, 4);
            backend.fill(c, Float.NaN);
            backend.matmul(a, false, b, false, c, 1f, 0f);
            assertThat(c.toFloatArray()).doesNotContain(Float.NaN);
        }
    }

    @Test
    void batchStrideMayBeSmallerThanTheRowStride() {
        // A (M=3, B=2, K=4) buffer seen as (B, M, K): batch stride 4, row stride 8.
        try (Fixture f = new Fixture(5)) {
            Tensor abuf = f.random("a", -1, 1, 3, 2, 4);
            Tensor a = abuf.transpose(0, 1);
            Tensor b = f.random("b", -1, 1, 2, 4, 5), c = f.f32("c", 2, 3, 5);
            backend.matmul(a, false, b, false, c, 1f, 0f);
            for (int p = 0; p < 2; p++) {
                for (int i = 0; i < 3; i++) {
                    for (int j = 0; j < 5; j++) {
                        double want = 0;
                        for (int l = 0; l < 4; l++) {
                            want += (double) abuf.get(i, p, l) * b.get(p, l, j);
                        }
                        assertThat((double) c.get(p, i, j)).isCloseTo(want, within(1e-6));
                    }
                }
            }
        }
    }

    @Test
    void badGeometryFailsNamingTheShapes() {
        try (Fixture f = new Fixture(1)) {
            Tensor a = f.f32("a", 2, 3), b = f.f32("b", 4, 5), c = f.f32("c", 2, 5);
            assertThatThrownBy(() -> backend.matmul(a, false, b, false, c, 1, 0))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'a' [2, 3]").hasMessageContaining("'b' [4, 5]").hasMessageContaining("'c' [2, 5]");
            Tensor c3 = f.f32("c3", 1, 2, 5);
            assertThatThrownBy(() -> backend.matmul(a, false, f.f32("b2", 3, 5), false, c3, 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[1, 2, 5]").hasMessageContaining("rank");
            assertThatThrownBy(() -> backend.matmul(f.f32("v", 3), false, b, false, c, 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3]").hasMessageContaining("rank");
            Tensor wrongC = f.f32("wc", 2, 5);
            assertThatThrownBy(() -> backend.matmul(a, true, f.f32("b3", 2, 5), false, wrongC, 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'wc' [2, 5]").hasMessageContaining("Aᵀ");
            // Batch mismatch.
            assertThatThrownBy(() -> backend.matmul(f.f32("x", 2, 2, 3), false, f.f32("y", 3, 3, 4), false, f.f32("z", 2, 2, 4), 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3, 3, 4]");
            // Non-unit stride in the last dimension: pass the transpose flag instead.
            Tensor at = f.f32("at", 3, 2).transpose(0, 1);
            assertThatThrownBy(() -> backend.matmul(at, false, f.f32("b4", 3, 5), false, c, 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, 3]").hasMessageContaining("unit stride");
            Tensor half = f.pool.allocate("h", DType.BF16, Category.WORKSPACE, 3, 5);
            assertThatThrownBy(() -> backend.matmul(a, false, half, false, c, 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[3, 5]").hasMessageContaining("bf16");
            // C must not alias A.
            Tensor sq = f.f32("sq", 4, 4);
            assertThatThrownBy(() -> backend.matmul(sq.slice(0, 0, 2), false, f.f32("b5", 4, 2), false, sq.slice(1, 0, 2).slice(0, 2, 4), 1, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("alias");
            Tensor closed = f.f32("closed", 3, 5);
            closed.close();
            assertThatThrownBy(() -> backend.matmul(a, false, closed, false, c, 1, 0))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("'closed' [3, 5]");
        }
    }
}
