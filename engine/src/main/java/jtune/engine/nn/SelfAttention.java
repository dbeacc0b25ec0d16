package jtune.engine.nn;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * LLaMA's attention block on (B·T, D) rows: q, k, v projections (optionally with bias, Qwen2), optionally RMSNorm over
 * each head of q and k (Qwen3), RoPE on q and k, {@link CausalAttention}, and the output projection.
 */
public final class SelfAttention implements AutoCloseable {
    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;
    private final RmsNorm qNorm;
    private final RmsNorm kNorm;
    private final Rotary rotary;
    private final CausalAttention core;
    private final int heads;
    private final int kvHeads;
    private final int headDim;

    /** {@code qNorm} and {@code kNorm} are both null or both (hd) norms; {@code rotary} is shared, not owned. */
    public SelfAttention(Linear q, Linear k, Linear v, Linear o, RmsNorm qNorm, RmsNorm kNorm, Rotary rotary,
                         int heads, int kvHeads, int headDim) {
        if ((qNorm == null) != (kNorm == null)) {
            throw new IllegalArgumentException("attention: q and k norms come together or not at all");
        }
        if (q.outFeatures() != (long) heads * headDim || k.outFeatures() != (long) kvHeads * headDim
                || v.outFeatures() != (long) kvHeads * headDim || o.inFeatures() != (long) heads * headDim) {
            throw new IllegalArgumentException("attention: projections do not fit " + heads + " heads, " + kvHeads
                    + " kv heads of dimension " + headDim);
        }
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.qNorm = qNorm;
        this.kNorm = kNorm;
        this.rotary = rotary;
        this.core = new CausalAttention(heads, kvHeads, headDim);
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /**
     * What backward needs: the input x (owned by the caller); q and k after RoPE, v; the attention probabilities and
     * output; with q/k norm, q and k before it and their row factors (null otherwise).
     */
    public record Saved(int batch, int seq, Tensor x, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor att,
                        Tensor qRaw, Tensor qRstd, Tensor kRaw, Tensor kRstd) implements AutoCloseable {
        @Override
        public void close() {
            for (Tensor t : new Tensor[]{q, k, v, probs, att, qRaw, qRstd, kRaw, kRstd}) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    /** x (B·T, D) → out (B·T, D); activations are allocated under {@code keep} and returned for backward. */
    public Saved forward(Session s, Tensor x, int batch, int seq, Tensor out, Category keep) {
        long n = x.dim(0);
        Tensor qt = s.f32("attn.q", keep, n, q.outFeatures());
        Tensor kt = s.f32("attn.k", keep, n, k.outFeatures());
        Tensor vt = s.f32("attn.v", keep, n, v.outFeatures());
        q.forward(s, x, qt);
        k.forward(s, x, kt);
        v.forward(s, x, vt);
        Tensor qRaw = null, qRstd = null, kRaw = null, kRstd = null;
        if (qNorm != null) {
            qRaw = qt;
            kRaw = kt;
            qt = s.f32("attn.q", keep, n, q.outFeatures());
            kt = s.f32("attn.k", keep, n, k.outFeatures());
            qRstd = s.f32("attn.q_rstd", keep, n * heads);
            kRstd = s.f32("attn.k_rstd", keep, n * kvHeads);
            qNorm.forward(s, qRaw.reshape(n * heads, headDim), qt.reshape(n * heads, headDim), qRstd);
            kNorm.forward(s, kRaw.reshape(n * kvHeads, headDim), kt.reshape(n * kvHeads, headDim), kRstd);
        }
        rotary.apply(s, qt.reshape(batch, seq, heads, headDim), false);
        rotary.apply(s, kt.reshape(batch, seq, kvHeads, headDim), false);
        Tensor probs = s.f32("attn.probs", keep, batch, heads, seq, seq);
        Tensor att = s.f32("attn.out", keep, n, q.outFeatures());
        core.forward(s, batch, seq, qt, kt, vt, probs, att);
        o.forward(s, att, out);
        return new Saved(batch, seq, x, qt, kt, vt, probs, att, qRaw, qRstd, kRaw, kRstd);
    }

    /**
     * Forward only, for generation: x (T, D) holds the new positions start..start+T-1 of one sequence, out (T, D)
     * receives their output. Their keys and values (after q/k norm and RoPE) are written into rows start..start+T-1
     * of {@code keys} and {@code values} (capacity, KVH·hd), whose rows 0..start-1 must hold the earlier positions;
     * attention runs over rows 0..start+T-1.
     */
    public void forwardCached(Session s, Tensor x, int start, Tensor keys, Tensor values, Tensor out) {
        int t = Math.toIntExact(x.dim(0)), end = start + t;
        Tensor kt = keys.slice(0, start, end), vt = values.slice(0, start, end);
        try (Tensor qt = s.f32("attn.q", Category.WORKSPACE, t, q.outFeatures());
             Tensor att = s.f32("attn.out", Category.WORKSPACE, t, q.outFeatures())) {
            q.forward(s, x, qt);
            k.forward(s, x, kt);
            v.forward(s, x, vt);
            if (qNorm != null) {
                try (Tensor qRstd = s.f32("attn.q_rstd", Category.WORKSPACE, (long) t * heads);
                     Tensor kRstd = s.f32("attn.k_rstd", Category.WORKSPACE, (long) t * kvHeads)) {
                    Tensor qh = qt.reshape((long) t * heads, headDim), kh = kt.reshape((long) t * kvHeads, headDim);
                    qNorm.forward(s, qh, qh, qRstd);
                    kNorm.forward(s, kh, kh, kRstd);
                }
            }
            rotary.apply(s, qt.reshape(t, heads, headDim), start, false);
            rotary.apply(s, kt.reshape(t, kvHeads, headDim), start, false);
            core.forwardCached(s, qt, keys.slice(0, 0, end), values.slice(0, 0, end), att);
            o.forward(s, att, out);
        }
    }

    /**
     * Adds the parameters' gradients and writes dx (B·T, D) (skipped when dx is null); closes the saved activations as
     * soon as they are used.
     */
    public void backward(Session s, Saved sv, Tensor dout, Tensor dx) {
        long n = sv.x().dim(0);
        int b = sv.batch(), t = sv.seq();
        try (Tensor datt = s.f32("attn.datt", Category.WORKSPACE, n, q.outFeatures());
             Tensor dq = s.f32("attn.dq", Category.WORKSPACE, n, q.outFeatures());
             Tensor dk = s.f32("attn.dk", Category.WORKSPACE, n, k.outFeatures());
             Tensor dv = s.f32("attn.dv", Category.WORKSPACE, n, v.outFeatures())) {
            o.backward(s, sv.att(), dout, datt);
            sv.att().close();
            core.backward(s, b, t, sv.q(), sv.k(), sv.v(), sv.probs(), datt, dq, dk, dv);
            sv.probs().close();
            sv.q().close();
            sv.k().close();
            sv.v().close();
            datt.close();
            rotary.apply(s, dq.reshape(b, t, heads, headDim), true);
            rotary.apply(s, dk.reshape(b, t, kvHeads, headDim), true);
            if (qNorm != null) {
                normBackward(s, qNorm, sv.qRaw(), sv.qRstd(), dq, heads);
                normBackward(s, kNorm, sv.kRaw(), sv.kRstd(), dk, kvHeads);
            }
            q.backward(s, sv.x(), dq, dx);
            if (dx == null) {
                k.backward(s, sv.x(), dk, null);
                v.backward(s, sv.x(), dv, null);
                return;
            }
            try (Tensor tmp = s.f32("attn.dx", Category.WORKSPACE, dx.shape().toArray())) {
                k.backward(s, sv.x(), dk, tmp);
                s.backend().add(dx, tmp, dx);
                v.backward(s, sv.x(), dv, tmp);
                s.backend().add(dx, tmp, dx);
            }
        }
    }

    /** d (rows·h, hd) ← the gradient through a per-head norm of raw; closes raw and rstd. */
    private void normBackward(Session s, RmsNorm norm, Tensor raw, Tensor rstd, Tensor d, int h) {
        long rows = raw.dim(0) * h;
        try (Tensor dRaw = s.f32("attn.dnorm", Category.WORKSPACE, rows, headDim)) {
            norm.backward(s, raw.reshape(rows, headDim), rstd, d.reshape(rows, headDim), dRaw);
            s.backend().copy(dRaw, d.reshape(rows, headDim));
        }
        raw.close();
        rstd.close();
    }

    /** q, k, v, o (each weight then bias), then the q and k norms. */
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>();
        for (Linear l : new Linear[]{q, k, v, o}) {
            all.addAll(l.parameters());
        }
        if (qNorm != null) {
            all.add(qNorm.weight());
            all.add(kNorm.weight());
        }
        return all;
    }

    @Override
    public void close() {
        for (Linear l : new Linear[]{q, k, v, o}) {
            l.close();
        }
        if (qNorm != null) {
            qNorm.weight().close();
            kNorm.weight().close();
        }
    }
}
