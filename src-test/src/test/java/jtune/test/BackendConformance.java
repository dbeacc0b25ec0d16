package jtune.test;

import static jtune.test.Compare.TINY;
import static jtune.test.Compare.U;
import static jtune.test.Compare.gamma;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jtune.engine.backend.AdamWStep;
import jtune.engine.backend.Backend;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Every {@link Backend} operation except the matrix product ({@link GemmConformance}) against the scalar
 * oracle: awkward sizes, fresh random inputs, outputs poisoned with NaN before each call (accumulated
 * outputs get identical random values in both runs instead), guards around every tensor, aliased outputs
 * where the SPI allows them, 1 and 2 threads. A backend joins by subclassing and implementing {@link #create}.
 *
 * <p>Bounds. Element-wise arithmetic, copies, conversions, gathers and max are exact: IEEE operations give
 * one answer. Everything else is bounded by rounding-error analysis in units of u = 2⁻²⁴: a sum of n terms
 * in any order and blocking is off by at most γ_n·Σ|terms| (the oracle sums in double and rounds once, adding
 * u·|result|); exp and log may be approximations good to {@link #E}·u, and computing exp(a) in f32 costs a
 * further |a|·u through the rounding of its argument. Each bound is stated where it is used. Worst-case bounds
 * grow with n, so tail and seam bugs are caught by the small sizes (where the bound is a few ulp) and by the
 * exact integer cases of the reductions.
 */
public abstract class BackendConformance extends ConformanceSupport {
    /** Large enough for a multithreaded kernel to split the work, odd so that every split has a tail. */
    static final long LARGE = (1 << 18) + 3;

    /** Error allowed to a kernel's exp or log approximation, in units of u (4 ulp). */
    static final double E = 8;

    @FunctionalInterface
    interface Binary {
        void run(Backend b, Tensor x, Tensor y, Tensor out);
    }

    /** Every size as a vector, a rank-3 tensor, and one vector large enough to split over threads. */
    static List<long[]> elementwiseShapes() {
        List<long[]> s = new ArrayList<>();
        for (long n : SIZES) {
            s.add(new long[]{n});
        }
        s.add(new long[]{3, 5, 7});
        s.add(new long[]{LARGE});
        return s;
    }

    /** (rows, cols) for the row ops: every size as the row length, and enough rows to split over threads. */
    static List<long[]> rowShapes() {
        List<long[]> s = new ArrayList<>();
        for (long n : SIZES) {
            s.add(new long[]{3, n});
        }
        s.add(new long[]{1, 4098});
        s.add(new long[]{64, 33});
        s.add(new long[]{515, 702});
        return s;
    }

    private static int size(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return Math.toIntExact(n);
    }

    /** Uniform in [-10, 10], with some saturating values (±30 … ±1000) for the sigmoid-based ops. */
    private Tensor activations(String name, long[] shape) {
        Tensor t = ops.poisoned(name, shape);
        float[] v = new float[size(shape)];
        float[] extremes = {30f, -30f, 90f, -90f, 100f, -100f, 1000f, -1000f};
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (ops.rng.nextDouble() * 20 - 10);
        }
        for (int i = 0; i < Math.min(extremes.length, v.length / 4); i++) {
            v[ops.rng.nextInt(v.length)] = extremes[i];
        }
        return Operands.write(t, v);
    }

    // ---- element-wise ---------------------------------------------------------------------------

    private void binary(String op, Binary call) {
        for (long[] shape : elementwiseShapes()) {
            Tensor a = ops.uniform("a", -2, 2, shape), b = ops.uniform("b", -2, 2, shape);
            Tensor want = ops.poisoned("want", shape);
            call.run(oracle, a, b, want);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape);
                call.run(be, a, b, out);
                Compare.exact(what(be, op, shape), out, want);
                Tensor intoA = ops.copyOf("a", a), intoB = ops.copyOf("b", b);
                call.run(be, intoA, b, intoA);
                call.run(be, a, intoB, intoB);
                Compare.exact(what(be, op + " into a", shape), intoA, want);
                Compare.exact(what(be, op + " into b", shape), intoB, want);
            }
            ops.release(op);
        }
    }

    @Test
    void add() {
        binary("add", Backend::add);
    }

    @Test
    void mul() {
        binary("mul", Backend::mul);
    }

    @Test
    void scale() {
        for (long[] shape : elementwiseShapes()) {
            float s = (float) (ops.rng.nextDouble() * 6 - 3);
            Tensor x = ops.uniform("x", -2, 2, shape), want = ops.poisoned("want", shape);
            oracle.scale(x, s, want);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape);
                be.scale(x, s, out);
                Compare.exact(what(be, "scale", shape), out, want);
                Tensor inPlace = ops.copyOf("x", x);
                be.scale(inPlace, s, inPlace);
                Compare.exact(what(be, "scale in place", shape), inPlace, want);
            }
            ops.release("scale");
        }
    }

    @Test
    void axpy() {
        // y + α·x with or without a fused multiply-add: at most two roundings, u·|αx| + u·|result|; the oracle one.
        for (long[] shape : elementwiseShapes()) {
            float alpha = (float) (ops.rng.nextDouble() * 4 - 2);
            Tensor x = ops.uniform("x", -2, 2, shape), y0 = ops.uniform("y0", -2, 2, shape);
            Tensor want = ops.copyOf("want", y0);
            oracle.axpy(alpha, x, want);
            float[] xv = Operands.read(x), yv = Operands.read(y0);
            for (Backend be : backends) {
                Tensor y = ops.copyOf("y", y0);
                be.axpy(alpha, x, y);
                Compare.within(what(be, "axpy", shape), y, want,
                        i -> 3 * U * (Math.abs(alpha * (double) xv[i]) + Math.abs(yv[i])) + TINY);
            }
            ops.release("axpy");
        }
    }

    @Test
    void fill() {
        for (long[] shape : elementwiseShapes()) {
            float value = (float) ops.rng.nextDouble(-5, 5);
            Tensor want = ops.poisoned("want", shape);
            oracle.fill(want, value);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape);
                be.fill(out, value);
                Compare.exact(what(be, "fill", shape), out, want);
            }
            ops.release("fill");
        }
    }

    @Test
    void copy() {
        for (long n : SIZES) {
            // Contiguous f32, a strided f32 source (a transposed column slice), contiguous bf16 and int32.
            Tensor flat = ops.uniform("src", -3, 3, n);
            Tensor strided = ops.fillUniform(
                    ops.carve("src", DType.F32, new long[]{7, n + 2}, t -> t.slice(1, 1, n + 1).transpose(0, 1)), -3, 3);
            Tensor half = randomBits("src", DType.BF16, n);
            Tensor ints = ops.ids("src", ops.rng.ints((int) n, -1000, 1000).toArray());
            for (Tensor src : new Tensor[]{flat, strided, half, ints}) {
                Tensor want = ops.poisoned("want", src.dtype(), src.shape().toArray());
                oracle.copy(src, want);
                for (Backend be : backends) {
                    Tensor dst = ops.poisoned("dst", src.dtype(), src.shape().toArray());
                    be.copy(src, dst);
                    Compare.exact(what(be, "copy " + src.dtype() + (src.isContiguous() ? "" : " strided"), src.shape()), dst, want);
                }
            }
            ops.release("copy");
        }
    }

    /** A tensor of type {@code type} holding random bit patterns: every class of value, NaNs and infinities included. */
    private Tensor randomBits(String name, DType type, long n) {
        Tensor t = ops.poisoned(name, type, n);
        MemorySegment seg = t.segment();
        for (long i = 0; i < n; i++) {
            if (type == DType.F32) {
                seg.setAtIndex(ValueLayout.JAVA_INT, t.offset() + i, f32Probe());
            } else {
                seg.setAtIndex(ValueLayout.JAVA_SHORT, t.offset() + i, (short) ops.rng.nextInt(1 << 16));
            }
        }
        return t;
    }

    /**
     * f32 bits for the narrowing conversions: half are uniform bit patterns (every exponent, NaN, infinity,
     * subnormal), half are moderate magnitudes (2⁻²⁶ … 2¹⁷, around the f16 range); a quarter have their low bits
     * set to an exact bf16 tie (0x8000) and a quarter to an exact f16 tie (0x1000).
     */
    private int f32Probe() {
        int bits = ops.rng.nextBoolean() ? ops.rng.nextInt()
                : Float.floatToRawIntBits((float) (Math.scalb(1 + ops.rng.nextDouble(), ops.rng.nextInt(-26, 18))
                * (ops.rng.nextBoolean() ? 1 : -1)));
        return switch (ops.rng.nextInt(4)) {
            case 0 -> (bits & 0xffff_0000) | 0x8000;
            case 1 -> (bits & 0xffff_e000) | 0x1000;
            default -> bits;
        };
    }

    @Test
    void convert() {
        DType[][] pairs = {{DType.F32, DType.BF16}, {DType.F32, DType.F16}, {DType.BF16, DType.F32},
                {DType.F16, DType.F32}, {DType.BF16, DType.F16}, {DType.F16, DType.BF16}};
        List<Long> sizes = new ArrayList<>();
        for (long n : SIZES) {
            sizes.add(n);
        }
        sizes.add(LARGE);
        for (long n : sizes) {
            for (DType[] p : pairs) {
                Tensor src = randomBits("src", p[0], n);
                Tensor want = ops.poisoned("want", p[1], n);
                oracle.convert(src, want);
                for (Backend be : backends) {
                    Tensor dst = ops.poisoned("dst", p[1], n);
                    be.convert(src, dst);
                    Compare.exact(what(be, "convert " + p[0] + " to " + p[1], n), dst, want);
                }
            }
            ops.release("convert");
        }
    }

    // ---- reductions -----------------------------------------------------------------------------

    @Test
    void reductionsOfRandomFloats() {
        // Any order of summation: γ_n·Σ|terms| (products add one rounding: γ_(n+1)); the oracle: u·|result|.
        List<Long> sizes = new ArrayList<>();
        for (long n : SIZES) {
            sizes.add(n);
        }
        sizes.add(LARGE);
        for (long n : sizes) {
            Tensor a = ops.uniform("a", -1, 1, n), b = ops.uniform("b", -1, 1, n);
            float[] av = Operands.read(a), bv = Operands.read(b);
            double abs = 0, sq = 0, absDot = 0;
            for (int i = 0; i < av.length; i++) {
                abs += Math.abs(av[i]);
                sq += (double) av[i] * av[i];
                absDot += Math.abs((double) av[i] * bv[i]);
            }
            float sum = oracle.sum(a), squares = oracle.sumOfSquares(a), dot = oracle.dot(a, b);
            for (Backend be : backends) {
                Compare.scalar(what(be, "sum", n), be.sum(a), sum, gamma(n) * abs + U * Math.abs(sum) + TINY);
                Compare.scalar(what(be, "sumOfSquares", n), be.sumOfSquares(a), squares,
                        gamma(n + 1) * sq + U * squares + TINY);
                Compare.scalar(what(be, "dot", n), be.dot(a, b), dot, gamma(n + 1) * absDot + U * Math.abs(dot) + TINY);
            }
            ops.release("reductions");
        }
    }

    @Test
    void reductionsOfIntegersAreExact() {
        // Integers whose every partial sum stays below 2^24 are summed exactly in any order: a dropped, doubled
        // or misplaced element anywhere (tails, thread seams) changes the result.
        List<Long> sizes = new ArrayList<>();
        for (long n : SIZES) {
            sizes.add(n);
        }
        sizes.add(LARGE);
        for (long n : sizes) {
            int r = (int) Math.max(1, Math.min(8, (1L << 24) / n));
            int rp = (int) Math.max(1, Math.min(8, Math.sqrt((double) (1L << 24) / n)));
            Tensor a = ops.integers("a", r, n), c = ops.integers("c", rp, n), d = ops.integers("d", rp, n);
            float sum = oracle.sum(a), squares = oracle.sumOfSquares(c), dot = oracle.dot(c, d);
            for (Backend be : backends) {
                Compare.scalar(what(be, "sum of integers", n), be.sum(a), sum, 0);
                Compare.scalar(what(be, "sumOfSquares of integers", n), be.sumOfSquares(c), squares, 0);
                Compare.scalar(what(be, "dot of integers", n), be.dot(c, d), dot, 0);
            }
            ops.release("integer reductions");
        }
    }

    @Test
    void max() {
        List<Long> sizes = new ArrayList<>();
        for (long n : SIZES) {
            sizes.add(n);
        }
        sizes.add(LARGE);
        for (long n : sizes) {
            // All negative (a maximum that starts from 0 fails), then mixed, then with one NaN (the last element
            // in one run, a random one in the other).
            Tensor neg = ops.uniform("neg", -3, -1, n), mixed = ops.uniform("mixed", -1, 1, n);
            Tensor nanLast = ops.copyOf("nanLast", mixed), nanSomewhere = ops.copyOf("nanSomewhere", neg);
            nanLast.set(Float.NaN, n - 1);
            nanSomewhere.set(Float.NaN, ops.rng.nextLong(n));
            for (Tensor x : new Tensor[]{neg, mixed, nanLast, nanSomewhere}) {
                float want = oracle.max(x);
                for (Backend be : backends) {
                    Compare.scalar(what(be, "max of " + x.name(), n), be.max(x), want, 0);
                }
            }
            ops.release("max");
        }
    }

    // ---- rows -----------------------------------------------------------------------------------

    /**
     * Relative bound for each y = exp(x − m)/s of a softmax whose row r covers the first {@code valid[r]} of
     * {@code cols} elements: the argument's rounding (|x − m|·u), exp (E·u), the sum s of positive terms (their
     * own error, at most (R + E)·u with R the row's largest |x − m|, plus γ_valid), the division (u) and the
     * oracle's rounding (u).
     */
    private static double[] softmaxRelative(float[] x, int cols, int[] valid) {
        double[] rel = new double[x.length];
        for (int r = 0; r < valid.length; r++) {
            int from = r * cols;
            double m = Double.NEGATIVE_INFINITY, lo = Double.POSITIVE_INFINITY;
            for (int j = from; j < from + valid[r]; j++) {
                m = Math.max(m, x[j]);
                lo = Math.min(lo, x[j]);
            }
            for (int j = from; j < from + valid[r]; j++) {
                rel[j] = (Math.abs(x[j] - m) + (m - lo) + 2 * E + 3) * U + gamma(valid[r]);
            }
        }
        return rel;
    }

    @Test
    void softmax() {
        for (long[] shape : rowShapes()) {
            int cols = (int) shape[1];
            Tensor x = ops.uniform("x", -8, 8, shape), want = ops.poisoned("want", shape);
            oracle.softmax(x, want, false);
            float[] wv = Operands.read(want);
            int[] valid = new int[(int) shape[0]];
            Arrays.fill(valid, cols);
            double[] rel = softmaxRelative(Operands.read(x), cols, valid);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape), inPlace = ops.copyOf("x", x);
                be.softmax(x, out, false);
                be.softmax(inPlace, inPlace, false);
                for (Tensor got : new Tensor[]{out, inPlace}) {
                    Compare.within(what(be, got == out ? "softmax" : "softmax in place", shape), got, want,
                            i -> wv[i] * rel[i] + TINY);
                }
            }
            ops.release("softmax");
        }
    }

    @Test
    void causalSoftmax() {
        // (B, T, S): row t of each matrix sees columns j <= t + S - T; the rest must be exactly 0.
        List<long[]> shapes = new ArrayList<>();
        for (long s : SIZES) {
            shapes.add(new long[]{2, Math.min(s, 33), s});
        }
        shapes.add(new long[]{8, 64, 702});
        for (long[] shape : shapes) {
            int t = (int) shape[1], s = (int) shape[2];
            Tensor x = ops.uniform("x", -8, 8, shape), want = ops.poisoned("want", shape);
            oracle.softmax(x, want, true);
            float[] wv = Operands.read(want);
            int[] valid = new int[(int) (shape[0] * t)];
            for (int row = 0; row < valid.length; row++) {
                valid[row] = row % t + s - t + 1;
            }
            double[] rel = softmaxRelative(Operands.read(x), s, valid);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape), inPlace = ops.copyOf("x", x);
                be.softmax(x, out, true);
                be.softmax(inPlace, inPlace, true);
                for (Tensor got : new Tensor[]{out, inPlace}) {
                    Compare.within(what(be, got == out ? "causal softmax" : "causal softmax in place", shape), got, want,
                            i -> i % s >= valid[i / s] ? Double.MIN_VALUE : wv[i] * rel[i] + TINY);
                }
            }
            ops.release("causal softmax");
        }
    }

    @Test
    void softmaxBackward() {
        // dx = y ⊙ (dy − s), s = Σ dy⊙y: s is off by γ_(n+1)·Σ|dy⊙y|, the subtraction by u·|dy − s|, the product
        // by u·|dx|; the oracle by u·|dx|.
        for (long[] shape : rowShapes()) {
            int cols = (int) shape[1];
            Tensor x = ops.uniform("x", -4, 4, shape), y = ops.poisoned("y", shape);
            oracle.softmax(x, y, false);
            Tensor dy = ops.uniform("dy", -1, 1, shape), want = ops.poisoned("want", shape);
            oracle.softmaxBackward(y, dy, want);
            float[] yv = Operands.read(y), dv = Operands.read(dy), wv = Operands.read(want);
            double[] s = new double[yv.length / cols], abs = new double[s.length];
            for (int i = 0; i < yv.length; i++) {
                s[i / cols] += (double) dv[i] * yv[i];
                abs[i / cols] += Math.abs((double) dv[i] * yv[i]);
            }
            for (Backend be : backends) {
                Tensor dx = ops.poisoned("dx", shape), inPlace = ops.copyOf("dy", dy);
                be.softmaxBackward(y, dy, dx);
                be.softmaxBackward(y, inPlace, inPlace);
                for (Tensor got : new Tensor[]{dx, inPlace}) {
                    Compare.within(what(be, got == dx ? "softmaxBackward" : "softmaxBackward into dy", shape), got, want,
                            i -> Math.abs(yv[i]) * (gamma(cols + 1) * abs[i / cols] + 2 * U * (Math.abs(dv[i]) + Math.abs(s[i / cols])))
                                    + 2 * U * Math.abs(wv[i]) + TINY);
                }
            }
            ops.release("softmaxBackward");
        }
    }

    @Test
    void rmsNorm() {
        // rstd: the sum of D squares is off by γ_(D+1) relative (positive terms), the square root halves that,
        // the mean, epsilon, root and reciprocal add a few u. out = x·rstd·w: two more roundings, and the
        // oracle's own three.
        float eps = 1e-5f;
        for (long[] shape : rowShapes()) {
            long rows = shape[0], d = shape[1];
            Tensor x = ops.uniform("x", -2, 2, shape), w = ops.uniform("w", -1.5, 1.5, d);
            Tensor want = ops.poisoned("want", shape), wantRstd = ops.poisoned("wantRstd", rows);
            oracle.rmsNorm(x, w, eps, want, wantRstd);
            float[] wv = Operands.read(want), rv = Operands.read(wantRstd);
            double rel = gamma(d + 1) / 2 + 5 * U;
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape), rstd = ops.poisoned("rstd", rows);
                Tensor inPlace = ops.copyOf("x", x), rstd2 = ops.poisoned("rstd", rows);
                be.rmsNorm(x, w, eps, out, rstd);
                be.rmsNorm(inPlace, w, eps, inPlace, rstd2);
                for (Tensor[] got : new Tensor[][]{{out, rstd}, {inPlace, rstd2}}) {
                    String op = got[0] == out ? "rmsNorm" : "rmsNorm in place";
                    Compare.within(what(be, op + " rstd", shape), got[1], wantRstd, i -> rel * rv[i] + TINY);
                    Compare.within(what(be, op, shape), got[0], want, i -> (rel + 5 * U) * Math.abs(wv[i]) + TINY);
                }
            }
            ops.release("rmsNorm");
        }
    }

    @Test
    void rmsNormBackward() {
        // With x̂ = x·r, g = dy·w, μ = Σ g·x̂ / D: μ is off by γ_(D+3)·Σ|g·x̂|/D; dx = r·(g − x̂·μ) adds a few
        // roundings of its terms. dweight += Σ_rows dy·x̂: γ_(N+3) of the terms and of the prior value.
        float eps = 1e-5f;
        for (long[] shape : rowShapes()) {
            int rows = (int) shape[0], d = (int) shape[1];
            Tensor x = ops.uniform("x", -2, 2, shape), w = ops.uniform("w", -1.5, 1.5, d);
            Tensor y = ops.poisoned("y", shape), rstd = ops.poisoned("rstd", rows);
            oracle.rmsNorm(x, w, eps, y, rstd);
            Tensor dy = ops.uniform("dy", -1, 1, shape), dw0 = ops.uniform("dw0", -1, 1, d);
            Tensor want = ops.poisoned("want", shape), wantDw = ops.copyOf("wantDw", dw0);
            oracle.rmsNormBackward(x, w, rstd, dy, want, wantDw);

            float[] xv = Operands.read(x), wv = Operands.read(w), rv = Operands.read(rstd), dyv = Operands.read(dy);
            float[] dxv = Operands.read(want), dw0v = Operands.read(dw0), dwv = Operands.read(wantDw);
            double[] tolDx = new double[xv.length], dwTerms = new double[d];
            for (int r = 0; r < rows; r++) {
                double mean = 0, abs = 0;
                for (int j = 0; j < d; j++) {
                    double xh = (double) xv[r * d + j] * rv[r], g = (double) dyv[r * d + j] * wv[j];
                    mean += g * xh;
                    abs += Math.abs(g * xh);
                    dwTerms[j] += Math.abs(dyv[r * d + j] * xh);
                }
                mean /= d;
                for (int j = 0; j < d; j++) {
                    int i = r * d + j;
                    double xh = (double) xv[i] * rv[r], g = (double) dyv[i] * wv[j];
                    tolDx[i] = rv[r] * (3 * U * Math.abs(g) + Math.abs(xh) * gamma(d + 3) * abs / d + 4 * U * Math.abs(xh * mean))
                            + 2 * U * Math.abs(dxv[i]) + TINY;
                }
            }
            for (Backend be : backends) {
                Tensor dx = ops.poisoned("dx", shape), dw = ops.copyOf("dw", dw0);
                be.rmsNormBackward(x, w, rstd, dy, dx, dw);
                Compare.within(what(be, "rmsNormBackward dx", shape), dx, want, i -> tolDx[i]);
                Compare.within(what(be, "rmsNormBackward dweight", shape), dw, wantDw,
                        j -> gamma(rows + 3) * (dwTerms[j] + Math.abs(dw0v[j])) + U * Math.abs(dwv[j]) + TINY);
            }
            ops.release("rmsNormBackward");
        }
    }

    @Test
    void rope() {
        // Each output is x1·c ∓ x2·s: at most three roundings of its two terms; the oracle one.
        long[] halves = {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64};
        List<long[]> shapes = new ArrayList<>();
        for (int i = 0; i < halves.length; i++) {
            shapes.add(i % 2 == 0 ? new long[]{3, 2, 2 * halves[i]} : new long[]{2, 3, 2, 2 * halves[i]});
        }
        shapes.add(new long[]{2, 128, 12, 64});
        for (long[] shape : shapes) {
            int r = shape.length, t = (int) shape[r - 3], h = (int) shape[r - 2], d = (int) shape[r - 1], half = d / 2;
            Tensor cos = ops.poisoned("cos", t, half), sin = ops.poisoned("sin", t, half);
            float[] cv = new float[t * half], sv = new float[t * half];
            for (int p = 0; p < t; p++) {
                for (int i = 0; i < half; i++) {
                    double angle = p * Math.pow(10000, -2.0 * i / d);
                    cv[p * half + i] = (float) Math.cos(angle);
                    sv[p * half + i] = (float) Math.sin(angle);
                }
            }
            Operands.write(cos, cv);
            Operands.write(sin, sv);
            Tensor x = ops.uniform("x", -1, 1, shape);
            float[] xv = Operands.read(x);
            for (boolean inverse : new boolean[]{false, true}) {
                Tensor want = ops.copyOf("want", x);
                oracle.rope(want, cos, sin, inverse);
                for (Backend be : backends) {
                    Tensor got = ops.copyOf("x", x);
                    be.rope(got, cos, sin, inverse);
                    Compare.within(what(be, inverse ? "rope inverse" : "rope", shape), got, want, e -> {
                        int i = e % d % half, base = e - e % d, p = e / (h * d) % t;
                        return 3 * U * (Math.abs(xv[base + i]) + Math.abs(xv[base + i + half]))
                                * (Math.abs(cv[p * half + i]) + Math.abs(sv[p * half + i])) + TINY;
                    });
                }
            }
            ops.release("rope");
        }
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    /**
     * Below this x, exp(−x) overflows f32 and an f32 σ(x) = 1/(1 + exp(−x)) is exactly 0; the true silu there is
     * below 10⁻³⁶, so the bound allows the whole of it (and of the gradients, which are as small).
     */
    private static final double SIGMOID_OVERFLOW = -Math.log(Float.MAX_VALUE);

    private static double saturated(double x, double magnitude) {
        return x < SIGMOID_OVERFLOW ? Math.abs(magnitude) : 0;
    }

    @Test
    void silu() {
        // x·σ(x): exp(−x) carries (E + |x|)·u, then 1 + e, the division and the product one u each; the oracle u.
        for (long[] shape : elementwiseShapes()) {
            Tensor x = activations("x", shape), want = ops.poisoned("want", shape);
            oracle.silu(x, want);
            float[] xv = Operands.read(x), wv = Operands.read(want);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape), inPlace = ops.copyOf("x", x);
                be.silu(x, out);
                be.silu(inPlace, inPlace);
                for (Tensor got : new Tensor[]{out, inPlace}) {
                    Compare.within(what(be, got == out ? "silu" : "silu in place", shape), got, want,
                            i -> (E + Math.abs(xv[i]) + 5) * U * Math.abs(wv[i]) + saturated(xv[i], wv[i]) + TINY);
                }
            }
            ops.release("silu");
        }
    }

    /**
     * Bound for dy·σ(x)·(1 + x·(1 − σ(x))): its two terms are at most T = |dy|·σ·(1 + |x|) in magnitude; σ is off
     * by (E + |x| + 2)·u relative, 1 − σ by as much absolutely, the products and the sum by a few u.
     */
    private static double siluGradBound(double dy, double x, double result) {
        double t = Math.abs(dy) * sigmoid(x) * (1 + Math.abs(x));
        return 2 * (E + Math.abs(x) + 5) * U * t + 2 * U * Math.abs(result) + saturated(x, t) + TINY;
    }

    @Test
    void siluBackward() {
        for (long[] shape : elementwiseShapes()) {
            Tensor x = activations("x", shape), dy = ops.uniform("dy", -1, 1, shape), want = ops.poisoned("want", shape);
            oracle.siluBackward(x, dy, want);
            float[] xv = Operands.read(x), dv = Operands.read(dy), wv = Operands.read(want);
            for (Backend be : backends) {
                Tensor dx = ops.poisoned("dx", shape), inPlace = ops.copyOf("dy", dy);
                be.siluBackward(x, dy, dx);
                be.siluBackward(x, inPlace, inPlace);
                for (Tensor got : new Tensor[]{dx, inPlace}) {
                    Compare.within(what(be, got == dx ? "siluBackward" : "siluBackward into dy", shape), got, want,
                            i -> siluGradBound(dv[i], xv[i], wv[i]));
                }
            }
            ops.release("siluBackward");
        }
    }

    @Test
    void swiglu() {
        for (long[] shape : elementwiseShapes()) {
            Tensor gate = activations("gate", shape), up = ops.uniform("up", -2, 2, shape), want = ops.poisoned("want", shape);
            oracle.swiglu(gate, up, want);
            float[] gv = Operands.read(gate), wv = Operands.read(want);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", shape);
                be.swiglu(gate, up, out);
                Compare.within(what(be, "swiglu", shape), out, want,
                        i -> (E + Math.abs(gv[i]) + 6) * U * Math.abs(wv[i]) + saturated(gv[i], wv[i]) + TINY);
            }
            ops.release("swiglu");
        }
    }

    @Test
    void swigluBackward() {
        for (long[] shape : elementwiseShapes()) {
            Tensor gate = activations("gate", shape), up = ops.uniform("up", -2, 2, shape), dout = ops.uniform("dout", -1, 1, shape);
            Tensor wantGate = ops.poisoned("wantGate", shape), wantUp = ops.poisoned("wantUp", shape);
            oracle.swigluBackward(gate, up, dout, wantGate, wantUp);
            float[] gv = Operands.read(gate), uv = Operands.read(up), dv = Operands.read(dout);
            float[] wg = Operands.read(wantGate), wu = Operands.read(wantUp);
            for (Backend be : backends) {
                Tensor dgate = ops.poisoned("dgate", shape), dup = ops.poisoned("dup", shape);
                be.swigluBackward(gate, up, dout, dgate, dup);
                Compare.within(what(be, "swigluBackward dup", shape), dup, wantUp,
                        i -> (E + Math.abs(gv[i]) + 6) * U * Math.abs(wu[i]) + saturated(gv[i], wu[i]) + TINY);
                Compare.within(what(be, "swigluBackward dgate", shape), dgate, wantGate,
                        i -> siluGradBound((double) dv[i] * uv[i], gv[i], wg[i]) + U * Math.abs(wg[i]));
            }
            ops.release("swigluBackward");
        }
    }

    @Test
    void crossEntropy() {
        List<long[]> shapes = new ArrayList<>();
        for (long v : SIZES) {
            shapes.add(new long[]{3, v});
        }
        shapes.add(new long[]{5, 32000});
        shapes.add(new long[]{129, 4098});
        for (long[] shape : shapes) {
            int n = (int) shape[0], v = (int) shape[1];
            Tensor logits = ops.uniform("logits", -8, 8, shape);
            int[] tv = new int[n];
            int valid = 0;
            for (int r = 0; r < n; r++) {
                tv[r] = ops.rng.nextInt(5) == 0 ? -1 : ops.rng.nextInt(v);
                valid += tv[r] >= 0 ? 1 : 0;
            }
            Tensor targets = ops.ids("targets", tv);
            float scale = 1f / Math.max(valid, 1);
            Tensor want = ops.poisoned("want", shape);
            float wantLoss = oracle.crossEntropy(logits, targets, want, scale);

            // Per row: the sum s of exps is off by (R + E)·u + γ_V relative, which log turns into an absolute error;
            // log itself E·u·|log s|; m + log s and − x_target one u each; the rows' sum γ_N of their losses.
            float[] xv = Operands.read(logits), wv = Operands.read(want);
            double lossTol = U * Math.abs(wantLoss) + TINY, absLoss = 0;
            double[] rel = new double[xv.length], prob = new double[xv.length];
            for (int r = 0; r < n; r++) {
                double m = Double.NEGATIVE_INFINITY, lo = Double.POSITIVE_INFINITY, s = 0;
                for (int j = 0; j < v; j++) {
                    m = Math.max(m, xv[r * v + j]);
                    lo = Math.min(lo, xv[r * v + j]);
                }
                for (int j = 0; j < v; j++) {
                    s += Math.exp(xv[r * v + j] - m);
                }
                double logS = Math.log(s), range = m - lo;
                double lseErr = (range + E) * U + gamma(v) + (E + 2) * U * (Math.abs(m) + Math.abs(logS));
                for (int j = 0; j < v; j++) {
                    rel[r * v + j] = (2 * Math.abs(xv[r * v + j] - m) + logS + range + 2 * E + 6) * U + lseErr;
                    prob[r * v + j] = Math.exp(xv[r * v + j] - m - logS);
                }
                if (tv[r] >= 0) {
                    double loss = m + logS - xv[r * v + tv[r]];
                    lossTol += lseErr + U * Math.abs(loss);
                    absLoss += Math.abs(loss);
                }
            }
            lossTol += gamma(n) * absLoss;
            double finalLossTol = lossTol;
            for (Backend be : backends) {
                Tensor dl = ops.poisoned("dlogits", shape), inPlace = ops.copyOf("logits", logits);
                Compare.scalar(what(be, "crossEntropy loss", shape), be.crossEntropy(logits, targets, dl, scale), wantLoss, finalLossTol);
                Compare.scalar(what(be, "crossEntropy loss without gradient", shape),
                        be.crossEntropy(logits, targets, null, scale), wantLoss, finalLossTol);
                Compare.scalar(what(be, "crossEntropy loss, gradient in place", shape),
                        be.crossEntropy(inPlace, targets, inPlace, scale), wantLoss, finalLossTol);
                for (Tensor got : new Tensor[]{dl, inPlace}) {
                    Compare.within(what(be, got == dl ? "crossEntropy dlogits" : "crossEntropy dlogits in place", shape), got, want, i -> {
                        int r = i / v;
                        if (tv[r] < 0) {
                            return Double.MIN_VALUE; // exactly 0
                        }
                        double onehot = i % v == tv[r] ? 1 : 0;
                        return scale * (prob[i] * rel[i] + U * Math.abs(prob[i] - onehot)) + U * Math.abs(wv[i]) + TINY;
                    });
                }
            }
            ops.release("crossEntropy");
        }
    }

    @Test
    void crossEntropyOfMaskedLogits() {
        // A logit of −∞ (a masked vocabulary entry) has probability 0: it adds nothing to its row's sum of exps and
        // its gradient is exactly 0; the loss stays finite while the targets are not masked. Rows shorter and longer
        // than a GPU block, each with its first entry masked and about a third of the others (never the target).
        // Bounds as in crossEntropy, over the finite logits.
        for (long[] shape : List.of(new long[]{3, 7}, new long[]{4, 300}, new long[]{2, 4098})) {
            int n = (int) shape[0], v = (int) shape[1];
            int[] tv = new int[n];
            float[] xv = new float[n * v];
            for (int r = 0; r < n; r++) {
                tv[r] = 1 + ops.rng.nextInt(v - 1);
                for (int j = 0; j < v; j++) {
                    boolean masked = j != tv[r] && (j == 0 || ops.rng.nextInt(3) == 0);
                    xv[r * v + j] = masked ? Float.NEGATIVE_INFINITY : (float) (ops.rng.nextDouble() * 16 - 8);
                }
            }
            Tensor logits = Operands.write(ops.poisoned("logits", shape), xv), targets = ops.ids("targets", tv);
            float scale = 1f / n;
            Tensor want = ops.poisoned("want", shape);
            float wantLoss = oracle.crossEntropy(logits, targets, want, scale);
            float[] wv = Operands.read(want);
            double lossTol = U * Math.abs(wantLoss) + TINY, absLoss = 0;
            double[] tol = new double[xv.length];
            for (int r = 0; r < n; r++) {
                double m = Double.NEGATIVE_INFINITY, lo = Double.POSITIVE_INFINITY, s = 0;
                for (int i = r * v; i < (r + 1) * v; i++) {
                    if (xv[i] != Float.NEGATIVE_INFINITY) {
                        m = Math.max(m, xv[i]);
                        lo = Math.min(lo, xv[i]);
                    }
                }
                for (int i = r * v; i < (r + 1) * v; i++) {
                    s += Math.exp(xv[i] - m);
                }
                double logS = Math.log(s), range = m - lo;
                double lseErr = (range + E) * U + gamma(v) + (E + 2) * U * (Math.abs(m) + Math.abs(logS));
                for (int i = r * v; i < (r + 1) * v; i++) {
                    if (xv[i] == Float.NEGATIVE_INFINITY) {
                        tol[i] = Double.MIN_VALUE; // exactly 0
                        continue;
                    }
                    double rel = (2 * Math.abs(xv[i] - m) + logS + range + 2 * E + 6) * U + lseErr;
                    double prob = Math.exp(xv[i] - m - logS), onehot = i - r * v == tv[r] ? 1 : 0;
                    tol[i] = scale * (prob * rel + U * Math.abs(prob - onehot)) + U * Math.abs(wv[i]) + TINY;
                }
                double loss = m + logS - xv[r * v + tv[r]];
                lossTol += lseErr + U * Math.abs(loss);
                absLoss += Math.abs(loss);
            }
            lossTol += gamma(n) * absLoss;
            for (Backend be : backends) {
                Tensor dl = ops.poisoned("dlogits", shape);
                Compare.scalar(what(be, "crossEntropy loss of masked logits", shape),
                        be.crossEntropy(logits, targets, dl, scale), wantLoss, lossTol);
                Compare.within(what(be, "crossEntropy dlogits of masked logits", shape), dl, want, i -> tol[i]);
            }
            ops.release("crossEntropy of masked logits");
        }
    }

    // ---- embedding ------------------------------------------------------------------------------

    @Test
    void embedding() {
        List<long[]> cases = new ArrayList<>(); // (V, D, N)
        for (long d : SIZES) {
            cases.add(new long[]{37, d, 13});
        }
        cases.add(new long[]{1000, 702, 515});
        for (long[] c : cases) {
            Tensor table = ops.uniform("table", -1, 1, c[0], c[1]);
            Tensor ids = ops.ids("ids", ops.rng.ints((int) c[2], 0, (int) c[0]).toArray());
            Tensor want = ops.poisoned("want", c[2], c[1]);
            oracle.embedding(table, ids, want);
            for (Backend be : backends) {
                Tensor out = ops.poisoned("out", c[2], c[1]);
                be.embedding(table, ids, out);
                Compare.exact(what(be, "embedding", c), out, want);
            }
            ops.release("embedding");
        }
    }

    @Test
    void embeddingBackward() {
        // Each row of dtable gets its prior value plus the cnt rows of dout with its id, summed in some order:
        // γ_cnt of those terms for both the backend and the oracle; a row no id names must not change at all.
        List<long[]> cases = new ArrayList<>(); // (V, D, N)
        for (long d : SIZES) {
            cases.add(new long[]{11, d, 29});
        }
        cases.add(new long[]{1000, 207, 2000});
        for (long[] c : cases) {
            int vocab = (int) c[0], d = (int) c[1], n = (int) c[2];
            int[] idv = ops.rng.ints(n, 0, vocab - 1).toArray(); // the last row is never named
            Tensor ids = ops.ids("ids", idv), dout = ops.uniform("dout", -1, 1, n, d);
            Tensor dt0 = ops.uniform("dtable0", -1, 1, vocab, d), want = ops.copyOf("want", dt0);
            oracle.embeddingBackward(dout, ids, want);
            float[] dv = Operands.read(dout), t0 = Operands.read(dt0), wv = Operands.read(want);
            int[] count = new int[vocab];
            double[] terms = new double[vocab * d];
            for (int r = 0; r < n; r++) {
                count[idv[r]]++;
                for (int j = 0; j < d; j++) {
                    terms[idv[r] * d + j] += Math.abs(dv[r * d + j]);
                }
            }
            for (Backend be : backends) {
                Tensor dtable = ops.copyOf("dtable", dt0);
                be.embeddingBackward(dout, ids, dtable);
                Compare.within(what(be, "embeddingBackward", c), dtable, want, i -> count[i / d] == 0 ? 0
                        : 2 * gamma(count[i / d]) * (terms[i] + Math.abs(t0[i])) + U * Math.abs(wv[i]) + TINY);
            }
            ops.release("embeddingBackward");
        }
    }

    // ---- optimizer ------------------------------------------------------------------------------

    @Test
    void adamw() {
        // Three steps; before each both sides start from the oracle's state. m = β1·m + (1−β1)·g: three roundings
        // of its terms; v likewise, four; the update lr/bc1 · m / (√v/√bc2 + ε) inherits m's absolute error and
        // half of v's relative one, plus about ten roundings; p·(1 − lr·wd) two; the oracle rounds each once.
        List<Long> sizes = new ArrayList<>();
        for (long n : SIZES) {
            sizes.add(n);
        }
        sizes.add(LARGE);
        float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
        for (long n : sizes) {
            Tensor p = ops.uniform("p", -1, 1, n), m = ops.poisoned("m", n), v = ops.poisoned("v", n);
            oracle.fill(m, 0);
            oracle.fill(v, 0);
            for (int step = 1; step <= 3; step++) {
                Tensor g = ops.poisoned("g", n);
                float[] gv = new float[(int) n];
                for (int i = 0; i < gv.length; i++) {
                    gv[i] = (float) ((ops.rng.nextDouble() * 2 - 1) * Math.pow(10, -4 * ops.rng.nextDouble()));
                }
                Operands.write(g, gv);
                AdamWStep s = new AdamWStep(lr, b1, b2, eps, wd, step);
                float[] p0 = Operands.read(p), m0 = Operands.read(m), v0 = Operands.read(v);
                Tensor wantP = ops.copyOf("wantP", p), wantM = ops.copyOf("wantM", m), wantV = ops.copyOf("wantV", v);
                oracle.adamw(wantP, g, wantM, wantV, s);
                float[] pw = Operands.read(wantP), mw = Operands.read(wantM), vw = Operands.read(wantV);
                int len = gv.length;
                double[] tolP = new double[len], tolM = new double[len], tolV = new double[len];
                double stepSize = lr / s.biasCorrection1(), sqrtBc2 = Math.sqrt(s.biasCorrection2());
                for (int i = 0; i < len; i++) {
                    double mTerms = Math.abs(b1 * (double) m0[i]) + Math.abs((1 - (double) b1) * gv[i]);
                    double vTerms = Math.abs(b2 * (double) v0[i]) + Math.abs((1 - (double) b2) * gv[i] * gv[i]);
                    double m1 = b1 * (double) m0[i] + (1 - (double) b1) * gv[i];
                    double v1 = b2 * (double) v0[i] + (1 - (double) b2) * gv[i] * gv[i];
                    double denom = Math.sqrt(v1) / sqrtBc2 + eps, update = stepSize * m1 / denom;
                    tolM[i] = 3 * U * mTerms + U * Math.abs(mw[i]) + TINY;
                    tolV[i] = 4 * U * vTerms + U * Math.abs(vw[i]) + TINY;
                    tolP[i] = 3 * U * Math.abs(p0[i]) + 16 * U * Math.abs(update) + stepSize * 3 * U * mTerms / denom
                            + U * Math.abs(pw[i]) + TINY;
                }
                for (Backend be : backends) {
                    Tensor pb = ops.copyOf("p", p), mb = ops.copyOf("m", m), vb = ops.copyOf("v", v);
                    be.adamw(pb, g, mb, vb, s);
                    String op = "adamw step " + step;
                    Compare.within(what(be, op + " m", n), mb, wantM, i -> tolM[i]);
                    Compare.within(what(be, op + " v", n), vb, wantV, i -> tolV[i]);
                    Compare.within(what(be, op + " param", n), pb, wantP, i -> tolP[i]);
                }
                p = wantP;
                m = wantM;
                v = wantV;
            }
            ops.release("adamw");
        }
    }

    // ---- argument errors ------------------------------------------------------------------------

    @Test
    void argumentErrorsNameTheShapes() {
        Class<IllegalArgumentException> bad = IllegalArgumentException.class;
        Tensor a = ops.poisoned("a", 3, 4), b = ops.poisoned("b", 4, 3), out = ops.poisoned("out", 3, 4);
        Tensor half = ops.poisoned("half", DType.BF16, 3, 4);
        Tensor strided = ops.carve("strided", DType.F32, new long[]{3, 8}, t -> t.slice(1, 2, 6));
        sameError("add of mismatched shapes", bad, be -> be.add(a, b, out), "'a' [3, 4]", "'b' [4, 3]");
        sameError("mul of a bf16 tensor", bad, be -> be.mul(a, half, out), "'half' [3, 4]", "bf16");
        sameError("scale of a strided view", bad, be -> be.scale(strided, 2f, out), "'strided' [3, 4]", "contiguous");
        sameError("axpy of mismatched shapes", bad, be -> be.axpy(1f, a, b), "'a' [3, 4]", "'b' [4, 3]");
        sameError("fill of a bf16 tensor", bad, be -> be.fill(half, 1f), "'half' [3, 4]", "bf16");
        sameError("copy between shapes", bad, be -> be.copy(a, b), "[3, 4]", "[4, 3]");
        sameError("convert to int32", bad, be -> be.convert(a, ops.poisoned("ints", DType.I32, 3, 4)), "'ints' [3, 4]", "int32");
        sameError("sum of a bf16 tensor", bad, be -> be.sum(half), "'half' [3, 4]", "bf16");
        sameError("dot of mismatched shapes", bad, be -> be.dot(a, b), "'a' [3, 4]", "'b' [4, 3]");
        sameError("max of nothing", bad, be -> be.max(ops.poisoned("empty", 0)), "'empty' [0]");

        sameError("softmax into another shape", bad, be -> be.softmax(a, b, false), "'a' [3, 4]", "'b' [4, 3]");
        sameError("causal softmax with S < T", bad, be -> be.softmax(b, ops.poisoned("o", 4, 3), true), "'b' [4, 3]");
        sameError("softmaxBackward of mismatched shapes", bad, be -> be.softmaxBackward(a, b, out), "'b' [4, 3]");
        Tensor w4 = ops.poisoned("w", 4), w5 = ops.poisoned("w5", 5), r3 = ops.poisoned("rstd", 3), r5 = ops.poisoned("rstd5", 5);
        sameError("causal softmax of rank 1", bad, be -> be.softmax(w4, ops.poisoned("o", 4), true), "'w' [4]");
        sameError("rmsNorm with a wrong weight", bad, be -> be.rmsNorm(a, w5, 1e-5f, out, r3), "'w5' [5]", "[4]");
        sameError("rmsNorm with a wrong rstd", bad, be -> be.rmsNorm(a, w4, 1e-5f, out, r5), "'rstd5' [5]", "[3]");
        sameError("rmsNormBackward with a wrong dweight", bad,
                be -> be.rmsNormBackward(a, w4, r3, out, ops.poisoned("dx", 3, 4), w5), "'w5' [5]", "[4]");
        sameError("rope with an odd head dimension", bad,
                be -> be.rope(ops.poisoned("odd", 3, 2, 5), ops.poisoned("c", 3, 2), ops.poisoned("s", 3, 2), false), "'odd' [3, 2, 5]");
        sameError("rope of rank 2", bad,
                be -> be.rope(ops.poisoned("flat", 3, 8), ops.poisoned("c", 3, 4), ops.poisoned("s", 3, 4), false), "'flat' [3, 8]");
        sameError("rope with wrong cos", bad,
                be -> be.rope(ops.poisoned("x", 3, 2, 8), ops.poisoned("cos", 3, 8), ops.poisoned("s", 3, 4), false), "'cos' [3, 8]", "[3, 4]");
        sameError("silu into another shape", bad, be -> be.silu(a, b), "'b' [4, 3]");
        sameError("siluBackward of mismatched shapes", bad, be -> be.siluBackward(a, b, out), "'b' [4, 3]");
        sameError("swiglu of mismatched shapes", bad, be -> be.swiglu(a, b, out), "'b' [4, 3]");
        sameError("swigluBackward of mismatched shapes", bad, be -> be.swigluBackward(a, a, a, out, b), "'b' [4, 3]");

        Tensor logits = ops.poisoned("logits", 2, 4);
        sameError("crossEntropy target >= V", bad, be -> be.crossEntropy(logits, ops.ids("t", new int[]{1, 4}), null, 1f),
                "target 4", "[0, 4)");
        sameError("crossEntropy with f32 targets", bad, be -> be.crossEntropy(logits, ops.poisoned("targets", 2), null, 1f),
                "'targets' [2]", "int32");
        sameError("crossEntropy with too many targets", bad,
                be -> be.crossEntropy(logits, ops.ids("t3", new int[]{1, 2, 3}), null, 1f), "'t3' [3]", "[2]");
        sameError("crossEntropy of rank 3", bad,
                be -> be.crossEntropy(ops.poisoned("l3", 1, 2, 4), ops.ids("t", new int[]{1, 2}), null, 1f), "'l3' [1, 2, 4]");
        sameError("crossEntropy with a wrong dlogits", bad,
                be -> be.crossEntropy(logits, ops.ids("t", new int[]{1, 2}), ops.poisoned("dl", 2, 5), 1f), "'dl' [2, 5]");

        Tensor table = ops.poisoned("table", 6, 5);
        for (int id : new int[]{-1, 6}) {
            sameError("embedding of id " + id, bad, be -> be.embedding(table, ops.ids("ids", new int[]{1, id}), ops.poisoned("o", 2, 5)),
                    "id " + id, "[0, 6)");
            sameError("embeddingBackward of id " + id, bad,
                    be -> be.embeddingBackward(ops.poisoned("g", 2, 5), ops.ids("ids", new int[]{id, 1}), ops.poisoned("dt", 6, 5)),
                    "id " + id, "[0, 6)");
        }
        sameError("embedding into a wrong shape", bad,
                be -> be.embedding(table, ops.ids("ids", new int[]{1, 2}), ops.poisoned("o3", 3, 5)), "'o3' [3, 5]", "[2, 5]");
        sameError("embedding of a rank-1 table", bad,
                be -> be.embedding(ops.poisoned("flat", 30), ops.ids("ids", new int[]{1}), ops.poisoned("o", 1, 5)), "'flat' [30]");
        sameError("adamw of mismatched shapes", bad,
                be -> be.adamw(a, out, b, out, new AdamWStep(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1)), "'b' [4, 3]");

        Tensor c = ops.poisoned("c", 3, 2);
        sameError("matmul with mismatched inner extents", bad,
                be -> be.matmul(a, false, ops.poisoned("b52", 5, 2), false, c, 1, 0), "'a' [3, 4]", "'b52' [5, 2]", "'c' [3, 2]");
        sameError("matmul with C of the wrong shape", bad,
                be -> be.matmul(a, false, ops.poisoned("b42", 4, 2), false, ops.poisoned("c33", 3, 3), 1, 0), "'c33' [3, 3]");
        sameError("matmul of mixed ranks", bad,
                be -> be.matmul(a, false, ops.poisoned("b3", 1, 4, 2), false, c, 1, 0), "'b3' [1, 4, 2]");
        sameError("matmul of a bf16 matrix", bad, be -> be.matmul(half, true, a, false, ops.poisoned("c44", 4, 4), 1, 0), "'half' [3, 4]", "bf16");
        sameError("matmul with a non-unit column stride", bad,
                be -> be.matmul(ops.poisoned("a33", 3, 3), false, b.transpose(0, 1), false, c.slice(1, 0, 1), 1, 0),
                "'b' [3, 4]", "unit stride");
        Tensor square = ops.poisoned("square", 4, 4);
        sameError("matmul with C aliasing A", bad,
                be -> be.matmul(square.slice(0, 0, 2), false, ops.poisoned("b42", 4, 2), false, square.slice(0, 2, 4).slice(1, 0, 2), 1, 0),
                "alias");

        Class<IllegalStateException> closed = IllegalStateException.class;
        Tensor gone = ops.closed("gone", 3, 4);
        sameError("silu after close", closed, be -> be.silu(gone, out), "'gone' [3, 4]", "after close");
        sameError("add after close", closed, be -> be.add(a, gone, out), "'gone' [3, 4]", "after close");
        sameError("sum after close", closed, be -> be.sum(gone), "'gone' [3, 4]", "after close");
        sameError("matmul after close", closed, be -> be.matmul(a, true, gone, false, ops.poisoned("c44", 4, 4), 1, 0),
                "'gone' [3, 4]", "after close");
        sameError("embedding after close", closed, be -> be.embedding(gone, ops.ids("ids", new int[]{0}), ops.poisoned("o", 1, 4)),
                "'gone' [3, 4]", "after close");
        ops.release("argument errors");
    }
}
