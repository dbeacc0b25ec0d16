package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/**
 * Finite-difference gradient checks on the scalar backend: a session, seeded random tensors, and the derivative of a
 * scalar loss over chosen elements of a tensor by Richardson-extrapolated central differences.
 *
 * <p>Step and error: the scalar backend sums in double and rounds each op's result to f32 once, so a loss of order 1
 * carries rounding noise of a few 1e-7, which a step of 1e-2 turns into about 1e-5 in a difference quotient. A plain
 * central difference also errs by {@code h²/6 · |L'''|}, and that is not small everywhere: an RMSNorm over a 4-element
 * head (Qwen3's q/k norm) is sharply curved, and at h = 1e-2 it showed errors up to 1e-3. Richardson's
 * {@code (4·D(h/2) − D(h)) / 3} cancels the h² term; with h = 2e-2 the largest error seen over every check of the
 * layer tests was 2e-5 (noise and h⁴ terms together), so they allow {@code 1e-4 + 1e-3 · |fd|}. A wrong formula (a
 * missing term, a transposed product, a head read from the wrong group) moves gradients of order 1e-2 to 1.
 */
final class GradCheck implements AutoCloseable {
    static final double H = 2e-2;

    final MemoryPool pool = new MemoryPool(new MemoryLedger());
    final Session session = new Session(new ScalarBackend(), pool);
    final SplittableRandom rng;

    GradCheck(long seed) {
        rng = new SplittableRandom(seed);
    }

    Tensor f32(String name, long... dims) {
        return session.f32(name, Category.WORKSPACE, dims);
    }

    /** Uniform in [lo, hi). */
    Tensor random(String name, double lo, double hi, long... dims) {
        Tensor t = f32(name, dims);
        fill(t, lo, hi);
        return t;
    }

    void fill(Tensor t, double lo, double hi) {
        float[] v = new float[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        t.copyFrom(v);
    }

    Tensor ints(String name, int[] values, long... dims) {
        Tensor t = pool.allocate(name, DType.I32, Category.WORKSPACE, dims);
        for (int i = 0; i < values.length; i++) {
            t.reshape(t.size()).set(values[i], i);
        }
        return t;
    }

    /** Σ dy ⊙ y in double: the scalar loss whose gradient with respect to y is dy. */
    static double weighted(Tensor dy, Tensor y) {
        float[] a = dy.toFloatArray(), b = y.toFloatArray();
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    /**
     * The derivative of loss with respect to element i of x (x flattened) by Richardson's extrapolation of central
     * differences, {@code (4·D(h/2) − D(h)) / 3}, which cancels their h² error term; x is restored.
     */
    static double difference(Tensor x, int i, DoubleSupplier loss) {
        return (4 * central(x, i, H / 2, loss) - central(x, i, H, loss)) / 3;
    }

    /** {@code (L(x + h) − L(x − h)) / (2h)} over element i, divided by the step actually taken in f32. */
    private static double central(Tensor x, int i, double h, DoubleSupplier loss) {
        Tensor flat = x.reshape(x.size());
        float orig = flat.get(i);
        float plus = (float) (orig + h), minus = (float) (orig - h);
        flat.set(plus, i);
        double lp = loss.getAsDouble();
        flat.set(minus, i);
        double lm = loss.getAsDouble();
        flat.set(orig, i);
        return (lp - lm) / ((double) plus - minus);
    }

    /**
     * Checks {@code grad} (x's shape, flattened) against central differences at the indices {@code at} (all of x when
     * null): {@code |grad − fd| ≤ atol + rtol · |fd|}.
     */
    static void check(String what, Tensor x, float[] grad, int[] at, double atol, double rtol, DoubleSupplier loss) {
        int[] idx = at != null ? at : java.util.stream.IntStream.range(0, grad.length).toArray();
        for (int i : idx) {
            double fd = difference(x, i, loss);
            assertThat((double) grad[i]).as("%s[%d] against finite differences %s", what, i, fd)
                    .isCloseTo(fd, org.assertj.core.api.Assertions.within(atol + rtol * Math.abs(fd)));
        }
    }

    /** {@code k} distinct indices below {@code n} (all of them when k ≥ n). */
    int[] sample(long n, int k) {
        if (k >= n) {
            return java.util.stream.IntStream.range(0, (int) n).toArray();
        }
        return rng.ints(0, (int) n).distinct().limit(k).sorted().toArray();
    }

    @Override
    public void close() {
        pool.close();
    }
}
