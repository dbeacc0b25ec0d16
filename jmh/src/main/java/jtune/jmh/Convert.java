package jtune.jmh;

import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/** {@code convert} between f32 and bf16 or f16 over n elements: reads 4 or 2 bytes and writes 2 or 4 (6 an element). */
public class Convert extends KernelBench {
    @Param({"4098", "1000003", "16777216"})
    public long n;

    /** source-target. */
    @Param({"f32-bf16", "bf16-f32", "f32-f16", "f16-f32"})
    public String types;

    private Tensor src;
    private Tensor dst;
    private double callGB;

    @Override
    protected void prepare() {
        String[] st = types.split("-");
        DType from = dtype(st[0]);
        DType to = dtype(st[1]);
        Tensor values = uniform("values", -4, 4, n);
        if (from == DType.F32) {
            src = values;
        } else {
            src = zeros("src", from, n);
            ops.convert(values, src);
        }
        dst = zeros("dst", to, n);
        callGB = (from.bytesFor(n) + to.bytesFor(n)) / 1e9;
    }

    private static DType dtype(String label) {
        for (DType t : DType.values()) {
            if (t.toString().equals(label)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + label + "'");
    }

    @Benchmark
    public void convert(Traffic t) {
        ops.convert(src, dst);
        t.GB += callGB;
    }
}
