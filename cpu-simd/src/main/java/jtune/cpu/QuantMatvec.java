package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.I;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.laneSum;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.IntConsumer;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;
import jtune.engine.tensor.Nf4;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * The forward product with quantized weights for a few rows of x (decoding): {@code y = alpha · x · dequant(W)ᵀ +
 * beta · y}, streaming the codes of W once.
 *
 * <p>Layout: an L-lane int vector of codes holds 32 / bits codes per lane (3 bits: one 24-bit run of 8 per lane,
 * spread out by a byte shuffle); masking lane-wise yields L codes that lie 32 / bits elements apart, so x is permuted
 * once per call to match ({@link #permute}). Integer codes are masked in place rather than shifted down: q ·
 * 2^(bits·s) is exact in f32, and the permutation scales x by 2^-(bits·s) to cancel it (the top code of a lane is
 * shifted, which needs no mask). That leaves an AND, a convert and an FMA per vector of codes, and the kernel is
 * compute-bound: about 26 GB/s of 4-bit codes on one core of this machine with the codes in L2. The sums against x
 * are scaled per group (a broadcast, or a lane shuffle of the group scales when a vector spans several groups), and
 * the zero points enter through the group sums of x: {@code Σ s·(q − z)·x = Σ s·(Σ q·x) − Σ s·z·(Σ x)}. NF4 codes
 * are looked up in the 16-entry code book with lane selects. The columns past the last whole vector go element by element.
 *
 * <p>Four rows of W go through the kernels side by side: one core reading one stream from memory reached about
 * 6 GB/s here, four streams about twice that. Each thread takes one contiguous run of rows, in blocks of
 * {@link #TASK_ROWS} rows, and runs each group of four for every row of x while the four are in L1. Lane sums are
 * taken in lane order, so results do not depend on the JIT's state nor on the number of threads.
 */
final class QuantMatvec {
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Bytes of the same shape as {@link Simd#F}: 4L lanes. */
    private static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(VectorWidth.BITS));
    /** Rows of W side by side in the kernels. */
    private static final int SIDE = 4;
    /** Rows of W per task. */
    private static final int TASK_ROWS = 16;
    /** NF4 code book as int bits, padded to whole vectors. */
    private static final int[] NF4_BITS = new int[Math.max(16, L)];

    static {
        for (int q = 0; q < 16; q++) {
            NF4_BITS[q] = Float.floatToRawIntBits(Nf4.value(q));
        }
    }

    /** A thread's task arrays: the scales and scaled zero points of a task's rows, lane and row scratch. */
    private static final class Scratch {
        float[] scales = new float[0], zeros = new float[0];
        final float[] lanes = new float[L], out = new float[SIDE];
        final int[] offsets = new int[SIDE];
        final long[] at = new long[SIDE];

        Scratch fit(int n) {
            if (scales.length < n) {
                scales = new float[n];
                zeros = new float[n];
            }
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /**
     * The calling thread's copies of the rows of x: as given, permuted for the kernels, and summed per group. Kept
     * from call to call (a decode step makes hundreds of calls, each of which used to allocate and zero them);
     * only the first cols, vecCols and groups entries of a row are written and read.
     */
    private static final class Inputs {
        float[][] xr = new float[0][], xp = new float[0][], xsum = new float[0][];
        final float[] lanes = new float[L];

        Inputs fit(int n, int cols, int sums) {
            if (xr.length < n || xr[0].length < cols || xsum[0].length < sums) {
                int c = Math.max(cols, xr.length == 0 ? 0 : xr[0].length);
                int g = Math.max(sums, xsum.length == 0 ? 0 : xsum[0].length);
                xr = new float[Math.max(n, xr.length)][c];
                xp = new float[xr.length][c];
                xsum = new float[xr.length][g];
            }
            return this;
        }
    }

    private static final ThreadLocal<Inputs> INPUTS = ThreadLocal.withInitial(Inputs::new);

    private QuantMatvec() {
    }

    /** Codes per int lane for b-bit codes: 32 / b, and 8 for 3 bits. */
    private static int codesPerLane(int bits) {
        return bits == 3 ? 8 : 32 / bits;
    }

    /** {@code y = alpha · x · dequant(W)ᵀ + beta · y} for the n rows of x. */
    static void multiply(WorkerPool pool, QuantSource w, Tensor x, Tensor y, int n, float alpha, float beta) {
        int cpl = codesPerLane(w.bits), chunk = cpl * L, groups = w.groups;
        // 3-bit chunks load 4L bytes for 3L, L bytes early at the segment's end: a segment of less than 5L bytes
        // goes element by element.
        int chunks = w.bits == 3 && w.codes.byteSize() < 5L * L ? 0 : w.cols / chunk;
        int vecCols = chunks * chunk;
        MemorySegment sx = x.segment(), sy = y.segment();
        long ox = x.offset(), oy = y.offset();
        Inputs in = INPUTS.get().fit(n, w.cols, groups + L);
        float[][] xp = in.xp, xr = in.xr, xsum = in.xsum;
        for (int t = 0; t < n; t++) {
            MemorySegment.copy(sx, ValueLayout.JAVA_FLOAT, (ox + (long) t * w.cols) * Float.BYTES, xr[t], 0, w.cols);
            permute(xr[t], xp[t], vecCols, cpl, w.nf4 ? 0 : w.bits);
            groupSums(xr[t], xsum[t], vecCols, w.width, groups, in.lanes);
        }
        int[] expand = laneGroups(w.width, cpl, chunk);
        VectorShuffle<Float> shuffle = expand == null ? null : VectorShuffle.fromArray(F, expand, 0);
        VectorShuffle<Byte> spread = w.bits == 3 ? spread(0) : null, spreadBack = w.bits == 3 ? spread(L) : null;
        IntConsumer task = tk -> {
            int r0 = tk * TASK_ROWS, r1 = Math.min(w.rows, r0 + TASK_ROWS);
            Scratch s = SCRATCH.get().fit(TASK_ROWS * groups + L);
            float[] sc = s.scales, zs = s.zeros, lanes = s.lanes, out = s.out;
            int[] so = s.offsets;
            long[] at = s.at;
            w.scales(r0, r1 - r0, sc);
            if (!w.nf4) {
                w.zeros(r0, r1 - r0, zs);
                for (int e = 0; e < (r1 - r0) * groups; e++) {
                    zs[e] *= sc[e];
                }
            }
            for (int i0 = r0; i0 < r1; i0 += SIDE) {
                // A group past the task's last row repeats that row: the same result, written twice.
                for (int r = 0; r < SIDE; r++) {
                    int i = Math.min(i0 + r, r1 - 1);
                    at[r] = w.runAt(i, 0);
                    so[r] = (i - r0) * groups;
                }
                for (int t = 0; t < n; t++) {
                    if (w.nf4) {
                        nf4(w.codes, at, chunks, xp[t], sc, so, w.width, shuffle, lanes, out);
                    } else if (w.bits == 3) {
                        int3(w.codes, at, chunks, xp[t], sc, so, w.width, shuffle, spread, spreadBack, lanes, out);
                    } else if (w.bits == 4) {
                        int4(w.codes, at, chunks, xp[t], sc, so, w.width, shuffle, lanes, out);
                    } else {
                        integer(w.codes, at, w.bits, chunks, xp[t], sc, so, w.width, shuffle, lanes, out);
                    }
                    for (int r = 0; r < SIDE && i0 + r < r1; r++) {
                        float dot = out[r] + tail(w, i0 + r, vecCols, xr[t]);
                        if (!w.nf4) {
                            dot -= dot(zs, so[r], xsum[t], groups, lanes);
                        }
                        long e = oy + (long) t * w.rows + i0 + r;
                        float v = alpha * dot;
                        sy.setAtIndex(ValueLayout.JAVA_FLOAT, e,
                                beta == 0 ? v : Math.fma(beta, sy.getAtIndex(ValueLayout.JAVA_FLOAT, e), v));
                    }
                }
            }
        };
        // One contiguous run of blocks per thread: handing out blocks one at a time interleaves the threads' rows,
        // which streamed 15-20 % slower here (a native version of this kernel: 27-29 GB/s against 32-33).
        pool.parallelRuns(Gemm.ceilDiv(w.rows, TASK_ROWS), task);
    }

    /**
     * x reordered for the int-lane layout of codes, into xp: in each chunk of cpl · L elements, {@code xp[s · L + m]
     * = x[m · cpl + s]}, the element that code s of lane m multiplies. For integer codes ({@code bits} &gt; 0), which
     * the kernels take in place as q · 2^(bits·s), element s is scaled by 2^-(bits·s) (a multiplication by a power
     * of two: exact, unless x is below 2^-100 and the product goes subnormal), except the top code of 2-, 4- and 8-bit
     * lanes, which is shifted down.
     */
    private static void permute(float[] x, float[] xp, int vecCols, int cpl, int bits) {
        int chunk = cpl * L;
        int[] stride = new int[L];
        for (int m = 0; m < L; m++) {
            stride[m] = m * cpl;
        }
        for (int s = 0; s < cpl; s++) {
            int shift = bits == 0 || (bits != 3 && s == cpl - 1) ? 0 : bits * s;
            FloatVector factor = FloatVector.broadcast(F, Math.scalb(1f, -shift));
            for (int c0 = 0; c0 < vecCols; c0 += chunk) {
                FloatVector.fromArray(F, x, c0 + s, stride, 0).mul(factor).intoArray(xp, c0 + s * L);
            }
        }
    }

    /**
     * {@code sums[g]} = the sum of x over group g's columns below vecCols, for the groups g &lt; groups (0 for a group
     * wholly past vecCols): in L lanes, which are then added in lane order.
     */
    private static void groupSums(float[] x, float[] sums, int vecCols, int width, int groups, float[] lanes) {
        int g = 0;
        for (int j0 = 0; j0 < vecCols; g++) {
            int j1 = (int) Math.min((long) j0 + width, vecCols), j = j0;
            FloatVector acc = FloatVector.zero(F);
            for (; j <= j1 - L; j += L) {
                acc = acc.add(FloatVector.fromArray(F, x, j));
            }
            float sum = laneSum(acc, lanes);
            for (; j < j1; j++) {
                sum += x[j];
            }
            sums[g] = sum;
            j0 = j1;
        }
        Arrays.fill(sums, g, groups, 0f);
    }

    /**
     * For a group narrower than a chunk (both powers of two, so chunks start on group boundaries), the lane shuffle
     * that spreads the chunk's consecutive group scales over its lanes (lane m belongs to group m · cpl / width);
     * null when a chunk lies within one group.
     */
    private static int[] laneGroups(int width, int cpl, int chunk) {
        if (width >= chunk) {
            return null;
        }
        int[] idx = new int[L];
        for (int m = 0; m < L; m++) {
            idx[m] = m * cpl / width;
        }
        return idx;
    }

    /**
     * The byte shuffle that spreads L 3-byte runs over L 4-byte lanes (byte i of lane m takes byte min(i, 2) of run
     * m), from a vector loaded {@code back} bytes before the runs.
     */
    private static VectorShuffle<Byte> spread(int back) {
        int[] idx = new int[B.length()];
        for (int m = 0; m < L; m++) {
            for (int i = 0; i < 4; i++) {
                idx[4 * m + i] = back + 3 * m + Math.min(i, 2);
            }
        }
        return VectorShuffle.fromArray(B, idx, 0);
    }

    /**
     * {@code out[r] = Σ_j s_group(j) · q_j · x_j} over the first chunks · cpl · L codes of the four rows at byte
     * offsets at[r], for 2-, 4- and 8-bit codes (zero points apart).
     */
    private static void integer(MemorySegment codes, long[] at, int bits, int chunks, float[] xp, float[] sc,
                                int[] so, int width, VectorShuffle<Float> shuffle, float[] lanes, float[] out) {
        int cpl = 32 / bits, chunk = cpl * L, mask = (1 << bits) - 1, top = 32 - bits;
        long at0 = at[0], at1 = at[1], at2 = at[2], at3 = at[3];
        int s0 = so[0], s1 = so[1], s2 = so[2], s3 = so[3];
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F), t2 = FloatVector.zero(F), t3 = FloatVector.zero(F);
        for (int c = 0; c < chunks; c++) {
            long o = 4L * L * c;
            IntVector v0 = IntVector.fromMemorySegment(I, codes, at0 + o, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, codes, at1 + o, LE);
            IntVector v2 = IntVector.fromMemorySegment(I, codes, at2 + o, LE);
            IntVector v3 = IntVector.fromMemorySegment(I, codes, at3 + o, LE);
            int xo = c * chunk;
            // The top code: an unsigned shift leaves it alone in its lane, with nothing to mask.
            FloatVector xv = FloatVector.fromArray(F, xp, xo + (cpl - 1) * L);
            FloatVector a0 = ((FloatVector) v0.lanewise(VectorOperators.LSHR, top).convert(VectorOperators.I2F, 0)).mul(xv);
            FloatVector a1 = ((FloatVector) v1.lanewise(VectorOperators.LSHR, top).convert(VectorOperators.I2F, 0)).mul(xv);
            FloatVector a2 = ((FloatVector) v2.lanewise(VectorOperators.LSHR, top).convert(VectorOperators.I2F, 0)).mul(xv);
            FloatVector a3 = ((FloatVector) v3.lanewise(VectorOperators.LSHR, top).convert(VectorOperators.I2F, 0)).mul(xv);
            // The others stay in place, q · 2^(bits·s) (exact in f32), against x pre-scaled by 2^-(bits·s).
            for (int s = 0; s < cpl - 1; s++) {
                xv = FloatVector.fromArray(F, xp, xo + s * L);
                int m = mask << (s * bits);
                a0 = ((FloatVector) v0.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a0);
                a1 = ((FloatVector) v1.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a1);
                a2 = ((FloatVector) v2.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a2);
                a3 = ((FloatVector) v3.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a3);
            }
            int k = c * chunk / width;
            if (shuffle == null) {
                t0 = a0.fma(FloatVector.broadcast(F, sc[s0 + k]), t0);
                t1 = a1.fma(FloatVector.broadcast(F, sc[s1 + k]), t1);
                t2 = a2.fma(FloatVector.broadcast(F, sc[s2 + k]), t2);
                t3 = a3.fma(FloatVector.broadcast(F, sc[s3 + k]), t3);
            } else {
                t0 = a0.fma(FloatVector.fromArray(F, sc, s0 + k).rearrange(shuffle), t0);
                t1 = a1.fma(FloatVector.fromArray(F, sc, s1 + k).rearrange(shuffle), t1);
                t2 = a2.fma(FloatVector.fromArray(F, sc, s2 + k).rearrange(shuffle), t2);
                t3 = a3.fma(FloatVector.fromArray(F, sc, s3 + k).rearrange(shuffle), t3);
            }
        }
        out[0] = laneSum(t0, lanes);
        out[1] = laneSum(t1, lanes);
        out[2] = laneSum(t2, lanes);
        out[3] = laneSum(t3, lanes);
    }

    /**
     * {@link #integer} for 4-bit codes, with the number of in-place steps a constant (7) rather than a parameter, which
     * C2 unrolls: 4096 × 11008 on one thread went from 9.4 to 17.0 GB/s, 128 × 11008 (in L2) from 11.7 to 17.3. It
     * repeats {@link #integer}'s scale and lane-sum steps on purpose: moving those steps of the four kernels into
     * shared methods made the 4-bit g32 product 3 times slower (13.8–15.6 against 5.4–5.5 GB/s; our reading, not
     * checked in the compiled code: the vectors passed through them were no longer kept in registers).
     */
    private static void int4(MemorySegment codes, long[] at, int chunks, float[] xp, float[] sc, int[] so, int width,
                             VectorShuffle<Float> shuffle, float[] lanes, float[] out) {
        int chunk = 8 * L;
        long at0 = at[0], at1 = at[1], at2 = at[2], at3 = at[3];
        int s0 = so[0], s1 = so[1], s2 = so[2], s3 = so[3];
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F), t2 = FloatVector.zero(F), t3 = FloatVector.zero(F);
        for (int c = 0; c < chunks; c++) {
            long o = 4L * L * c;
            IntVector v0 = IntVector.fromMemorySegment(I, codes, at0 + o, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, codes, at1 + o, LE);
            IntVector v2 = IntVector.fromMemorySegment(I, codes, at2 + o, LE);
            IntVector v3 = IntVector.fromMemorySegment(I, codes, at3 + o, LE);
            int xo = c * chunk;
            FloatVector xv = FloatVector.fromArray(F, xp, xo + 7 * L);
            FloatVector a0 = ((FloatVector) v0.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).mul(xv);
            FloatVector a1 = ((FloatVector) v1.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).mul(xv);
            FloatVector a2 = ((FloatVector) v2.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).mul(xv);
            FloatVector a3 = ((FloatVector) v3.lanewise(VectorOperators.LSHR, 28).convert(VectorOperators.I2F, 0)).mul(xv);
            for (int s = 0; s < 7; s++) {
                xv = FloatVector.fromArray(F, xp, xo + s * L);
                int m = 0xf << (s * 4);
                a0 = ((FloatVector) v0.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a0);
                a1 = ((FloatVector) v1.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a1);
                a2 = ((FloatVector) v2.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a2);
                a3 = ((FloatVector) v3.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a3);
            }
            int k = c * chunk / width;
            if (shuffle == null) {
                t0 = a0.fma(FloatVector.broadcast(F, sc[s0 + k]), t0);
                t1 = a1.fma(FloatVector.broadcast(F, sc[s1 + k]), t1);
                t2 = a2.fma(FloatVector.broadcast(F, sc[s2 + k]), t2);
                t3 = a3.fma(FloatVector.broadcast(F, sc[s3 + k]), t3);
            } else {
                t0 = a0.fma(FloatVector.fromArray(F, sc, s0 + k).rearrange(shuffle), t0);
                t1 = a1.fma(FloatVector.fromArray(F, sc, s1 + k).rearrange(shuffle), t1);
                t2 = a2.fma(FloatVector.fromArray(F, sc, s2 + k).rearrange(shuffle), t2);
                t3 = a3.fma(FloatVector.fromArray(F, sc, s3 + k).rearrange(shuffle), t3);
            }
        }
        out[0] = laneSum(t0, lanes);
        out[1] = laneSum(t1, lanes);
        out[2] = laneSum(t2, lanes);
        out[3] = laneSum(t3, lanes);
    }

    /**
     * As {@link #integer}, for 3-bit codes: chunks of 8 · L codes in 3 · L bytes, loaded as 4 · L bytes and spread;
     * a load that would run past the segment's end is taken L bytes earlier and spread from there.
     */
    private static void int3(MemorySegment codes, long[] at, int chunks, float[] xp, float[] sc, int[] so, int width,
                             VectorShuffle<Float> shuffle, VectorShuffle<Byte> spread, VectorShuffle<Byte> spreadBack,
                             float[] lanes, float[] out) {
        int chunk = 8 * L;
        long at0 = at[0], at1 = at[1], at2 = at[2], at3 = at[3], last = codes.byteSize() - 4L * L;
        int s0 = so[0], s1 = so[1], s2 = so[2], s3 = so[3];
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F), t2 = FloatVector.zero(F), t3 = FloatVector.zero(F);
        for (int c = 0; c < chunks; c++) {
            long o = 3L * L * c;
            IntVector v0 = (at0 + o <= last ? ByteVector.fromMemorySegment(B, codes, at0 + o, LE).rearrange(spread)
                    : ByteVector.fromMemorySegment(B, codes, at0 + o - L, LE).rearrange(spreadBack)).reinterpretAsInts();
            IntVector v1 = (at1 + o <= last ? ByteVector.fromMemorySegment(B, codes, at1 + o, LE).rearrange(spread)
                    : ByteVector.fromMemorySegment(B, codes, at1 + o - L, LE).rearrange(spreadBack)).reinterpretAsInts();
            IntVector v2 = (at2 + o <= last ? ByteVector.fromMemorySegment(B, codes, at2 + o, LE).rearrange(spread)
                    : ByteVector.fromMemorySegment(B, codes, at2 + o - L, LE).rearrange(spreadBack)).reinterpretAsInts();
            IntVector v3 = (at3 + o <= last ? ByteVector.fromMemorySegment(B, codes, at3 + o, LE).rearrange(spread)
                    : ByteVector.fromMemorySegment(B, codes, at3 + o - L, LE).rearrange(spreadBack)).reinterpretAsInts();
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            int xo = c * chunk;
            // Codes stay in place (the 24 bits of a run), q · 2^(3s), against x pre-scaled by 2^-3s.
            for (int s = 0; s < 8; s++) {
                FloatVector xv = FloatVector.fromArray(F, xp, xo + s * L);
                int m = 7 << (3 * s);
                a0 = ((FloatVector) v0.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a0);
                a1 = ((FloatVector) v1.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a1);
                a2 = ((FloatVector) v2.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a2);
                a3 = ((FloatVector) v3.and(m).convert(VectorOperators.I2F, 0)).fma(xv, a3);
            }
            int k = c * chunk / width;
            if (shuffle == null) {
                t0 = a0.fma(FloatVector.broadcast(F, sc[s0 + k]), t0);
                t1 = a1.fma(FloatVector.broadcast(F, sc[s1 + k]), t1);
                t2 = a2.fma(FloatVector.broadcast(F, sc[s2 + k]), t2);
                t3 = a3.fma(FloatVector.broadcast(F, sc[s3 + k]), t3);
            } else {
                t0 = a0.fma(FloatVector.fromArray(F, sc, s0 + k).rearrange(shuffle), t0);
                t1 = a1.fma(FloatVector.fromArray(F, sc, s1 + k).rearrange(shuffle), t1);
                t2 = a2.fma(FloatVector.fromArray(F, sc, s2 + k).rearrange(shuffle), t2);
                t3 = a3.fma(FloatVector.fromArray(F, sc, s3 + k).rearrange(shuffle), t3);
            }
        }
        out[0] = laneSum(t0, lanes);
        out[1] = laneSum(t1, lanes);
        out[2] = laneSum(t2, lanes);
        out[3] = laneSum(t3, lanes);
    }

    /**
     * {@code out[r] = Σ_j absmax_group(j) · NF4[q_j] · x_j} over the first chunks · 8 · L codes of the four rows. The
     * code book is one vector of 16 lanes, or 2 or 4 pieces below 512 bits: a code selects from a pair of pieces
     * (indexes wrap within the pair) and, with 4 pieces, a blend on code &gt; 7 picks the pair.
     */
    private static void nf4(MemorySegment codes, long[] at, int chunks, float[] xp, float[] sc, int[] so, int width,
                            VectorShuffle<Float> shuffle, float[] lanes, float[] out) {
        int chunk = 8 * L;
        long at0 = at[0], at1 = at[1], at2 = at[2], at3 = at[3];
        int s0 = so[0], s1 = so[1], s2 = so[2], s3 = so[3];
        IntVector b0 = IntVector.fromArray(I, NF4_BITS, 0);
        IntVector b1 = L < 16 ? IntVector.fromArray(I, NF4_BITS, L % 16) : b0;
        IntVector b2 = L < 8 ? IntVector.fromArray(I, NF4_BITS, 2 * L % 16) : b0;
        IntVector b3 = L < 8 ? IntVector.fromArray(I, NF4_BITS, 3 * L % 16) : b0;
        FloatVector t0 = FloatVector.zero(F), t1 = FloatVector.zero(F), t2 = FloatVector.zero(F), t3 = FloatVector.zero(F);
        for (int c = 0; c < chunks; c++) {
            long o = 4L * L * c;
            IntVector v0 = IntVector.fromMemorySegment(I, codes, at0 + o, LE);
            IntVector v1 = IntVector.fromMemorySegment(I, codes, at1 + o, LE);
            IntVector v2 = IntVector.fromMemorySegment(I, codes, at2 + o, LE);
            IntVector v3 = IntVector.fromMemorySegment(I, codes, at3 + o, LE);
            FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
            int xo = c * chunk;
            for (int s = 0; s < 8; s++) {
                FloatVector xv = FloatVector.fromArray(F, xp, xo + s * L);
                int sh = 4 * s;
                IntVector q0 = v0.lanewise(VectorOperators.LSHR, sh).and(15);
                IntVector q1 = v1.lanewise(VectorOperators.LSHR, sh).and(15);
                IntVector q2 = v2.lanewise(VectorOperators.LSHR, sh).and(15);
                IntVector q3 = v3.lanewise(VectorOperators.LSHR, sh).and(15);
                if (L >= 16) {
                    q0 = q0.selectFrom(b0);
                    q1 = q1.selectFrom(b0);
                    q2 = q2.selectFrom(b0);
                    q3 = q3.selectFrom(b0);
                } else if (L == 8) {
                    q0 = q0.selectFrom(b0, b1);
                    q1 = q1.selectFrom(b0, b1);
                    q2 = q2.selectFrom(b0, b1);
                    q3 = q3.selectFrom(b0, b1);
                } else {
                    q0 = q0.selectFrom(b0, b1).blend(q0.selectFrom(b2, b3), q0.compare(VectorOperators.GT, 7));
                    q1 = q1.selectFrom(b0, b1).blend(q1.selectFrom(b2, b3), q1.compare(VectorOperators.GT, 7));
                    q2 = q2.selectFrom(b0, b1).blend(q2.selectFrom(b2, b3), q2.compare(VectorOperators.GT, 7));
                    q3 = q3.selectFrom(b0, b1).blend(q3.selectFrom(b2, b3), q3.compare(VectorOperators.GT, 7));
                }
                a0 = q0.reinterpretAsFloats().fma(xv, a0);
                a1 = q1.reinterpretAsFloats().fma(xv, a1);
                a2 = q2.reinterpretAsFloats().fma(xv, a2);
                a3 = q3.reinterpretAsFloats().fma(xv, a3);
            }
            int k = c * chunk / width;
            if (shuffle == null) {
                t0 = a0.fma(FloatVector.broadcast(F, sc[s0 + k]), t0);
                t1 = a1.fma(FloatVector.broadcast(F, sc[s1 + k]), t1);
                t2 = a2.fma(FloatVector.broadcast(F, sc[s2 + k]), t2);
                t3 = a3.fma(FloatVector.broadcast(F, sc[s3 + k]), t3);
            } else {
                t0 = a0.fma(FloatVector.fromArray(F, sc, s0 + k).rearrange(shuffle), t0);
                t1 = a1.fma(FloatVector.fromArray(F, sc, s1 + k).rearrange(shuffle), t1);
                t2 = a2.fma(FloatVector.fromArray(F, sc, s2 + k).rearrange(shuffle), t2);
                t3 = a3.fma(FloatVector.fromArray(F, sc, s3 + k).rearrange(shuffle), t3);
            }
        }
        out[0] = laneSum(t0, lanes);
        out[1] = laneSum(t1, lanes);
        out[2] = laneSum(t2, lanes);
        out[3] = laneSum(t3, lanes);
    }

    /** Σ a[ao + k] · b[k] for k &lt; n, in f32 lanes summed in lane order, then the tail. */
    private static float dot(float[] a, int ao, float[] b, int n, float[] lanes) {
        float sum = 0f;
        int k = 0;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(F);
            for (; k <= n - L; k += L) {
                acc = FloatVector.fromArray(F, a, ao + k).fma(FloatVector.fromArray(F, b, k), acc);
            }
            sum = laneSum(acc, lanes);
        }
        for (; k < n; k++) {
            sum = Math.fma(a[ao + k], b[k], sum);
        }
        return sum;
    }

    /** Σ_{j ≥ from} dequant(W)[row, j] · x[j], element by element, for the columns past the whole chunks. */
    private static float tail(QuantSource w, int row, int from, float[] x) {
        float sum = 0f;
        for (int j = from; j < w.cols; j++) {
            int q = w.code(row, j), k = j / w.width;
            float v = w.nf4 ? Nf4.value(q) * w.scale(row, k) : w.scale(row, k) * (q - w.zero(row, k));
            sum = Math.fma(v, x[j], sum);
        }
        return sum;
    }
}
