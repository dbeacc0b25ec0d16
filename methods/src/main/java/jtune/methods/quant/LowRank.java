package jtune.methods.quant;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The best rank-r approximation {@code E ≈ Û V̂} of a (rows, cols) matrix in the Frobenius norm (Eckart–Young), split
 * as LoRC does (ZeroQuant-V2, reference §4): with {@code E = U Σ Vᵀ}, {@code Û = U_r Σ_r^½} (rows, r) and
 * {@code V̂ = Σ_r^½ V_rᵀ} (r, cols), row-major f32; {@code sigma} holds σ_1 ≥ … ≥ σ_r.
 *
 * <p>Computed in f64 by a randomized range finder with subspace iteration (Halko, Martinsson and Tropp 2011): a
 * Gaussian sketch of {@code k = min(2r + 10, rows, cols)} columns, re-orthonormalized after every product with E or
 * Eᵀ, iterated until the leading r singular values of the projection stop changing (relative 1e-13); the projected
 * k × cols matrix then gets an exact SVD by one-sided Jacobi rotations. When k reaches min(rows, cols) no sketch is
 * needed and the decomposition is exact.
 */
public record LowRank(int rows, int cols, int rank, float[] u, float[] v, double[] sigma) {
    private static final int MAX_ITERATIONS = 200;
    private static final double CONVERGED = 1e-13;
    private static final int MAX_SWEEPS = 80;

    /** Rank-{@code rank} factors of the row-major (rows, cols) matrix e; the sketch draws from {@code seed}. */
    public static LowRank of(float[] e, int rows, int cols, int rank, long seed) {
        if (e.length != rows * cols || rank < 0) {
            throw new IllegalArgumentException("low-rank factors: a " + rows + "x" + cols + " matrix needs " + rows * cols
                    + " values and a rank ≥ 0, not " + e.length + " values and rank " + rank);
        }
        int p = Math.min(rows, cols), r = Math.min(rank, p), k = Math.min(p, 2 * r + 10);
        double[] q;
        if (r == 0) {
            return new LowRank(rows, cols, 0, new float[0], new float[0], new double[0]);
        } else if (k == p && rows <= cols) {
            q = identity(rows);
        } else {
            double[] omega = k == p ? identity(cols) : gaussian(cols, k, seed);
            q = times(e, rows, cols, omega, k);
            orthonormalize(q, rows, k);
        }
        Svd small = Svd.of(transposeTimes(e, rows, cols, q, k), cols, k);
        if (k < p) {
            for (int it = 0; it < MAX_ITERATIONS; it++) {
                double[] z = transposeTimes(e, rows, cols, q, k);
                orthonormalize(z, cols, k);
                q = times(e, rows, cols, z, k);
                orthonormalize(q, rows, k);
                Svd next = Svd.of(transposeTimes(e, rows, cols, q, k), cols, k);
                boolean done = converged(small.sigma, next.sigma, r);
                small = next;
                if (done) {
                    break;
                }
            }
        }
        float[] uHat = new float[rows * r], vHat = new float[r * cols];
        for (int c = 0; c < r; c++) {
            double root = Math.sqrt(small.sigma[c]);
            for (int i = 0; i < rows; i++) {
                double s = 0;
                for (int a = 0; a < k; a++) {
                    s += q[i * k + a] * small.left[a * k + c];
                }
                uHat[i * r + c] = (float) (s * root);
            }
            for (int j = 0; j < cols; j++) {
                vHat[c * cols + j] = (float) (root * small.right[c][j]);
            }
        }
        return new LowRank(rows, cols, r, uHat, vHat, Arrays.copyOf(small.sigma, r));
    }

    /** {@code Û V̂}, (rows, cols) row-major. */
    public double[] product() {
        return product(u, v, rows, cols, rank);
    }

