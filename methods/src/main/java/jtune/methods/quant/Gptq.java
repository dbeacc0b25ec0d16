package jtune.methods.quant;

import java.util.Arrays;
import java.util.stream.IntStream;
import jtune.engine.tensor.QuantFormat;

/**
 * GPTQ (Frantar et al. 2023; reference §8.2): quantizes a linear layer's weight W (rows = out, cols = in) column by
 * column onto an integer grid, after each column spreading its rounding error over the columns not yet quantized so
 * as to minimise the output error {@code tr((W − Ŵ) H (W − Ŵ)ᵀ)}, with H the layer's input Hessian
 * ({@link Hessian}).
 *
 * <p>Steps, in f64: a dead input ({@code H_jj = 0}) gets {@code H_jj = 1} and a zero weight column; with act-order
 * the columns are visited by descending {@code diag(H)}; {@code H += λI} with {@code λ = percdamp · mean(diag H)}
 * (a failed factorization retries with percdamp 0.1, then 1); U is the upper Cholesky factor of H⁻¹. For each
 * column i: {@code q = quant(w_i)}, {@code err = (w_i − q) / U_ii}, and the later columns take {@code −err · U[i, ·]};
 * in lazy blocks of {@code blockSize} columns, the columns past a block receive the block's errors at once.
 * Rows are independent and run in parallel.
 *
 * <p>Grids ({@link IntGrid}, min-max): per channel, one per row from the original weights (as GPTQ); with groups
 * and no act-order, each group's grid is computed when its first column comes up, from the group's weights as
 * updated by every column quantized so far (the errors still pending in a lazy block are applied first, so the
 * result does not depend on the block size); with groups and act-order, every group's grid is computed up front
 * from the original weights (GPTQ's static groups), so the groups stay contiguous in the original column order
 * and the packed format needs no column permutation.
 */
public final class Gptq {
    /** Damping levels tried, in order, after the requested one fails (those above it). */
    private static final double[] DAMP_RETRIES = {0.1, 1.0};
    /** Rows one task handles together, so that each row of U is read once per tile. */
    private static final int ROW_TILE = 16;

    /**
     * @param format    INT format: bits, group size (0: per channel), symmetric, scale type
     * @param actOrder  visit the columns by descending diag(H)
     * @param percdamp  damping as a fraction of the mean diagonal of H (GPTQ: 0.01)
     * @param blockSize columns per lazy block (GPTQ: 128); the result does not depend on it beyond rounding
     */
    public record Options(QuantFormat format, boolean actOrder, double percdamp, int blockSize) {
        public Options {
            if (format.kind() != QuantFormat.Kind.INT) {
                throw new IllegalArgumentException("GPTQ quantizes to integer formats, not " + format);
            }
            if (!(percdamp >= 0) || blockSize < 1) {
                throw new IllegalArgumentException("GPTQ needs a damping ≥ 0 and a block size ≥ 1, not " + percdamp
                        + " and " + blockSize);
            }
        }

        /** GPTQ's defaults: percdamp 0.01, blocks of 128 columns. */
        public static Options of(QuantFormat format, boolean actOrder) {
            return new Options(format, actOrder, 0.01, 128);
        }
    }

    /**
     * @param quantization the codes and grids
     * @param loss         GPTQ's error estimate {@code Σ (w − q)² / U_ii² / 2} over all elements
     * @param percdamp     the damping that was used (the requested one unless the factorization had to retry)
     */
    public record Result(IntQuantization quantization, double loss, double percdamp) {
    }

    private Gptq() {
    }

    /**
     * Quantizes the (rows, cols) row-major matrix {@code w} given the (cols, cols) row-major Hessian {@code h} of its
     * inputs; neither is modified.
     */
    public static Result quantize(float[] w, int rows, int cols, double[] h, Options o) {
        if (w.length != rows * cols || h.length != cols * cols) {
            throw new IllegalArgumentException("GPTQ: a " + rows + "x" + cols + " weight needs " + rows * cols
                    + " weights and a " + cols + "x" + cols + " Hessian, but " + w.length + " weights and " + h.length
                    + " Hessian entries were given");
        }
        QuantFormat f = o.format();
        boolean[] dead = new boolean[cols];
        double[] hd = h;
        double meanDiag = 0;
        for (int j = 0; j < cols; j++) {
            if (h[j * cols + j] == 0) {
                if (hd == h) {
                    hd = h.clone();
                }
                dead[j] = true;
                hd[j * cols + j] = 1;
            }
            meanDiag += hd[j * cols + j] / cols;
        }
        int[] perm = order(hd, cols, o.actOrder());
        double[] hp = hd;
        if (o.actOrder()) {
            hp = new double[cols * cols];
            for (int a = 0; a < cols; a++) {
                for (int b = 0; b < cols; b++) {
                    hp[a * cols + b] = hd[perm[a] * cols + perm[b]];
                }
            }
        }
        double percdamp = o.percdamp();
        double[] u = Cholesky.upperOfInverse(hp, cols, percdamp * meanDiag);
        for (int k = 0; u == null && k < DAMP_RETRIES.length; k++) {
            if (DAMP_RETRIES[k] > percdamp) {
                percdamp = DAMP_RETRIES[k];
                u = Cholesky.upperOfInverse(hp, cols, percdamp * meanDiag);
            }
        }
        if (u == null) {
            throw new IllegalArgumentException("GPTQ: the " + cols + "x" + cols + " input Hessian is not positive"
                    + " definite even when damped by 1x its mean diagonal; it must be finite (check the calibration"
                    + " activations for NaN or infinity)");
        }
        int groups = f.groups(cols);
        byte[] codes = new byte[rows * cols];
        float[] scales = new float[rows * groups], zeros = new float[rows * groups];
        double[] losses = new double[rows];
        double[] upper = u;
        IntStream.range(0, Math.ceilDiv(rows, ROW_TILE)).parallel().forEach(t -> {
            int r0 = t * ROW_TILE, r1 = Math.min(rows, r0 + ROW_TILE);
            new Tile(w, cols, upper, perm, dead, o, r0, r1).run(codes, scales, zeros, losses);
        });
        return new Result(new IntQuantization(f, rows, cols, codes, scales, zeros), Arrays.stream(losses).sum(),
                percdamp);
    }

