package jtune.engine.backend;

import jtune.engine.tensor.DType;
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
            String op = "matmul";
            for (Tensor t : new Tensor[]{a, b, c}) {
                if (t == null) {
                    throw new IllegalArgumentException(op + ": a required tensor is null");
                }
                t.segment();
                if (t.dtype() != DType.F32) {
                    throw new IllegalArgumentException(op + ": " + t + " must be f32, not " + t.dtype());
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
