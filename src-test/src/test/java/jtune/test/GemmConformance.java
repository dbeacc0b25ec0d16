package jtune.test;

import static jtune.test.Compare.TINY;
import static jtune.test.Compare.U;
import static jtune.test.Compare.gamma;

import jtune.engine.backend.Backend;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * {@link Backend#matmul} against the scalar oracle: m, n, k from the awkward sizes, all four layouts, rank 2
 * and batched rank 3, operands stored contiguously, as row slices of wider matrices, or with the batch
 * dimension innermost (batch stride smaller than the row stride), alpha and beta, C poisoned with NaN when
 * beta is 0, guards around every operand, 1 and 2 threads.
 *
 * <p>Bounds. With random f32 data each element of C is within
 * {@code γ_(k + 2⌈k/16⌉ + 4) · (|α|·Σ_l |a_il·b_lj| + |β·c_ij|) + u·|oracle|}: any order and blocking of the k
 * products' sum, two extra roundings per K block of at least 16 (scaling by α and adding into C), α, β and the
 * final add; the oracle sums in double and rounds once. With integer data (|a|, |b| ≤ 8, α and β powers of two
 * or halves) every partial result is a multiple of ½ below 2²³, so any correct kernel is exact: these cases
 * catch a dropped or doubled term that the worst-case bound would let through at large k.
 *
 * <p>The small products run first: a Vector API kernel is slow until the JIT has compiled it, so the large
 * ones should find it compiled.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
public abstract class GemmConformance extends ConformanceSupport {
    /** How an operand lies in memory. */
    enum Storage { CONTIGUOUS, ROW_SLICE, BATCH_INNER }

    /** One product: batch 0 means rank 2. */
    record Case(int batch, int m, int n, int k, boolean transA, boolean transB, float alpha, float beta, boolean integers,
                Storage sa, Storage sb, Storage sc) {
        @Override
        public String toString() {
            return (batch > 0 ? batch + "×" : "") + m + "×" + n + "×" + k + " " + (transA ? "Aᵀ" : "A") + "·"
                    + (transB ? "Bᵀ" : "B") + " α=" + alpha + " β=" + beta + (integers ? " integers" : "")
                    + " storage " + sa + "/" + sb + "/" + sc;
        }
    }

    /** m and n of the small grid: every size up to 64. */
    static final int[] GRID = {1, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 64};

    /** k of the small grid, spread over the (m, n) pairs. */
    static final int[] GRID_K = {1, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 64, 207};

    /** (α, β) pairs, all exact on integer data. */
    static final float[][] ALPHA_BETA = {{1, 0}, {1, 1}, {0.5f, -0.5f}, {-2, 0}, {1, -0.5f}};

    /**
     * (m, n, k) with 207, 702 and 4098 in every role and enough rows and columns to split over threads;
     * m·n·k ≤ 1.1·10⁷ so the scalar oracle stays quick.
     */
    static final int[][] LARGE = {{207, 207, 207}, {4098, 7, 207}, {9, 4098, 207}, {17, 64, 4098}, {1, 702, 4098},
            {702, 33, 207}, {64, 702, 207}, {33, 64, 702}, {4098, 1, 702}, {702, 207, 31}, {13, 207, 4098}};

    /** A (batch, rows, cols) operand (rank 2 when batch is 0) stored as {@code s}, its elements poisoned. */
    private Tensor operand(String name, int batch, int rows, int cols, Storage s) {
        int pad = s == Storage.CONTIGUOUS ? 0 : 1 + ops.rng.nextInt(5);
        if (batch == 0) {
            return ops.carve(name, DType.F32, new long[]{rows, cols + pad}, t -> t.slice(1, 0, cols));
        }
        if (s == Storage.BATCH_INNER) {
            return ops.carve(name, DType.F32, new long[]{rows, batch, cols + pad}, t -> t.transpose(0, 1).slice(2, 0, cols));
        }
        return ops.carve(name, DType.F32, new long[]{batch, rows, cols + pad}, t -> t.slice(2, 0, cols));
    }

    private float[] data(int count, boolean integers) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = integers ? ops.rng.nextInt(-8, 9) : (float) (ops.rng.nextDouble() * 2 - 1);
        }
        return v;
    }

    void check(Case c) {
        int nb = Math.max(c.batch(), 1), m = c.m(), n = c.n(), k = c.k();
        Tensor a = operand("A", c.batch(), c.transA() ? k : m, c.transA() ? m : k, c.sa());
        Tensor b = operand("B", c.batch(), c.transB() ? n : k, c.transB() ? k : n, c.sb());
        float[] av = data(nb * m * k, c.integers()), bv = data(nb * k * n, c.integers());
        float[] c0 = c.beta() == 0 ? null : data(nb * m * n, c.integers());
        Operands.write(a, av);
        Operands.write(b, bv);
        Tensor want = operand("C", c.batch(), m, n, c.sc());
        if (c0 != null) {
            Operands.write(want, c0);
        }
        oracle.matmul(a, c.transA(), b, c.transB(), want, c.alpha(), c.beta());

        double[] bound = new double[nb * m * n];
        if (!c.integers()) {
            double[] absB = new double[k * n];
            for (int p = 0; p < nb; p++) {
                for (int l = 0; l < k; l++) {
                    for (int j = 0; j < n; j++) {
                        absB[l * n + j] = Math.abs(c.transB() ? bv[(p * n + j) * k + l] : bv[(p * k + l) * n + j]);
                    }
                }
                for (int i = 0; i < m; i++) {
                    int row = (p * m + i) * n;
                    for (int l = 0; l < k; l++) {
                        double ai = Math.abs(c.transA() ? av[(p * k + l) * m + i] : av[(p * m + i) * k + l]);
                        for (int j = 0; j < n; j++) {
                            bound[row + j] += ai * absB[l * n + j];
                        }
                    }
                }
            }
            float[] wv = Operands.read(want);
            double g = gamma(k + 2L * ((k + 15) / 16) + 4);
            for (int i = 0; i < bound.length; i++) {
                double prior = c0 == null ? 0 : Math.abs(c.beta() * c0[i]);
                bound[i] = g * (Math.abs(c.alpha()) * bound[i] + prior) + U * Math.abs(wv[i]) + TINY;
            }
        }
        for (Backend be : backends) {
            Tensor got = operand("C", c.batch(), m, n, c.sc());
            if (c0 != null) {
                Operands.write(got, c0);
            }
            be.matmul(a, c.transA(), b, c.transB(), got, c.alpha(), c.beta());
            Compare.within(what(be, "matmul", c), got, want, i -> c.integers() ? Double.MIN_VALUE : bound[i]);
        }
        ops.release("matmul " + c);
    }

    @Test
    @Order(1)
    void smallGridInEveryLayout() {
        for (int mi = 0; mi < GRID.length; mi++) {
            for (int ni = 0; ni < GRID.length; ni++) {
                for (int layout = 0; layout < 4; layout++) {
                    int spread = mi + ni + layout;
                    float[] ab = ALPHA_BETA[spread % ALPHA_BETA.length];
                    check(new Case(0, GRID[mi], GRID[ni], GRID_K[(mi * 7 + ni * 3 + layout * 5) % GRID_K.length],
                            (layout & 1) != 0, (layout & 2) != 0, ab[0], ab[1], spread % 2 == 0,
                            Storage.values()[(mi + layout) % 2], Storage.values()[(ni + layout) % 2],
                            Storage.values()[(mi + ni) % 2]));
                }
            }
        }
    }

    @Test
    @Order(3)
    void largeSizes() {
        for (int i = 0; i < LARGE.length; i++) {
            int[] s = LARGE[i];
            int layout = i % 4;
            float[] ab = ALPHA_BETA[i % ALPHA_BETA.length];
            check(new Case(0, s[0], s[1], s[2], (layout & 1) != 0, (layout & 2) != 0, ab[0], ab[1], i % 3 == 1,
                    Storage.values()[i % 2], Storage.values()[(i / 2) % 2], Storage.values()[(i / 4) % 2]));
        }
    }

    /**
     * Few tiles of C over a long K, every layout and several alpha, beta: the shapes of a weight gradient over many
     * tokens, which a GPU backend splits along K and sums in a second pass.
     */
    @Test
    void fewTilesOverALongK() {
        int[][] shapes = {{64, 96, 4096}, {130, 140, 2048}, {17, 300, 1024}};
        for (int i = 0; i < shapes.length; i++) {
            for (int layout = 0; layout < 4; layout++) {
                int[] s = shapes[i];
                float[] ab = ALPHA_BETA[(i + layout) % ALPHA_BETA.length];
                check(new Case(0, s[0], s[1], s[2], (layout & 1) != 0, (layout & 2) != 0, ab[0], ab[1], false,
                        Storage.values()[layout % 2], Storage.values()[i % 2], Storage.values()[(i + layout) % 2]));
            }
        }
    }

    /**
     * Products of one to five rows of op(A) against a large op(B), the shapes of generating one token at a time: a
     * linear layer (A·Bᵀ, B a weight (N, K)), attention over a long cache (batched by kv head, both layouts of B),
     * every layout, B wide enough to be split over threads, and five rows, just past the few-row path of a backend
     * that has one.
     */
    @Test
    @Order(4)
    void fewRowsOfLargeMatrices() {
        int[][] shapes = {{1, 4098, 702}, {1, 2100, 1376}, {2, 702, 4098}, {3, 1031, 513}, {4, 2100, 702}, {5, 702, 2100},
                {1, 33, 4098}, {1, 7, 13}};
        int spread = 0;
        for (int[] s : shapes) {
            for (int layout = 0; layout < 4; layout++, spread++) {
                float[] ab = ALPHA_BETA[spread % ALPHA_BETA.length];
                Storage[] st = Storage.values();
                check(new Case(0, s[0], s[1], s[2], (layout & 1) != 0, (layout & 2) != 0, ab[0], ab[1], spread % 2 == 1,
                        st[spread % 2], st[(spread + 1) % 2], st[(spread / 2) % 2]));
            }
        }
        int[][] attention = {{1, 4098, 64}, {1, 64, 4098}, {1, 8, 511}, {1, 511, 8}};
        for (int[] s : attention) {
            for (boolean transB : new boolean[]{false, true}) {
                Storage[] st = Storage.values();
                check(new Case(4, s[0], s[1], s[2], false, transB, 0.125f, 0, spread % 2 == 1, st[spread % 3],
                        st[(spread + 1) % 3], st[(spread + 2) % 3]));
                spread++;
            }
        }
    }

    @Test
    @Order(2)
    void batched() {
        int[][] shapes = {{1, 1, 1}, {7, 9, 13}, {16, 17, 33}, {33, 64, 5}, {64, 15, 207}, {1, 31, 4}, {5, 3, 64}, {207, 64, 64}};
        int spread = 0;
        for (int[] s : shapes) {
            for (int layout = 0; layout < 4; layout++, spread++) {
                float[] ab = ALPHA_BETA[spread % ALPHA_BETA.length];
                Storage[] st = Storage.values();
                check(new Case(2 + spread % 2, s[0], s[1], s[2], (layout & 1) != 0, (layout & 2) != 0, ab[0], ab[1],
                        spread % 2 == 1, st[spread % 3], st[(spread + 1) % 3], st[(spread + 2) % 3]));
            }
        }
    }
}
