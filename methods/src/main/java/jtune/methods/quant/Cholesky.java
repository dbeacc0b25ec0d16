package jtune.methods.quant;

import java.util.Arrays;

/**
 * Dense Cholesky factorizations in f64 on row-major n × n arrays, for GPTQ's inverse Hessian.
 *
 * <p>GPTQ needs the upper Cholesky factor U of H⁻¹ ({@code H⁻¹ = UᵀU}). With J the order-reversing permutation and
 * M the lower Cholesky factor of {@code JHJ}, {@code H = (JMJ)(JMJ)ᵀ} with JMJ upper triangular, so
 * {@code H⁻¹ = (JMJ)⁻ᵀ(JMJ)⁻¹} and {@code U = (JMJ)⁻¹ = J M⁻¹ J}: one factorization and one triangular inverse,
 * never forming H⁻¹. In row-major storage {@code JAJ} is the flat array reversed.
 */
final class Cholesky {
    private Cholesky() {
    }

    /**
     * The upper triangular U with positive diagonal such that {@code (H + λI)⁻¹ = UᵀU}, for a symmetric H; null when
     * {@code H + λI} is not (numerically) positive definite. H is not modified; U is the only n × n array made.
     */
    static double[] upperOfInverse(double[] h, int n, double lambda) {
        int size = n * n;
        double[] a = new double[size];
        for (int k = 0; k < size; k++) {
            a[k] = h[size - 1 - k];
        }
        for (int i = 0; i < n; i++) {
            a[i * n + i] += lambda;
        }
        if (!lowerInPlace(a, n)) {
            return null;
        }
        invertLowerInPlace(a, n);
        for (int k = 0, m = size - 1; k < m; k++, m--) {
            double t = a[k];
            a[k] = a[m];
            a[m] = t;
        }
        return a;
    }

    /**
     * Overwrites the lower triangle of the symmetric {@code a} with its lower Cholesky factor L ({@code a = LLᵀ})
     * and zeroes the upper triangle; false (a left partly overwritten) when a pivot is not positive.
     */
    static boolean lowerInPlace(double[] a, int n) {
        for (int i = 0; i < n; i++) {
            int ri = i * n;
            for (int j = 0; j <= i; j++) {
                int rj = j * n;
                double s = a[ri + j];
                for (int k = 0; k < j; k++) {
                    s -= a[ri + k] * a[rj + k];
                }
                if (i == j) {
                    if (!(s > 0)) {
                        return false;
                    }
                    a[ri + i] = Math.sqrt(s);
                } else {
                    a[ri + j] = s / a[rj + j];
                }
            }
            for (int j = i + 1; j < n; j++) {
                a[ri + j] = 0;
            }
        }
        return true;
    }

    /** Overwrites the lower triangular {@code l} (non-zero diagonal) with its inverse, row by row. */
    static void invertLowerInPlace(double[] l, int n) {
        double[] acc = new double[n];
        for (int i = 0; i < n; i++) {
            int ri = i * n;
            Arrays.fill(acc, 0, i, 0);
            for (int k = 0; k < i; k++) {
                double m = l[ri + k];
                if (m != 0) {
                    int rk = k * n;
                    for (int j = 0; j <= k; j++) {
                        acc[j] += m * l[rk + j];
                    }
                }
            }
            double inv = 1 / l[ri + i];
            for (int j = 0; j < i; j++) {
                l[ri + j] = -acc[j] * inv;
            }
            l[ri + i] = inv;
        }
    }
}
