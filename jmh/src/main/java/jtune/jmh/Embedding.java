package jtune.jmh;

import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Param;

/**
 * Embedding gather from table (V, D) for N ids and its scatter-add backward. Forward reads N rows and the ids
 * and writes out (8·N·D + 4·N bytes); backward reads dout and the ids and updates N rows of dtable
 * (12·N·D + 4·N). LLaMA-60M's table is 32000 × 512.
 */
public class Embedding extends KernelBench {
    /** V x D. */
    @Param({"32000x512"})
    public String table;

    /** N, the number of ids. */
    @Param({"1024", "16384"})
    public long tokens;

    private Tensor weights;
    private Tensor ids;
    private Tensor out;
    private Tensor dtable;
    private double forwardGB;
    private double backwardGB;

    @Override
    protected void prepare() {
        long[] d = dims(table);
        long vocab = d[0], dim = d[1];
        weights = uniform("table", -1, 1, vocab, dim);
        ids = indices("ids", Math.toIntExact(vocab), tokens);
        out = uniform("out", -1, 1, tokens, dim);
        dtable = zeros("dtable", DType.F32, vocab, dim);
        forwardGB = gigabytes(2.0 * tokens * dim + tokens, 4);
        backwardGB = gigabytes(3.0 * tokens * dim + tokens, 4);
    }

    @Benchmark
    public void forward(Traffic t) {
        ops.embedding(weights, ids, out);
        t.GB += forwardGB;
    }

    @Benchmark
    public void backward(Traffic t) {
        ops.embeddingBackward(out, ids, dtable);
        t.GB += backwardGB;
    }
}
