package jtune.engine.backend;

import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Shape;
import jtune.engine.tensor.Tensor;

/**
 * The argument checks every backend makes before it touches memory, so that all of them fail the same
 * way, with one sentence naming the tensors, their shapes and what would be valid.
 */
public final class Checks {
    private Checks() {
    }

    /** Fails unless t is open, f32 and contiguous. */
    public static void f32(String op, Tensor t) {
        typed(op, t, DType.F32);
    }

    /** Fails unless t is open, of type {@code type} and contiguous. */
    public static void typed(String op, Tensor t, DType type) {
        if (t == null) {
            throw new IllegalArgumentException(op + ": a required tensor is null");
        }
        t.segment();
        if (t.dtype() != type) {
            throw new IllegalArgumentException(op + ": " + t + " must be " + type + ", not " + t.dtype());
        }
        if (!t.isContiguous()) {
            throw new IllegalArgumentException(op + ": " + t + " must be contiguous, but it is a strided view");
        }
    }

    /** Fails unless all tensors are f32, contiguous and of the same shape as the first. */
    public static void sameF32(String op, Tensor... ts) {
        for (Tensor t : ts) {
            f32(op, t);
        }
        Shape s = ts[0].shape();
        for (Tensor t : ts) {
            if (!t.shape().equals(s)) {
                throw new IllegalArgumentException(op + ": shapes differ: " + describe(ts) + "; they must be equal");
            }
        }
    }

    /** Fails unless {@code t} has exactly shape {@code dims}. */
    public static void shape(String op, Tensor t, long... dims) {
        if (!t.shape().equals(Shape.of(dims))) {
            throw new IllegalArgumentException(op + ": " + t + " must have shape " + Shape.of(dims));
        }
    }

    /** Fails unless {@code t} has rank {@code rank}; {@code layout} names its dimensions, e.g. "(V, D)". */
    public static void rank(String op, Tensor t, int rank, String layout) {
        if (t.rank() != rank) {
            throw new IllegalArgumentException(op + ": " + t + " must be " + layout + ", rank " + rank);
        }
    }

    /** Fails unless w is given and open. */
    public static void quantized(String op, QuantizedMatrix w) {
        if (w == null) {
            throw new IllegalArgumentException(op + ": the quantized matrix is null");
        }
        if (w.isClosed()) {
            throw new IllegalStateException(op + ": " + w + " is used after close");
        }
    }

    /**
     * The checks of {@link Backend#quantMatmul} ({@code transposed}: in (N, cols), out (N, rows)) and of
     * {@link Backend#quantMatmulInputGrad} (in (N, rows), out (N, cols)): f32, contiguous, rank 2, the same N, out
     * not sharing storage with in. Returns N.
     */
    public static int quantProduct(String op, Tensor in, QuantizedMatrix w, Tensor out, boolean transposed) {
        quantized(op, w);
        f32(op, in);
        f32(op, out);
        long inCols = transposed ? w.cols() : w.rows(), outCols = transposed ? w.rows() : w.cols();
        if (in.rank() != 2 || out.rank() != 2 || in.dim(1) != inCols || out.dim(1) != outCols
                || in.dim(0) != out.dim(0)) {
            String form = transposed ? "x · dequant(W)ᵀ" : "dy · dequant(W)";
            throw new IllegalArgumentException(op + ": " + form + " does not fit: " + describe(in, out) + " with " + w
                    + "; they must be (N, " + inCols + ") and (N, " + outCols + ")");
        }
        if (in.segment().equals(out.segment())) {
            throw new IllegalArgumentException(op + ": " + describe(out) + " shares storage with " + describe(in)
                    + "; the output must not alias the input");
        }
        return Math.toIntExact(in.dim(0));
    }

    /** The checks of {@link Backend#dequantize}: out f32, contiguous, (rows, cols). */
    public static void dequantize(String op, QuantizedMatrix w, Tensor out) {
        quantized(op, w);
        f32(op, out);
        shape(op, out, w.rows(), w.cols());
    }

