package jtune.jmh;

import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * {@code quantMatmul} of one token, the matrix-vector product of decoding: {@code y (1, rows) = x (1, cols) ·
 * dequant(W)ᵀ}. Counts the bytes of W read a call (codes, scales, zero points: {@link QuantizedMatrix#bytes}), not
 * x and y, so {@code :GB} reads as GB/s of weights; {@link CopyBandwidth} in the same run is the roofline. The
 * default matrix is LLaMA-7B's down projection (4096 outputs, 11008 inputs).
 */
public class QuantDecode extends KernelBench {
    /** rows x cols of W. */
    @Param({"4096x11008", "11008x4096", "1376x512"})
    public String matrix;

    /** See {@link QuantWeights#format}. */
    @Param({"int4-g128", "int3-g128", "int2-g128", "int8-g128", "int4-g32", "nf4-b64", "nf4-b64-dq"})
    public String format;

    private QuantizedMatrix w;
    private Tensor x;
    private Tensor y;
    private double callGB;

    @Override
    protected void prepare() {
        long[] d = dims(matrix);
        w = QuantWeights.random(pool, QuantWeights.format(format), d[0], d[1], 7);
        x = uniform("x", -1, 1, 1, d[1]);
        y = uniform("y", -1, 1, 1, d[0]);
        callGB = w.bytes() / 1e9;
    }

    @Benchmark
    public void matvec(Traffic t) {
        ops.quantMatmul(x, w, y, 1f, 0f);
        t.GB += callGB;
    }
}
