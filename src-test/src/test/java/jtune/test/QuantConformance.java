package jtune.test;

import static jtune.test.Compare.TINY;
import static jtune.test.Compare.U;
import static jtune.test.Compare.gamma;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntToDoubleFunction;
import jtune.engine.backend.Backend;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The quantized operations ({@link Backend#quantMatmul}, {@link Backend#quantMatmulInputGrad},
 * {@link Backend#dequantize}, {@link Backend#quantScaleGrad}) against the scalar oracle: every format (2, 3, 4 and
 * 8 bits, groups of 32, 64, 128 and per channel, symmetric and asymmetric, f32 and bf16 scales; NF4 in blocks of
 * 32, 64 and 128 with and without double quantization) on awkward shapes (rows 1, 7, 13, 207; columns not a
 * multiple of 8 or of the group; N = 1, 3, 13, 64, and 1200 across the GEMM's row block), every tensor a guarded
 * view at an odd offset, outputs poisoned with NaN when beta is 0, 1 and 2 threads (whose results must be
 * identical, bit for bit).
 *
 * <p>Bounds. Dequantization is exact: both sides produce the f32 values of {@link QuantizedMatrix#weight}. A product
 * element is within {@code γ_(2K + 32) · |α| · Σ_j |s|·(|q| + |z|)·|x_j| + γ_2·|β·y| + u·|oracle|}: the kernels may sum
 * the codes against x and subtract {@code z · Σ x} per group (the streaming path), so the bound counts both terms;
 * for NF4 it is {@code Σ |w|·|x|}. On integer data (x in [−4, 4], scales ±½, ±1, ±2, integer zero points, exact α
 * and β) every partial sum is exact, so any correct kernel matches the oracle exactly: these catch a dropped or
 * doubled term that the bound would let through.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
public abstract class QuantConformance extends ConformanceSupport {
    private final MemoryPool exactPool = new MemoryPool(new MemoryLedger());

    @AfterAll
    void closeExactPool() {
        exactPool.close();
    }

    /** (rows, cols, N): rows 1..207, columns off the multiples of 8 and of the groups, N across the matvec limit. */
    static final int[][] SHAPES = {{1, 100, 1}, {7, 31, 3}, {13, 129, 13}, {207, 200, 1}, {13, 515, 64},
        {207, 129, 64}, {7, 1031, 3}, {64, 256, 13}, {1, 8, 64}, {13, 45, 4}, {207, 77, 5}};

    /** (α, β) pairs, exact on integer data; β = 0 poisons the output. */
    static final float[][] ALPHA_BETA = {{1, 0}, {0.5f, -0.5f}, {-2, 1}, {1, 0.25f}};

    /** Every format the contract allows, NF4 block sizes 32, 64 and 128. */
    static List<QuantFormat> formats() {
        List<QuantFormat> all = new ArrayList<>();
        for (int bits : new int[]{2, 3, 4, 8}) {
            for (int g : new int[]{32, 64, 128, 0}) {
                for (boolean sym : new boolean[]{false, true}) {
                    for (DType st : new DType[]{DType.F32, DType.BF16}) {
                        all.add(QuantFormat.integer(bits, g, sym, st));
                    }
                }
            }
        }
        for (int g : new int[]{32, 64, 128}) {
            all.add(QuantFormat.nf4(g, false));
            all.add(QuantFormat.nf4(g, true));
        }
        return all;
    }

    /**
     * A quantized matrix with random codes and parameters ({@code integers}: exact data), of guarded tensors, or
     * when {@code exact} allocated from a pool whose blocks end where the tensors end (a kernel that reads past its
     * last row then fails).
     */
    private QuantizedMatrix matrix(QuantFormat f, int rows, int cols, boolean integers, boolean exact) {
        QuantizedMatrix m = exact ? allocated(f, rows, cols) : guarded(f, rows, cols, integers);
        int[] q = new int[cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                q[j] = ops.rng.nextInt(f.maxCode() + 1);
            }
            m.setRow(i, q);
        }
        return m;
    }

    /** A matrix of exactly sized blocks: scales and absmax scales in [0.5, 1.5), random zero points and codes. */
    private QuantizedMatrix allocated(QuantFormat f, int rows, int cols) {
        QuantizedMatrix m = QuantizedMatrix.allocate(exactPool, "w", f, rows, cols);
        for (Tensor t : m.tensors()) {
            if (t == m.zeros()) {
                fill(t, i -> ops.rng.nextInt(f.maxCode() + 1));
            } else if (t == m.absmaxCodes()) {
                fill(t, i -> ops.rng.nextInt(256));
            } else if (t != m.codes()) {
                fill(t, i -> 0.5 + ops.rng.nextDouble());
            }
        }
        return m;
    }

    /** A matrix of guarded views (its codes still to be written). */
    private QuantizedMatrix guarded(QuantFormat f, int rows, int cols, boolean integers) {
        int groups = f.groups(cols);
        Tensor codes = ops.poisoned("codes", DType.U8, rows, f.rowBytes(cols));
        if (f.doubleQuant()) {
            Tensor ac = ops.poisoned("absmax codes", DType.U8, rows, groups);
            Tensor as = ops.poisoned("absmax scales", DType.F32, ((long) rows * groups + 255) / 256);
            Tensor ao = ops.poisoned("absmax offset", DType.F32, 1);
            fill(ac, i -> ops.rng.nextInt(256));
            fill(as, i -> 0.5 + ops.rng.nextDouble());
            ao.set(1f, 0);
            return QuantizedMatrix.ofDoubleQuant("w", f, rows, cols, codes, ac, as, ao);
        }
        Tensor s = ops.poisoned("scales", f.scaleType(), rows, groups);
        Tensor z = f.hasZeros() ? ops.poisoned("zeros", f.scaleType(), rows, groups) : null;
        float[] pow2 = {0.5f, 1f, 2f, -0.5f, -1f, -2f};
        if (f.kind() == QuantFormat.Kind.NF4) {
            fill(s, i -> 0.5 + 1.5 * ops.rng.nextDouble());
        } else {
            fill(s, i -> integers ? pow2[ops.rng.nextInt(pow2.length)]
                    : (0.01 + 0.1 * ops.rng.nextDouble()) * (ops.rng.nextBoolean() ? 1 : -1));
        }
        if (z != null) {
            fill(z, i -> ops.rng.nextInt(f.maxCode() + 1));
        }
        return QuantizedMatrix.of("w", f, rows, cols, codes, s, z);
    }

    private static void fill(Tensor t, IntToDoubleFunction v) {
        for (int i = 0; i < t.size(); i++) {
            Tensor.store(t.segment(), t.dtype(), t.offset() + i, (float) v.applyAsDouble(i));
        }
    }

    private Tensor data(String name, int rows, int cols, boolean integers) {
        return integers ? ops.integers(name, 4, rows, cols) : ops.uniform(name, -1, 1, rows, cols);
    }

    /** |w| as the forward bound sees it: |s|·(|q| + |z|) for INT (the streaming path's two terms), |w| for NF4. */
    private static double[][] forwardMagnitudes(QuantizedMatrix m, double[][] absW) {
        if (m.format().kind() == QuantFormat.Kind.NF4) {
            return absW;
        }
        double[][] a = new double[m.rows()][m.cols()];
        for (int i = 0; i < m.rows(); i++) {
            for (int j = 0; j < m.cols(); j++) {
                int k = j / m.groupWidth();
                a[i][j] = Math.abs(m.scale(i, k)) * (m.code(i, j) + Math.abs(m.zero(i, k)));
            }
        }
        return a;
    }

    /** One format and shape: every operation on every backend against the oracle. */
    void check(QuantFormat f, int rows, int cols, int n, boolean integers) {
        check(f, rows, cols, n, integers, false);
    }

    void check(QuantFormat f, int rows, int cols, int n, boolean integers, boolean exact) {
        String shape = f + " W (" + rows + ", " + cols + ") N " + n + (integers ? " integers" : "")
                + (exact ? " exactly sized" : "");
        QuantizedMatrix m = matrix(f, rows, cols, integers, exact);
        double[][] absW = new double[rows][cols], absQz = new double[rows][cols];
        boolean nf4 = f.kind() == QuantFormat.Kind.NF4;
        for (int i = 0; i < rows && !integers; i++) {
            for (int j = 0; j < cols; j++) {
                absW[i][j] = Math.abs(m.weight(i, j));
                absQz[i][j] = nf4 ? 0 : Math.abs(m.code(i, j) - m.zero(i, j / m.groupWidth()));
            }
        }
        double[][] mag = integers ? null : forwardMagnitudes(m, absW);
        float[] ab = ALPHA_BETA[ops.rng.nextInt(ALPHA_BETA.length)];
        float alpha = ab[0], beta = ab[1];

        // forward
        Tensor x = data("x", n, cols, integers);
        Tensor y0 = beta == 0 ? ops.poisoned("y", n, rows) : data("y", n, rows, integers);
        Tensor want = ops.copyOf("y oracle", y0);
        oracle.quantMatmul(x, m, want, alpha, beta);
        float[] xv = Operands.read(x), y0v = Operands.read(y0), wv = Operands.read(want);
        double[] bound = new double[n * rows];
        if (!integers) {
            double g = gamma(2L * cols + 32);
            for (int t = 0; t < n; t++) {
                for (int i = 0; i < rows; i++) {
                    double s = 0;
                    for (int j = 0; j < cols; j++) {
                        s += mag[i][j] * Math.abs(xv[t * cols + j]);
                    }
                    double prior = beta == 0 ? 0 : Math.abs(beta * y0v[t * rows + i]);
                    bound[t * rows + i] = g * Math.abs(alpha) * s + gamma(2) * prior + U * Math.abs(wv[t * rows + i]) + TINY;
                }
            }
        }
        float[] first = null;
        for (Backend be : backends) {
            Tensor got = ops.copyOf("y", y0);
            be.quantMatmul(x, m, got, alpha, beta);
            Compare.within(what(be, "quantMatmul α=" + alpha + " β=" + beta, shape), got, want,
                    i -> integers ? Double.MIN_VALUE : bound[i]);
            first = sameOnEveryThreadCount(be, "quantMatmul", shape, got, first);
        }

        // input gradient
        Tensor dy = data("dy", n, rows, integers);
        Tensor dx0 = beta == 0 ? ops.poisoned("dx", n, cols) : data("dx", n, cols, integers);
        Tensor dxWant = ops.copyOf("dx oracle", dx0);
        oracle.quantMatmulInputGrad(dy, m, dxWant, alpha, beta);
        float[] dyv = Operands.read(dy), dx0v = Operands.read(dx0), dxw = Operands.read(dxWant);
        double[] gbound = new double[n * cols];
        if (!integers) {
            double g = gamma(rows + 2L * ((rows + 15) / 16) + 8);
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < cols; j++) {
                    double s = 0;
                    for (int i = 0; i < rows; i++) {
                        s += absW[i][j] * Math.abs(dyv[t * rows + i]);
                    }
                    double prior = beta == 0 ? 0 : Math.abs(beta * dx0v[t * cols + j]);
                    gbound[t * cols + j] = g * Math.abs(alpha) * s + gamma(2) * prior + U * Math.abs(dxw[t * cols + j]) + TINY;
                }
            }
        }
        first = null;
        for (Backend be : backends) {
            Tensor got = ops.copyOf("dx", dx0);
            be.quantMatmulInputGrad(dy, m, got, alpha, beta);
            Compare.within(what(be, "quantMatmulInputGrad α=" + alpha + " β=" + beta, shape), got, dxWant,
                    i -> integers ? Double.MIN_VALUE : gbound[i]);
            first = sameOnEveryThreadCount(be, "quantMatmulInputGrad", shape, got, first);
        }

        // dequantize
        Tensor dq = ops.poisoned("dequantized oracle", rows, cols);
        oracle.dequantize(m, dq);
        for (Backend be : backends) {
            Tensor got = ops.poisoned("dequantized", rows, cols);
            be.dequantize(m, got);
            Compare.exact(what(be, "dequantize", shape), got, dq);
        }

        // scale gradient (integer formats)
        if (f.kind() == QuantFormat.Kind.INT) {
            int groups = m.groups(), width = m.groupWidth();
            Tensor ds0 = data("dScales", rows, groups, integers);
            Tensor dsWant = ops.copyOf("dScales oracle", ds0);
            oracle.quantScaleGrad(x, dy, m, dsWant);
            float[] ds0v = Operands.read(ds0), dsw = Operands.read(dsWant);
            double[] sbound = new double[rows * groups];
            if (!integers) {
                double g = gamma(2L * n + width + 16);
                for (int i = 0; i < rows; i++) {
                    for (int k = 0; k < groups; k++) {
                        double s = 0;
                        for (int t = 0; t < n; t++) {
                            double p = 0;
                            for (int j = k * width; j < Math.min(cols, (k + 1) * width); j++) {
                                p += absQz[i][j] * Math.abs(xv[t * cols + j]);
                            }
                            s += Math.abs(dyv[t * rows + i]) * p;
                        }
                        int e = i * groups + k;
                        sbound[e] = g * s + gamma(2) * Math.abs(ds0v[e]) + U * Math.abs(dsw[e]) + TINY;
                    }
                }
            }
            first = null;
            for (Backend be : backends) {
                Tensor got = ops.copyOf("dScales", ds0);
                be.quantScaleGrad(x, dy, m, got);
                Compare.within(what(be, "quantScaleGrad", shape), got, dsWant, i -> integers ? Double.MIN_VALUE : sbound[i]);
                first = sameOnEveryThreadCount(be, "quantScaleGrad", shape, got, first);
            }
        }
        ops.release(shape);
        if (exact) {
            m.close();
        }
    }

    /** Fails unless {@code got} equals the first backend's result bit for bit; returns the first result. */
    private float[] sameOnEveryThreadCount(Backend be, String op, String shape, Tensor got, float[] first) {
        float[] v = Operands.read(got);
        if (first != null) {
            Compare.within(what(be, op + " against 1 thread", shape), v, first, i -> 0);
        }
        return first == null ? v : first;
    }

    @Test
    @Order(1)
    void everyFormatOnAwkwardShapes() {
        List<QuantFormat> all = formats();
        for (int i = 0; i < all.size(); i++) {
            int[] s = SHAPES[(3 * i) % SHAPES.length];
            check(all.get(i), s[0], s[1], s[2], false);
        }
    }

    @Test
    @Order(2)
    void integerFormatsExactlyOnIntegerData() {
        List<QuantFormat> all = formats();
        for (int i = 0; i < all.size(); i++) {
            if (all.get(i).kind() == QuantFormat.Kind.INT) {
                int[] s = SHAPES[(7 * i + 2) % SHAPES.length];
                check(all.get(i), s[0], s[1], s[2], true);
            }
        }
    }

    @Test
    @Order(3)
    void largeProductsSplitOverThreadsAndBlocks() {
        // K over two 512-deep blocks, outputs split over threads, N past the GEMM's 1152-row block.
        QuantFormat[] some = {QuantFormat.integer(2, 128, false, DType.BF16), QuantFormat.integer(3, 64, true, DType.F32),
            QuantFormat.integer(4, 128, false, DType.F32), QuantFormat.integer(8, 0, true, DType.F32),
            QuantFormat.nf4(64, true)};
        for (QuantFormat f : some) {
            check(f, 207, 1031, 64, false);
            check(f, 300, 1100, 1, false);
        }
        check(QuantFormat.integer(4, 32, false, DType.F32), 7, 64, 1200, false);
        check(QuantFormat.integer(4, 32, false, DType.F32), 40, 96, 1200, true);
    }

    @Test
    @Order(4)
    void exactlySizedStorage() {
        // The streaming path loads whole vectors of codes; at the end of an exactly sized block it must not read on.
        for (int bits : new int[]{2, 3, 4, 8}) {
            for (int[] s : new int[][]{{5, 131, 1}, {21, 1031, 3}, {1, 512, 1}, {3, 200, 2}}) {
                check(QuantFormat.integer(bits, 64, false, DType.F32), s[0], s[1], s[2], false, true);
            }
        }
        check(QuantFormat.nf4(64, false), 5, 1031, 1, false, true);
        check(QuantFormat.nf4(32, true), 9, 300, 2, false, true);
    }

    @Test
    @Order(5)
    void badArgumentsFailAsOnTheOracle() {
        QuantizedMatrix m = matrix(QuantFormat.integer(4, 32, true, DType.F32), 6, 40, false, false);
        QuantizedMatrix nf4 = matrix(QuantFormat.nf4(64, false), 6, 40, false, false);
        Tensor x = ops.uniform("x", -1, 1, 2, 40), y = ops.poisoned("y", 2, 6), bad = ops.poisoned("bad", 2, 7);
        Tensor ds = ops.poisoned("ds", 6, 2);
        sameError("quantMatmul into the wrong shape", IllegalArgumentException.class,
                b -> b.quantMatmul(x, m, bad, 1f, 0f), "quantMatmul", "'bad' [2, 7]", "(N, 6)");
        sameError("quantMatmulInputGrad from the wrong shape", IllegalArgumentException.class,
                b -> b.quantMatmulInputGrad(x, m, y, 1f, 0f), "quantMatmulInputGrad", "(N, 6) and (N, 40)");
        sameError("dequantize into the wrong shape", IllegalArgumentException.class,
                b -> b.dequantize(m, y), "dequantize", "[6, 40]");
        sameError("quantScaleGrad of NF4", IllegalArgumentException.class,
                b -> b.quantScaleGrad(x, y, nf4, ds), "only integer formats");
        sameError("quantMatmul with a bf16 input", IllegalArgumentException.class,
                b -> b.quantMatmul(ops.poisoned("x16", DType.BF16, 2, 40), m, y, 1f, 0f), "must be f32");
        ops.release("bad arguments");
        assertThat(m.isClosed()).isTrue();
    }
}