    /** {@code u v} in f64 for u (rows, r) and v (r, cols), row-major. */
    static double[] product(float[] u, float[] v, int rows, int cols, int r) {
        double[] out = new double[rows * cols];
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < r; c++) {
                double a = u[i * r + c];
                for (int j = 0; j < cols; j++) {
                    out[i * cols + j] += a * v[c * cols + j];
                }
            }
        }
        return out;
    }

    private static boolean converged(double[] before, double[] after, int r) {
        for (int c = 0; c < r; c++) {
            if (Math.abs(after[c] - before[c]) > CONVERGED * after[0]) {
                return false;
            }
        }
        return true;
    }

    private static double[] identity(int n) {
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++) {
            a[i * n + i] = 1;
        }
        return a;
    }

    private static double[] gaussian(int n, int k, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double[] a = new double[n * k];
        for (int i = 0; i < a.length; i++) {
            a[i] = rng.nextGaussian();
        }
        return a;
    }

    /** {@code E · B}: E (rows, cols) f32, B (cols, k) → (rows, k). */
    private static double[] times(float[] e, int rows, int cols, double[] b, int k) {
        double[] out = new double[rows * k];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                double a = e[i * cols + j];
                if (a != 0) {
                    for (int c = 0; c < k; c++) {
                        out[i * k + c] += a * b[j * k + c];
                    }
                }
            }
        }
        return out;
    }

    /** {@code Eᵀ · B}: E (rows, cols) f32, B (rows, k) → (cols, k). */
    private static double[] transposeTimes(float[] e, int rows, int cols, double[] b, int k) {
        double[] out = new double[cols * k];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                double a = e[i * cols + j];
                if (a != 0) {
                    for (int c = 0; c < k; c++) {
                        out[j * k + c] += a * b[i * k + c];
                    }
                }
            }
        }
        return out;
    }

    /**
     * Orthonormalizes the k columns of the row-major (n, k) matrix a in place by Gram–Schmidt, run twice per column
     * for accuracy; a column that is (numerically) in the span of the earlier ones becomes zero.
     */
    private static void orthonormalize(double[] a, int n, int k) {
        for (int c = 0; c < k; c++) {
            double before = norm(a, n, k, c);
            for (int pass = 0; pass < 2; pass++) {
                for (int d = 0; d < c; d++) {
                    double dot = 0;
                    for (int i = 0; i < n; i++) {
                        dot += a[i * k + d] * a[i * k + c];
                    }
                    for (int i = 0; i < n; i++) {
                        a[i * k + c] -= dot * a[i * k + d];
                    }
                }
            }
            double after = norm(a, n, k, c);
            double scale = after > 1e-12 * before && after > 0 ? 1 / after : 0;
            for (int i = 0; i < n; i++) {
                a[i * k + c] *= scale;
            }
        }
    }

    private static double norm(double[] a, int n, int k, int c) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += a[i * k + c] * a[i * k + c];
        }
        return Math.sqrt(s);
    }

    /**
     * The SVD {@code B = L Σ Rᵀ} of a small k × n matrix given as {@code A = Bᵀ} (n, k) row-major, by one-sided
     * Jacobi rotations on the columns of A ({@code A·L = R Σ}): {@code left} (k, k) row-major, columns in order of
     * {@code sigma} descending; {@code right[c]} the unit right singular vector c (n), zero when σ_c = 0.
     */
    private record Svd(double[] left, double[][] right, double[] sigma) {
        static Svd of(double[] a, int n, int k) {
            double[][] col = new double[k][n], vec = new double[k][k];
            for (int c = 0; c < k; c++) {
                for (int i = 0; i < n; i++) {
                    col[c][i] = a[i * k + c];
                }
                vec[c][c] = 1;
            }
            for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
                boolean rotated = false;
                for (int i = 0; i < k - 1; i++) {
                    for (int j = i + 1; j < k; j++) {
                        double alpha = dot(col[i], col[i]), beta = dot(col[j], col[j]), gamma = dot(col[i], col[j]);
                        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma == 0) {
                            continue;
                        }
                        rotated = true;
                        double zeta = (beta - alpha) / (2 * gamma);
                        double t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                        double cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
                        rotate(col[i], col[j], cs, sn);
                        rotate(vec[i], vec[j], cs, sn);
                    }
                }
                if (!rotated) {
                    break;
                }
            }
            Integer[] order = new Integer[k];
            double[] norms = new double[k];
            for (int c = 0; c < k; c++) {
                order[c] = c;
                norms[c] = Math.sqrt(dot(col[c], col[c]));
            }
            Arrays.sort(order, (x, y) -> Double.compare(norms[y], norms[x]));
            double[] left = new double[k * k], sigma = new double[k];
            double[][] right = new double[k][];
            for (int c = 0; c < k; c++) {
                int o = order[c];
                sigma[c] = norms[o];
                double inv = norms[o] > 0 ? 1 / norms[o] : 0;
                right[c] = new double[n];
                for (int i = 0; i < n; i++) {
                    right[c][i] = col[o][i] * inv;
                }
                for (int a2 = 0; a2 < k; a2++) {
                    left[a2 * k + c] = vec[o][a2];
                }
            }
            return new Svd(left, right, sigma);
        }

        private static double dot(double[] x, double[] y) {
            double s = 0;
            for (int i = 0; i < x.length; i++) {
                s += x[i] * y[i];
            }
            return s;
        }

        private static void rotate(double[] x, double[] y, double cs, double sn) {
            for (int i = 0; i < x.length; i++) {
                double a = x[i];
                x[i] = cs * a - sn * y[i];
                y[i] = sn * a + cs * y[i];
            }
        }
    }
}
