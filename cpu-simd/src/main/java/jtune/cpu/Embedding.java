package jtune.cpu;

import static jtune.cpu.Simd.F;
import static jtune.cpu.Simd.L;
import static jtune.cpu.Simd.ORDER;
import static jtune.cpu.Simd.get;
import static jtune.cpu.Simd.load;
import static jtune.cpu.Simd.set;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/**
 * Embedding gather and its scatter-add backward; table/dtable (V, D) and out/dout (N, D) contiguous f32, ids (N)
 * int32 (types and shapes checked by the caller). Ids are checked first, so a bad id fails before anything is
 * written.
 */
final class Embedding {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;

    private Embedding() {
    }

    /** {@code out[n, :] = table[ids[n], :]}: one block copy per row, rows split by {@link Chunks#rows}. */
    static void embedding(WorkerPool pool, Tensor table, Tensor ids, Tensor out) {
        long d = table.dim(1);
        checkIds(ids, table.dim(0), "embedding");
        MemorySegment st = table.segment(), si = ids.segment(), so = out.segment();
        long ot = table.byteOffset(), oi = ids.byteOffset(), oo = out.byteOffset();
        Chunks.rows(pool, ids.size(), d, (r0, count) -> {
            for (long r = r0; r < r0 + count; r++) {
                long id = si.get(I32, oi + 4 * r);
                MemorySegment.copy(st, ot + 4 * id * d, so, oo + 4 * r * d, 4 * d);
            }
        });
    }

    /**
     * {@code dtable[ids[n], :] += dout[n, :]}. Repeated ids make rows collide, so the split is by columns (groups of
     * L, about {@link Chunks#ELEMENTS} updates per task): each task adds every row's slice of its columns, in row
     * order, so each element receives exactly the f32 additions of the oracle in the oracle's order (equal bit for
     * bit). Vector body, scalar tail.
     */
    static void embeddingBackward(WorkerPool pool, Tensor dout, Tensor ids, Tensor dtable) {
        long n = ids.size(), d = dtable.dim(1);
        checkIds(ids, dtable.dim(0), "embeddingBackward");
        MemorySegment sg = dout.segment(), si = ids.segment(), st = dtable.segment();
        long og = dout.byteOffset(), oi = ids.byteOffset(), ot = dtable.byteOffset();
        long groups = (d + L - 1) / L;
        long groupsPerTask = Math.max(1, Chunks.ELEMENTS / Math.max(n * L, 1));
        int tasks = (int) ((groups + groupsPerTask - 1) / groupsPerTask);
        pool.parallelFor(tasks, t -> {
            int from = (int) (t * groupsPerTask * L), to = (int) Math.min(d, (t + 1) * groupsPerTask * L);
            for (long r = 0; r < n; r++) {
                long src = og + 4 * r * d, dst = ot + 4 * si.get(I32, oi + 4 * r) * d;
                int j = from;
                for (int bound = from + F.loopBound(to - from); j < bound; j += L) {
                    load(st, dst + 4L * j).add(load(sg, src + 4L * j)).intoMemorySegment(st, dst + 4L * j, ORDER);
                }
                for (; j < to; j++) {
                    set(st, dst + 4L * j, get(st, dst + 4L * j) + get(sg, src + 4L * j));
                }
            }
        });
    }

    /** Fails on the first id outside [0, vocab), with the oracle's message. */
    private static void checkIds(Tensor ids, long vocab, String op) {
        MemorySegment s = ids.segment();
        long o = ids.byteOffset();
        for (long n = 0; n < ids.size(); n++) {
            int id = s.get(I32, o + 4 * n);
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException(op + ": id " + id + " at position " + n
                        + " is outside the table's rows [0, " + vocab + ")");
            }
        }
    }
}
