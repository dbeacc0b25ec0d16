package jtune.jmh;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/** Random quantized weights for the benchmarks of the quantized products. */
final class QuantWeights {
    private QuantWeights() {
    }

    /**
     * The format named {@code int<bits>-g<group>} (group 0: per channel; asymmetric, f32 scales) or
     * {@code nf4-b<block>}, with {@code -dq} for double quantization: "int4-g128", "int3-g0", "nf4-b64-dq".
     */
    static QuantFormat format(String name) {
        String[] p = name.split("-");
        int size = Integer.parseInt(p[1].substring(1));
        if (p[0].equals("nf4")) {
            return QuantFormat.nf4(size, p.length > 2 && p[2].equals("dq"));
        }
        return QuantFormat.integer(Integer.parseInt(p[0].substring(3)), size, false, DType.F32);
    }

    /** A (rows, cols) matrix of uniformly random codes, scales in [0.01, 0.02), random zero points and absmax codes. */
    static QuantizedMatrix random(MemoryPool pool, QuantFormat f, long rows, long cols, long seed) {
        QuantizedMatrix m = QuantizedMatrix.allocate(pool, "w", f, rows, cols);
        SplittableRandom r = new SplittableRandom(seed);
        int[] q = new int[(int) cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                q[j] = r.nextInt(f.maxCode() + 1);
            }
            m.setRow(i, q);
        }
        for (Tensor t : m.tensors()) {
            if (t == m.codes()) {
                continue;
            }
            MemorySegment s = t.segment();
            for (long e = 0; e < t.size(); e++) {
                float v = t == m.zeros() ? r.nextInt(f.maxCode() + 1)
                        : t.dtype() == DType.U8 ? r.nextInt(256) : (float) (0.01 + 0.01 * r.nextDouble());
                Tensor.store(s, t.dtype(), t.offset() + e, v);
            }
        }
        return m;
    }
}