    /** The visiting order: identity, or by descending diagonal (ties by index). */
    private static int[] order(double[] h, int n, boolean actOrder) {
        Integer[] idx = new Integer[n];
        for (int j = 0; j < n; j++) {
            idx[j] = j;
        }
        if (actOrder) {
            Arrays.sort(idx, (a, b) -> Double.compare(h[b * n + b], h[a * n + a]));
        }
        return Arrays.stream(idx).mapToInt(Integer::intValue).toArray();
    }

    /** The quantization of rows [r0, r1), in the permuted column order. */
    private static final class Tile {
        private final int cols;
        private final double[] u;
        private final int[] perm;
        private final Options o;
        private final int r0, r1;
        private final double[][] x;
        private final IntGrid[][] staticGrids;

        Tile(float[] w, int cols, double[] u, int[] perm, boolean[] dead, Options o, int r0, int r1) {
            this.cols = cols;
            this.u = u;
            this.perm = perm;
            this.o = o;
            this.r0 = r0;
            this.r1 = r1;
            QuantFormat f = o.format();
            boolean bf16 = IntQuantization.bf16(f);
            x = new double[r1 - r0][cols];
            staticGrids = new IntGrid[r1 - r0][];
            for (int r = r0; r < r1; r++) {
                float[] row = Arrays.copyOfRange(w, r * cols, (r + 1) * cols);
                if (f.groupSize() == 0) {
                    staticGrids[r - r0] = new IntGrid[]{IntGrid.fit(row, 0, cols, f.bits(), f.symmetric(), bf16)};
                }
                for (int j = 0; j < cols; j++) {
                    if (dead[j]) {
                        row[j] = 0f;
                    }
                }
                if (f.groupSize() != 0 && o.actOrder()) {
                    int width = f.groupWidth(cols);
                    IntGrid[] g = new IntGrid[f.groups(cols)];
                    for (int k = 0; k < g.length; k++) {
                        g[k] = IntGrid.fit(row, k * width, Math.min(cols, (k + 1) * width), f.bits(), f.symmetric(), bf16);
                    }
                    staticGrids[r - r0] = g;
                }
                for (int c = 0; c < cols; c++) {
                    x[r - r0][c] = row[perm[c]];
                }
            }
        }

        void run(byte[] codes, float[] scales, float[] zeros, double[] losses) {
            QuantFormat f = o.format();
            int width = f.groupWidth(cols), groups = f.groups(cols), block = o.blockSize();
            boolean dynamic = f.groupSize() != 0 && !o.actOrder();
            int tile = r1 - r0;
            double[][] err = new double[tile][block];
            IntGrid[] current = new IntGrid[tile];
            for (int i1 = 0; i1 < cols; i1 += block) {
                int i2 = Math.min(cols, i1 + block);
                for (int t = 0; t < tile; t++) {
                    double[] xr = x[t];
                    int r = r0 + t;
                    for (int i = i1; i < i2; i++) {
                        int j = perm[i];
                        IntGrid grid;
                        if (dynamic) {
                            if (i % width == 0) {
                                current[t] = dynamicGrid(xr, err[t], i1, i2, i, Math.min(cols, i + width));
                                scales[r * groups + i / width] = current[t].scale();
                                zeros[r * groups + i / width] = current[t].zero();
                            }
                            grid = current[t];
                        } else {
                            grid = staticGrids[t][j / width];
                        }
                        int q = grid.code((float) xr[i]);
                        codes[r * cols + j] = (byte) q;
                        double d = u[i * cols + i], diff = xr[i] - grid.value(q), e = diff / d;
                        losses[r] += diff * diff / (d * d) / 2;
                        for (int c = i + 1; c < i2; c++) {
                            xr[c] -= e * u[i * cols + c];
                        }
                        err[t][i - i1] = e;
                    }
                }
                for (int k = i1; k < i2; k++) {
                    int uk = k * cols;
                    for (int t = 0; t < tile; t++) {
                        double e = err[t][k - i1];
                        double[] xr = x[t];
                        for (int c = i2; c < cols; c++) {
                            xr[c] -= e * u[uk + c];
                        }
                    }
                }
            }
            if (!dynamic) {
                for (int t = 0; t < tile; t++) {
                    IntGrid[] g = staticGrids[t];
                    for (int k = 0; k < groups; k++) {
                        scales[(r0 + t) * groups + k] = g[k].scale();
                        zeros[(r0 + t) * groups + k] = g[k].zero();
                    }
                }
            }
        }

        /**
         * The min-max grid of columns [from, to) of a row as fully updated so far: columns past the lazy block
         * [i1, i2) still lack the updates of the block's columns [i1, from), which are applied here to a copy.
         */
        private IntGrid dynamicGrid(double[] xr, double[] err, int i1, int i2, int from, int to) {
            float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
            for (int c = from; c < to; c++) {
                double v = xr[c];
                if (c >= i2) {
                    for (int k = i1; k < from; k++) {
                        v -= err[k - i1] * u[k * cols + c];
                    }
                }
                min = Math.min(min, (float) v);
                max = Math.max(max, (float) v);
            }
            QuantFormat f = o.format();
            return IntGrid.fit(min, max, f.bits(), f.symmetric(), IntQuantization.bf16(f));
        }
    }
}
