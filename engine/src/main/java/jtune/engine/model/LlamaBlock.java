package jtune.engine.model;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.RmsNorm;
import jtune.engine.nn.SelfAttention;
import jtune.engine.nn.Session;
import jtune.engine.nn.SwiGluMlp;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/** One decoder layer, pre-norm: {@code h = x + attn(norm1(x))}, {@code y = h + mlp(norm2(h))}; rows are (B·T, D). */
final class LlamaBlock implements AutoCloseable {
    private final RmsNorm inputNorm;
    private final SelfAttention attention;
    private final RmsNorm postAttentionNorm;
    private final SwiGluMlp mlp;

    LlamaBlock(RmsNorm inputNorm, SelfAttention attention, RmsNorm postAttentionNorm, SwiGluMlp mlp) {
        this.inputNorm = inputNorm;
        this.attention = attention;
        this.postAttentionNorm = postAttentionNorm;
        this.mlp = mlp;
    }

    /** The block's activations: its input x (owned by the caller) and everything else (owned here). */
    record Saved(Tensor x, Tensor rstd1, Tensor xn1, SelfAttention.Saved attention, Tensor h, Tensor rstd2, Tensor xn2,
                 SwiGluMlp.Saved mlp) implements AutoCloseable {
        @Override
        public void close() {
            attention.close();
            mlp.close();
            for (Tensor t : new Tensor[]{rstd1, xn1, h, rstd2, xn2}) {
                t.close();
            }
        }
    }

    /** x → out, both (B·T, D); activations are allocated under {@code keep} and returned for backward. */
    Saved forward(Session s, Tensor x, int batch, int seq, Tensor out, Category keep) {
        long n = x.dim(0), d = x.dim(1);
        Tensor rstd1 = s.f32("block.rstd1", keep, n), xn1 = s.f32("block.xn1", keep, n, d);
        inputNorm.forward(s, x, xn1, rstd1);
        Tensor h = s.f32("block.h", keep, n, d);
        SelfAttention.Saved att = attention.forward(s, xn1, batch, seq, h, keep);
        s.backend().add(h, x, h);
        Tensor rstd2 = s.f32("block.rstd2", keep, n), xn2 = s.f32("block.xn2", keep, n, d);
        postAttentionNorm.forward(s, h, xn2, rstd2);
        SwiGluMlp.Saved m = mlp.forward(s, xn2, out, keep);
        s.backend().add(out, h, out);
        return new Saved(x, rstd1, xn1, att, h, rstd2, xn2, m);
    }

    /**
     * Forward only, for generation: x → out, both (T, D), the new positions start..start+T-1 of one sequence, whose
     * keys and values go to rows start..start+T-1 of this layer's cache (see {@link SelfAttention#forwardCached}).
     */
    void forwardCached(Session s, Tensor x, int start, Tensor keys, Tensor values, Tensor out) {
        long n = x.dim(0), d = x.dim(1);
        try (Tensor rstd = s.f32("block.rstd", Category.WORKSPACE, n);
             Tensor xn = s.f32("block.xn", Category.WORKSPACE, n, d);
             Tensor h = s.f32("block.h", Category.WORKSPACE, n, d)) {
            inputNorm.forward(s, x, xn, rstd);
            attention.forwardCached(s, xn, start, keys, values, h);
            s.backend().add(h, x, h);
            postAttentionNorm.forward(s, h, xn, rstd);
            mlp.forward(s, xn, out, Category.WORKSPACE).close();
            s.backend().add(out, h, out);
        }
    }

    /**
     * Backward in place on the residual gradient: {@code dres} holds dL/dy on entry and dL/dx on return. Adds every
     * parameter's gradient and closes the saved activations as soon as they are used.
     */
    void backward(Session s, Saved sv, Tensor dres) {
        try (Tensor dn = s.f32("block.dnorm_in", Category.WORKSPACE, dres.shape().toArray());
             Tensor dx = s.f32("block.dx", Category.WORKSPACE, dres.shape().toArray())) {
            mlp.backward(s, sv.mlp(), dres, dn);
            sv.xn2().close();
            postAttentionNorm.backward(s, sv.h(), sv.rstd2(), dn, dx);
            s.backend().add(dres, dx, dres);
            sv.h().close();
            sv.rstd2().close();
            attention.backward(s, sv.attention(), dres, dn);
            sv.xn1().close();
            inputNorm.backward(s, sv.x(), sv.rstd1(), dn, dx);
            s.backend().add(dres, dx, dres);
            sv.rstd1().close();
        }
    }

    /** Hugging Face's order: attention, MLP, input norm, post-attention norm. */
    List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(attention.parameters());
        all.addAll(mlp.parameters());
        all.add(inputNorm.weight());
        all.add(postAttentionNorm.weight());
        return all;
    }

    @Override
    public void close() {
        attention.close();
        mlp.close();
        inputNorm.weight().close();
        postAttentionNorm.weight().close();
    }
}
