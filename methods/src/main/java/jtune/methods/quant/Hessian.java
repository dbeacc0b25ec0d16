package jtune.methods.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * GPTQ's layer Hessian {@code H = (2/N) Σ_t x_t x_tᵀ} over the N calibration inputs x_t (rows of the layer's input,
 * one per token) seen so far: the Hessian of the output error {@code Σ_t ‖(W − Ŵ) x_t‖²} per row of W, averaged
 * over tokens (GPTQ averages over sequences; the scale only matters against absolute damping, and GPTQ's damping is
 * relative). Sums are kept in f64.
 */
public final class Hessian {
    private final int n;
    private final double[] sum;
    private long tokens;

    /** An empty accumulator for inputs of {@code n} features. */
    public Hessian(int n) {
        this.n = n;
        this.sum = new double[n * n];
    }

    public int features() {
        return n;
    }

    /** Inputs added so far. */
    public long tokens() {
        return tokens;
    }

    /** Adds the rows of x (N, n) f32: {@code Σ += xᵀx}, computed by the session's backend in f32 per call. */
    public void add(Session s, Tensor x) {
        if (x.rank() != 2 || x.dim(1) != n) {
            throw new IllegalArgumentException("Hessian of " + n + " features: the inputs must be (N, " + n + "), got "
                    + x);
        }
        try (Tensor g = s.f32("gptq.xtx", Category.WORKSPACE, n, n)) {
            s.backend().matmul(x, true, x, false, g, 1f, 0f);
            float[] v = new float[n * n];
            MemorySegment.copy(g.segment(), ValueLayout.JAVA_FLOAT, g.byteOffset(), v, 0, v.length);
            for (int i = 0; i < v.length; i++) {
                sum[i] += v[i];
            }
        }
        tokens += x.dim(0);
    }

    /** Adds {@code count} inputs given as the rows of the row-major (count, n) array x, in f64. */
    public void add(float[] x, int count) {
        if (x.length != count * n) {
            throw new IllegalArgumentException("Hessian of " + n + " features: " + count + " inputs need "
                    + count * n + " values, got " + x.length);
        }
        for (int t = 0; t < count; t++) {
            for (int i = 0; i < n; i++) {
                double xi = x[t * n + i];
                if (xi != 0) {
                    for (int j = 0; j < n; j++) {
                        sum[i * n + j] += xi * x[t * n + j];
                    }
                }
            }
        }
        tokens += count;
    }

    /** {@code H = (2/N) Σ x xᵀ}, (n, n) row-major; zero when nothing was added. */
    public double[] matrix() {
        double[] h = new double[n * n];
        if (tokens > 0) {
            double f = 2.0 / tokens;
            for (int i = 0; i < h.length; i++) {
                h[i] = f * sum[i];
            }
        }
        return h;
    }

    /**
     * GPTQ's output-error proxy {@code tr(E H Eᵀ) = Σ_i e_iᵀ H e_i} for the error {@code E = W − Ŵ} of a (rows,
     * cols) row-major weight, with the (cols, cols) Hessian h.
     */
    public static double outputError(float[] w, float[] wq, int rows, int cols, double[] h) {
        double total = 0;
        double[] e = new double[cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                e[j] = (double) w[i * cols + j] - wq[i * cols + j];
            }
            for (int j = 0; j < cols; j++) {
                double hj = 0;
                for (int k = 0; k < cols; k++) {
                    hj += h[j * cols + k] * e[k];
                }
                total += e[j] * hj;
            }
        }
        return total;
    }
}
