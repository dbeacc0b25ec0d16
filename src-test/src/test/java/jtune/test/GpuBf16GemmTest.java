package jtune.test;

import static jtune.test.Compare.TINY;
import static jtune.test.Compare.U;
import static jtune.test.Compare.gamma;

import jtune.engine.backend.Backend;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The GPU backend's bf16 products on the tensor cores against the scalar oracle given the same values widened to
 * f32 (exact): every layout, aligned operands (the cp.async loader) and views one element in or with odd row
 * strides (the element-wise loader), edges of the 128×128×32 tiles, batches, alpha and beta. Products of bf16
 * values are exact in f32, so only the accumulation differs from the oracle; the bound allows twice the f32 one
 * for the tensor cores' own rounding of their sums. Integer data (|v| ≤ 8) must come out exact. Skipped where no
 * GPU can be used.
 */
@ExtendWith(GpuPresent.class)
class GpuBf16GemmTest extends ConformanceSupport {
    @Override
    protected Backend create(int threads) {
        return StagedGpu.open();
    }

    @Override
    protected int[] threadCounts() {
        return new int[]{1};
    }

    /** A (batch, rows, cols) bf16 operand (rank 2 when batch is 0), its rows padded by {@code pad}, starting at a
     *  16-byte boundary or not (Operands puts views 16 or 19 elements in). */
    private Tensor operand(String name, DType type, int batch, int rows, int cols, int pad) {
        if (batch == 0) {
            return ops.carve(name, type, new long[]{rows, cols + pad}, t -> t.slice(1, 0, cols));
        }
        return ops.carve(name, type, new long[]{batch, rows, cols + pad}, t -> t.slice(2, 0, cols));
    }

    private float[] values(int n, boolean integers) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = integers ? ops.rng.nextInt(-8, 9) : (float) (ops.rng.nextDouble() * 2 - 1);
        }
        return v;
    }

    private void check(int batch, int m, int n, int k, boolean transA, boolean transB, int pad, float alpha, float beta,
                       boolean integers) {
        int nb = Math.max(batch, 1);
        int ra = transA ? k : m, ca = transA ? m : k, rb = transB ? n : k, cb = transB ? k : n;
        Tensor a = Operands.write(operand("A", DType.BF16, batch, ra, ca, pad), values(nb * m * k, integers));
        Tensor b = Operands.write(operand("B", DType.BF16, batch, rb, cb, pad), values(nb * k * n, integers));
        float[] av = Operands.read(a), bv = Operands.read(b);
        Tensor a32 = Operands.write(operand("A32", DType.F32, batch, ra, ca, 0), av);
        Tensor b32 = Operands.write(operand("B32", DType.F32, batch, rb, cb, 0), bv);
        float[] c0 = values(nb * m * n, integers);
        Tensor want = Operands.write(operand("want", DType.F32, batch, m, n, 0), c0);
        oracle.matmul(a32, transA, b32, transB, want, alpha, beta);
        double[] bound = new double[nb * m * n];
        for (int p = 0; p < nb; p++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int l = 0; l < k; l++) {
                        double x = transA ? av[(p * k + l) * m + i] : av[(p * m + i) * k + l];
                        double y = transB ? bv[(p * n + j) * k + l] : bv[(p * k + l) * n + j];
                        s += Math.abs(x * y);
                    }
                    bound[(p * m + i) * n + j] = s;
                }
            }
        }
        float[] wv = Operands.read(want);
        double g = 2 * gamma(k + 2L * ((k + 31) / 32) + 4);
        for (int i = 0; i < bound.length; i++) {
            bound[i] = g * (Math.abs(alpha) * bound[i] + Math.abs(beta * c0[i])) + U * Math.abs(wv[i]) + TINY;
        }
        for (Backend be : backends) {
            Tensor got = Operands.write(operand("C", DType.F32, batch, m, n, pad), c0);
            be.matmul(a, transA, b, transB, got, alpha, beta);
            String what = what(be, "bf16 matmul " + (transA ? "Aᵀ" : "A") + "·" + (transB ? "Bᵀ" : "B") + " pad " + pad
                    + (integers ? " integers" : ""), new long[]{nb, m, n, k});
            Compare.within(what, got, want, i -> integers ? Double.MIN_VALUE : bound[i]);
        }
        ops.release("bf16 matmul");
    }

    @Test
    void everyLayoutAlignedAndNot() {
        int[][] sizes = {{1, 1, 1}, {7, 9, 13}, {16, 8, 16}, {33, 65, 31}, {128, 128, 32}, {129, 127, 33},
                {200, 300, 72}, {64, 256, 520}, {257, 513, 200}, {100, 130, 2048}};
        int spread = 0;
        for (int[] s : sizes) {
            for (int layout = 0; layout < 4; layout++, spread++) {
                int pad = spread % 3 == 0 ? 0 : spread % 3 == 1 ? 8 : 3;
                check(0, s[0], s[1], s[2], (layout & 2) != 0, (layout & 1) != 0, pad, spread % 2 == 0 ? 1 : -0.5f,
                        spread % 4 == 0 ? 0 : 0.5f, spread % 5 == 0);
            }
        }
    }

    @Test
    void batched() {
        int[][] sizes = {{1, 1, 8}, {31, 17, 64}, {130, 64, 96}};
        for (int i = 0; i < sizes.length; i++) {
            for (int layout = 0; layout < 4; layout++) {
                check(2 + i, sizes[i][0], sizes[i][1], sizes[i][2], (layout & 2) != 0, (layout & 1) != 0, layout * 8,
                        1, layout % 2, layout == 3);
            }
        }
    }
}
