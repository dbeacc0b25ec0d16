package jtune.cpu;

import static jtune.cpu.Gemm.KC;
import static jtune.cpu.Gemm.MR;
import static jtune.cpu.Gemm.NR;
import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;

/**
 * Packing of the operands of {@link Gemm} from their tensors (either layout) into the blocks its micro-kernel
 * reads. A straight layout is copied a vector at a time; a transposed one goes through L × L in-register
 * transposes (log2 L rounds of two-vector zips), about four times faster than element by element; partial blocks
 * at the edges go element by element.
 */
final class GemmPack {
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;
    /** Rounds of zips in an L × L transpose. */
    private static final int ROUNDS = Integer.numberOfTrailingZeros(L);
    /** Lane indexes of the two zips into (a, b): a0 b0 a1 b1 … from the low halves, then the same from the high. */
    private static final float[] ZIP_LO = new float[L], ZIP_HI = new float[L];

    static {
        for (int i = 0; i < L / 2; i++) {
            ZIP_LO[2 * i] = i;
            ZIP_LO[2 * i + 1] = L + i;
            ZIP_HI[2 * i] = L / 2 + i;
            ZIP_HI[2 * i + 1] = L + L / 2 + i;
        }
    }

    private GemmPack() {
    }

    /**
     * Rows [i0, i0 + mc) and columns [p0, p0 + kc) of op(A), row by row: {@code dst[i · KC + l]}; rows past mc up to
     * a whole MR strip are zero. op(A)(i, l) is {@code s[o + i·ld + l]}, or {@code s[o + l·ld + i]} if trans. x and
     * y are L × L scratch.
     */
    static void packA(MemorySegment s, long o, long ld, boolean trans, int i0, int mc, int p0, int kc, float[] dst,
                      float[] x, float[] y) {
        if (!trans) {
            for (int i = 0; i < mc; i++) {
                copy(s, o + (i0 + i) * ld + p0, kc, dst, i * KC);
            }
        } else {
            for (int i = 0; i < mc; i += L) {
                for (int l = 0; l < kc; l += L) {
                    long src = o + (p0 + l) * ld + i0 + i;
                    if (i + L <= mc && l + L <= kc) {
                        transpose(s, src, ld, dst, i * KC + l, KC, x, y);
                    } else {
                        transpose(s, src, ld, Math.min(L, kc - l), Math.min(L, mc - i), dst, i * KC + l, KC);
                    }
                }
            }
        }
        for (int i = mc; i < (mc + MR - 1) / MR * MR; i++) {
            Arrays.fill(dst, i * KC, i * KC + kc, 0f);
        }
    }

    /**
     * Rows [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) as NR-wide k-major micro-panels,
     * {@code dst[(j / NR) · kc · NR + l · NR + j % NR]}, zero past nc. op(B)(l, j) is {@code s[o + l·ld + j]}, or
     * {@code s[o + j·ld + l]} if trans. x and y are L × L scratch.
     */
    static void packB(MemorySegment s, long o, long ld, boolean trans, int p0, int kc, int j0, int nc, float[] dst,
                      float[] x, float[] y) {
        for (int jr = 0; jr < nc; jr += NR) {
            int n = Math.min(NR, nc - jr), d = jr * kc;
            if (!trans && n == NR) {
                for (int l = 0; l < kc; l++) {
                    long src = (o + (p0 + l) * ld + j0 + jr) * Float.BYTES;
                    for (int v = 0; v < NR; v += L) {
                        FloatVector.fromMemorySegment(F, s, src + v * Float.BYTES, ORDER)
                                .intoArray(dst, d + l * NR + v);
                    }
                }
                continue;
            }
            if (!trans) {
                for (int l = 0; l < kc; l++) {
                    long src = o + (p0 + l) * ld + j0 + jr;
                    for (int j = 0; j < n; j++) {
                        dst[d + l * NR + j] = s.getAtIndex(FLOAT, src + j);
                    }
                }
            } else {
                for (int j = 0; j < n; j += L) {
                    for (int l = 0; l < kc; l += L) {
                        long src = o + (j0 + jr + j) * ld + p0 + l;
                        if (j + L <= n && l + L <= kc) {
                            transpose(s, src, ld, dst, d + l * NR + j, NR, x, y);
                        } else {
                            transpose(s, src, ld, Math.min(L, n - j), Math.min(L, kc - l), dst, d + l * NR + j, NR);
                        }
                    }
                }
            }
            for (int l = 0; l < kc && n < NR; l++) {
                Arrays.fill(dst, d + l * NR + n, d + l * NR + NR, 0f);
            }
        }
    }

    /** {@code dst[d + i] = s[o + i]} for i &lt; n (o in elements). */
    private static void copy(MemorySegment s, long o, int n, float[] dst, int d) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromMemorySegment(F, s, (o + i) * Float.BYTES, ORDER).intoArray(dst, d + i);
        }
        for (; i < n; i++) {
            dst[d + i] = s.getAtIndex(FLOAT, o + i);
        }
    }

    /**
     * {@code dst[d + c·stride + r] = s[o + r·ld + c]} for r, c &lt; L: the first round zips source rows r and
     * r + L/2, each later round the rows of the one before (a round moves an element's row and lane bits one place
     * round, so log2 L rounds swap them), and the last writes rows of the transpose. x and y are L × L scratch.
     */
    private static void transpose(MemorySegment s, long o, long ld, float[] dst, int d, int stride, float[] x,
                                  float[] y) {
        FloatVector lo = FloatVector.fromArray(F, ZIP_LO, 0), hi = FloatVector.fromArray(F, ZIP_HI, 0);
        int h = L / 2;
        for (int i = 0; i < h; i++) {
            FloatVector a = FloatVector.fromMemorySegment(F, s, (o + i * ld) * Float.BYTES, ORDER);
            FloatVector b = FloatVector.fromMemorySegment(F, s, (o + (i + h) * ld) * Float.BYTES, ORDER);
            lo.selectFrom(a, b).intoArray(x, 2 * i * L);
            hi.selectFrom(a, b).intoArray(x, (2 * i + 1) * L);
        }
        for (int round = 2; round < ROUNDS; round++) {
            for (int i = 0; i < h; i++) {
                FloatVector a = FloatVector.fromArray(F, x, i * L), b = FloatVector.fromArray(F, x, (i + h) * L);
                lo.selectFrom(a, b).intoArray(y, 2 * i * L);
                hi.selectFrom(a, b).intoArray(y, (2 * i + 1) * L);
            }
            float[] t = x;
            x = y;
            y = t;
        }
        for (int i = 0; i < h; i++) {
            FloatVector a = FloatVector.fromArray(F, x, i * L), b = FloatVector.fromArray(F, x, (i + h) * L);
            lo.selectFrom(a, b).intoArray(dst, d + 2 * i * stride);
            hi.selectFrom(a, b).intoArray(dst, d + (2 * i + 1) * stride);
        }
    }

    /** {@code dst[d + c·stride + r] = s[o + r·ld + c]} for r &lt; rows, c &lt; cols, element by element. */
    private static void transpose(MemorySegment s, long o, long ld, int rows, int cols, float[] dst, int d,
                                  int stride) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                dst[d + c * stride + r] = s.getAtIndex(FLOAT, o + r * ld + c);
            }
        }
    }
}