    /**
     * The checks of {@link Backend#quantScaleGrad}: an integer format, x (N, cols), dy (N, rows) and dScales
     * (rows, groups), all f32 and contiguous. Returns N.
     */
    public static int quantScaleGrad(String op, Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales) {
        quantized(op, w);
        if (w.format().kind() != QuantFormat.Kind.INT) {
            throw new IllegalArgumentException(op + ": " + w + " has no integer scales to differentiate; only integer"
                    + " formats have them");
        }
        f32(op, x);
        f32(op, dy);
        f32(op, dScales);
        if (x.rank() != 2 || dy.rank() != 2 || x.dim(1) != w.cols() || dy.dim(1) != w.rows() || x.dim(0) != dy.dim(0)) {
            throw new IllegalArgumentException(op + ": " + describe(x, dy) + " do not fit " + w + "; they must be (N, "
                    + w.cols() + ") and (N, " + w.rows() + ")");
        }
        shape(op, dScales, w.rows(), w.groups());
        return Math.toIntExact(x.dim(0));
    }

    public static String describe(Tensor... ts) {
        StringBuilder sb = new StringBuilder();
        for (Tensor t : ts) {
            if (!sb.isEmpty()) {
                sb.append(", ");
            }
            sb.append('\'').append(t.name()).append("' ").append(t.shape());
        }
        return sb.toString();
    }

    /**
     * The geometry of one {@link Backend#matmul} call, checked: batch count, M, N, K, and for each operand its
     * batch stride and row stride in elements (its column stride is 1).
     */
    public record Gemm(int batch, int m, int n, int k,
                       long strideA, long ldA, long strideB, long ldB, long strideC, long ldC) {

        public static Gemm of(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c) {
            return of(a, transA, b, transB, c, DType.F32);
        }

        /**
         * As {@link #of(Tensor, boolean, Tensor, boolean, Tensor)} with A and B of type {@code inputs}: f32, or bf16
         * on a backend that multiplies bf16 (C stays f32).
         */
        public static Gemm of(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, DType inputs) {
            String op = "matmul";
            for (Tensor t : new Tensor[]{a, b, c}) {
                if (t == null) {
                    throw new IllegalArgumentException(op + ": a required tensor is null");
                }
                t.segment();
                DType want = t == c ? DType.F32 : inputs;
                if (t.dtype() != want) {
                    throw new IllegalArgumentException(op + ": " + t + " must be " + want + ", not " + t.dtype());
                }
                if (t.rank() != 2 && t.rank() != 3) {
                    throw new IllegalArgumentException(op + ": " + t + " must have rank 2 or 3");
                }
                if (t.stride(-1) != 1 && t.dim(-1) > 1) {
                    throw new IllegalArgumentException(op + ": " + t + " must have unit stride in its last dimension");
                }
            }
            if (a.rank() != c.rank() || b.rank() != c.rank()) {
                throw new IllegalArgumentException(op + ": ranks differ: " + describe(a, b, c) + "; use all rank 2 or all rank 3");
            }
            int r = c.rank();
            long batch = r == 3 ? c.dim(0) : 1;
            if (r == 3 && (a.dim(0) != batch || b.dim(0) != batch)) {
                throw new IllegalArgumentException(op + ": batch sizes differ: " + describe(a, b, c));
            }
            long m = transA ? a.dim(-1) : a.dim(-2);
            long ka = transA ? a.dim(-2) : a.dim(-1);
            long kb = transB ? b.dim(-1) : b.dim(-2);
            long n = transB ? b.dim(-2) : b.dim(-1);
            if (ka != kb || c.dim(-2) != m || c.dim(-1) != n) {
                throw new IllegalArgumentException(op + ": " + (transA ? "Aᵀ" : "A") + "·" + (transB ? "Bᵀ" : "B")
                        + " does not fit: " + describe(a, b, c) + " gives (" + m + ", " + ka + ")·(" + kb + ", " + n
                        + ") into (" + c.dim(-2) + ", " + c.dim(-1) + "); inner extents must agree and C must be (M, N)");
            }
            if (c.segment().equals(a.segment()) || c.segment().equals(b.segment())) {
                throw new IllegalArgumentException(op + ": C " + describe(c) + " shares storage with an input; C must not alias A or B");
            }
            long sA = r == 3 ? a.stride(0) : 0;
            long sB = r == 3 ? b.stride(0) : 0;
            long sC = r == 3 ? c.stride(0) : 0;
            return new Gemm(Math.toIntExact(batch), Math.toIntExact(m), Math.toIntExact(n), Math.toIntExact(ka),
                    sA, a.stride(-2), sB, b.stride(-2), sC, c.stride(-2));
        }

        /** Floating-point operations of the product: 2·batch·M·N·K. */
        public double flops() {
            return 2.0 * batch * m * n * k;
        }
    }
}
