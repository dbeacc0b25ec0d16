package jtune.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jtune.engine.tensor.Tensor;
import jtune.engine.util.WorkerPool;

/** Cross-entropy fused with its gradient, over contiguous tensors (types and shapes checked by the caller). */
final class Loss {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;

    private Loss() {
    }

    /**
     * logits and dlogits (N, V) f32 (dlogits may be null, or alias logits), targets (N) int32, a negative target
     * ignoring its row. Targets are checked first, so a target ≥ V fails before anything is written. Per row:
     * m = max, e = exp(x − m) ({@link Softmax#expSum}, stored in dlogits), {@code lse = m + ln Σe} in double,
     * {@code loss = lse − x[target]}; then {@code dlogits = e · (gradScale / Σe)} and, at the target,
     * {@code gradScale · (exp(x[target] − lse) − 1)} in double (no cancellation when p ≈ 1); ignored rows get 0.
     * Rows are split by {@link Chunks#rowPartials}; the row losses add in double, in row order.
     */
    static float crossEntropy(WorkerPool pool, Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        long n = logits.dim(0), v = logits.dim(1);
        MemorySegment st = targets.segment(), sl = logits.segment();
        long ot = targets.byteOffset(), ol = logits.byteOffset();
        for (long r = 0; r < n; r++) {
            int target = st.get(I32, ot + 4 * r);
            if (target >= v) {
                throw new IllegalArgumentException("crossEntropy: target " + target + " of row " + r
                        + " is outside the vocabulary [0, " + v + ")");
            }
        }
        MemorySegment sd = dlogits == null ? null : dlogits.segment();
        long od = dlogits == null ? 0 : dlogits.byteOffset();
        int cols = (int) v;
        double[] parts = Chunks.rowPartials(pool, n, v, (r0, count) -> {
            double loss = 0;
            for (long r = r0; r < r0 + count; r++) {
                int target = st.get(I32, ot + 4 * r);
                long lr = ol + 4 * r * v, dr = od + 4 * r * v;
                if (target < 0) {
                    if (sd != null) {
                        Elementwise.fill(sd, dr, 0f, cols);
                    }
                    continue;
                }
                float xt = sl.get(F32, lr + 4L * target);
                float m = Reductions.max(sl, lr, cols);
                double s = Softmax.expSum(sl, lr, m, sd, dr, cols);
                double lse = m + Math.log(s);
                loss += lse - xt;
                if (sd != null) {
                    Elementwise.scale(sd, dr, (float) (gradScale / s), sd, dr, cols);
                    sd.set(F32, dr + 4L * target, (float) (gradScale * (Math.exp(xt - lse) - 1)));
                }
            }
            return loss;
        });
        double total = 0;
        for (double p : parts) {
            total += p;
        }
        return (float) total;
    }
}
