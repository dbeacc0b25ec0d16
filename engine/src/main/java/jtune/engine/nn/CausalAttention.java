package jtune.engine.nn;

import jtune.engine.backend.Backend;
import jtune.engine.backend.Checks;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Grouped-query causal attention on a batch of B sequences of T positions. Q is (B·T, H·hd), K and V are (B·T, KVH·hd),
 * rows ordered (b, t) and columns (head, d); query head h reads kv head {@code h / (H/KVH)} (Hugging Face's
 * repeat_kv). Per sequence and head: {@code S = scale · Q_h · K_gᵀ} (T, T), {@code P = causal softmax(S)},
 * {@code O_h = P · V_g}, with {@code scale = 1/sqrt(hd)}.
 *
 * <p>One sequence (B = 1) moves no data to gather heads: for a rank r &lt; H/KVH within a group, the query heads
 * {@code g·(H/KVH) + r} of all groups g form one strided (KVH, T, hd) view of Q whose batch is the kv heads, so each
 * product is one batched {@link Backend#matmul} over KVH heads, H/KVH calls in all. A batch of sequences first copies
 * Q, K and V (and the output gradient) into head-major workspace, (B, heads, T, hd), where sequence and head make one
 * batch dimension of uniform stride, so each product is still H/KVH calls, each over B·KVH heads, instead of
 * B·(H/KVH) small ones (a GPU runs a few large products far faster than many small ones; the copies cost two passes
 * over Q, K, V and O); the results are copied back into the (B·T, heads·hd) layout. P is kept whole, (B, H, T, T),
 * for the backward pass.
 */
public final class CausalAttention {
    /** Cached positions the probability block of {@link #forwardCached} is rounded up to. */
    static final int PROBS_ROUNDING = 256;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final float scale;

    public CausalAttention(int heads, int kvHeads, int headDim) {
        if (heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention heads (" + heads + ") must be a multiple of kv heads (" + kvHeads + ")");
        }
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.scale = (float) (1.0 / Math.sqrt(headDim));
    }

    /** Writes {@code out} (B·T, H·hd) and the attention probabilities {@code probs} (B, H, T, T). */
    public void forward(Session s, int batch, int seq, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor out) {
        check(batch, seq, q, k, v, probs, out);
        Backend be = s.backend();
        int rep = heads / kvHeads;
        if (batch > 1 && contiguous(q, k, v, out)) {
            try (Tensor qh = headMajor(s, "attention.q", q, batch, seq, heads);
                 Tensor kh = headMajor(s, "attention.k", k, batch, seq, kvHeads);
                 Tensor vh = headMajor(s, "attention.v", v, batch, seq, kvHeads);
                 Tensor oh = s.f32("attention.o", Category.WORKSPACE, batch, heads, seq, headDim)) {
                for (int r = 0; r < rep; r++) {
                    be.matmul(group(qh, r), false, flat(kh), true, group(probs, r), scale, 0f);
                }
                be.softmax(probs, probs, true);
                for (int r = 0; r < rep; r++) {
                    be.matmul(group(probs, r), false, flat(vh), false, group(oh, r), 1f, 0f);
                }
                be.copy(oh.transpose(1, 2), out.reshape(batch, seq, heads, headDim));
            }
            return;
        }
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rep; r++) {
                be.matmul(queryHeads(q, b, seq, r), false, kvHeads(k, b, seq), true, scores(probs, b, seq, r), scale, 0f);
            }
        }
        be.softmax(probs, probs, true);
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rep; r++) {
                be.matmul(scores(probs, b, seq, r), false, kvHeads(v, b, seq), false, queryHeads(out, b, seq, r), 1f, 0f);
            }
        }
    }

    /**
     * Attention of T new positions over the S = start + T positions of a key/value cache, forward only: q and out are
     * (T, H·hd), the queries of positions start..S-1; k and v are (S, KVH·hd), the cache's rows for positions 0..S-1
     * (contiguous). New position t attends to cached positions j ≤ start + t. The (H, T, S) probabilities are
     * workspace, in a block whose size is rounded up to {@link #PROBS_ROUNDING} cached positions, so that a sequence
     * growing by one position at a time reuses the memory pool's blocks instead of leaving one of every size behind.
     */
    public void forwardCached(Session s, Tensor q, Tensor k, Tensor v, Tensor out) {
        long t = q.dim(0), all = k.dim(0);
        Checks.f32("attention", q);
        Checks.shape("attention", q, t, (long) heads * headDim);
        Checks.shape("attention", out, t, (long) heads * headDim);
        Checks.shape("attention", k, all, (long) kvHeads * headDim);
        Checks.shape("attention", v, all, (long) kvHeads * headDim);
        if (all < t) {
            throw new IllegalArgumentException("attention: " + t + " new positions cannot attend over only " + all
                    + " cached ones; the cache must hold the new positions too");
        }
        Backend be = s.backend();
        int rep = heads / kvHeads, seq = Math.toIntExact(t), cached = Math.toIntExact(all);
        try (Tensor block = s.f32("attention.probs", Category.WORKSPACE, heads * t * Math.ceilDiv(all, PROBS_ROUNDING)
                * PROBS_ROUNDING)) {
            Tensor probs = block.slice(0, 0, heads * t * all).reshape(heads, t, all);
            for (int r = 0; r < rep; r++) {
                be.matmul(queryHeads(q, 0, seq, r), false, kvHeads(k, 0, cached), true, scores(probs, r), scale, 0f);
            }
            be.softmax(probs, probs, true);
            for (int r = 0; r < rep; r++) {
                be.matmul(scores(probs, r), false, kvHeads(v, 0, cached), false, queryHeads(out, 0, seq, r), 1f, 0f);
            }
        }
    }

    /**
     * From the forward's q, k, v, probs and the output gradient dout, writes dq, dk, dv (the gradients of the q, k, v
     * given to forward): {@code dP = dO·Vᵀ}, {@code dV = Σ_group Pᵀ·dO}, {@code dS = softmax'(P)·dP · scale},
     * {@code dQ = dS·K}, {@code dK = Σ_group dSᵀ·Q}.
     */
    public void backward(Session s, int batch, int seq, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor dout,
                         Tensor dq, Tensor dk, Tensor dv) {
        check(batch, seq, q, k, v, probs, dout);
        Checks.sameF32("attention backward", q, dq);
        Checks.sameF32("attention backward", k, dk, dv);
        Backend be = s.backend();
        int rep = heads / kvHeads;
        if (batch > 1 && contiguous(q, k, v, dout, dq, dk, dv)) {
            try (Tensor dscores = s.f32("attention.dscores", Category.WORKSPACE, batch, heads, seq, seq);
                 Tensor qh = headMajor(s, "attention.q", q, batch, seq, heads);
                 Tensor kh = headMajor(s, "attention.k", k, batch, seq, kvHeads);
                 Tensor vh = headMajor(s, "attention.v", v, batch, seq, kvHeads);
                 Tensor gh = headMajor(s, "attention.dout", dout, batch, seq, heads);
                 Tensor dqh = s.f32("attention.dq", Category.WORKSPACE, batch, heads, seq, headDim);
                 Tensor dkh = s.f32("attention.dk", Category.WORKSPACE, batch, kvHeads, seq, headDim);
                 Tensor dvh = s.f32("attention.dv", Category.WORKSPACE, batch, kvHeads, seq, headDim)) {
                for (int r = 0; r < rep; r++) {
                    Tensor p = group(probs, r), g = group(gh, r);
                    be.matmul(g, false, flat(vh), true, group(dscores, r), 1f, 0f);
                    be.matmul(p, true, g, false, flat(dvh), 1f, r == 0 ? 0f : 1f);
                }
                be.softmaxBackward(probs, dscores, dscores);
                for (int r = 0; r < rep; r++) {
                    Tensor ds = group(dscores, r);
                    be.matmul(ds, false, flat(kh), false, group(dqh, r), scale, 0f);
                    be.matmul(ds, true, group(qh, r), false, flat(dkh), scale, r == 0 ? 0f : 1f);
                }
                be.copy(dqh.transpose(1, 2), dq.reshape(batch, seq, heads, headDim));
                be.copy(dkh.transpose(1, 2), dk.reshape(batch, seq, kvHeads, headDim));
                be.copy(dvh.transpose(1, 2), dv.reshape(batch, seq, kvHeads, headDim));
            }
            return;
        }
        try (Tensor dscores = s.f32("attention.dscores", Category.WORKSPACE, batch, heads, seq, seq)) {
            for (int b = 0; b < batch; b++) {
                for (int r = 0; r < rep; r++) {
                    Tensor p = scores(probs, b, seq, r), g = queryHeads(dout, b, seq, r);
                    be.matmul(g, false, kvHeads(v, b, seq), true, scores(dscores, b, seq, r), 1f, 0f);
                    be.matmul(p, true, g, false, kvHeads(dv, b, seq), 1f, r == 0 ? 0f : 1f);
                }
            }
            be.softmaxBackward(probs, dscores, dscores);
            for (int b = 0; b < batch; b++) {
                for (int r = 0; r < rep; r++) {
                    Tensor ds = scores(dscores, b, seq, r);
                    be.matmul(ds, false, kvHeads(k, b, seq), false, queryHeads(dq, b, seq, r), scale, 0f);
                    be.matmul(ds, true, queryHeads(q, b, seq, r), false, kvHeads(dk, b, seq), scale, r == 0 ? 0f : 1f);
                }
            }
        }
    }

    private static boolean contiguous(Tensor... ts) {
        for (Tensor t : ts) {
            if (!t.isContiguous()) {
                return false;
            }
        }
        return true;
    }

    /** A workspace copy of x (B·T, nh·hd) in head-major order, (B, nh, T, hd). */
    private Tensor headMajor(Session s, String name, Tensor x, int batch, int seq, int nh) {
        Tensor t = s.f32(name, Category.WORKSPACE, batch, nh, seq, headDim);
        s.backend().copy(x.reshape(batch, seq, nh, headDim).transpose(1, 2), t);
        return t;
    }

    /**
     * Heads g·rep + r, g &lt; KVH, of every sequence of x (B, H, T, X) (head-major q, o or their gradients, or the
     * probabilities), as a (B·KVH, T, X) view: sequence b, group g at batch index b·KVH + g, stride rep·T·X.
     */
    private Tensor group(Tensor x, int r) {
        int rep = heads / kvHeads;
        long t = x.dim(2);
        return x.reshape(x.dim(0) * kvHeads, rep * t, x.dim(3)).slice(1, r * t, (r + 1) * t);
    }

    /** Head-major k or v (B, KVH, T, hd), or their gradients, as (B·KVH, T, hd). */
    private static Tensor flat(Tensor x) {
        return x.reshape(x.dim(0) * x.dim(1), x.dim(2), x.dim(3));
    }

    /** Query heads g·rep + r, g &lt; KVH, of sequence b of x (B·T, H·hd), as a (KVH, T, hd) view. */
    private Tensor queryHeads(Tensor x, int b, int seq, int r) {
        int rep = heads / kvHeads;
        return x.reshape(x.dim(0), kvHeads, (long) rep * headDim)
                .slice(0, (long) b * seq, (long) (b + 1) * seq)
                .slice(2, (long) r * headDim, (long) (r + 1) * headDim)
                .transpose(0, 1);
    }

    /** The kv heads of sequence b of x (B·T, KVH·hd), as a (KVH, T, hd) view. */
    private Tensor kvHeads(Tensor x, int b, int seq) {
        return x.reshape(x.dim(0), kvHeads, headDim).slice(0, (long) b * seq, (long) (b + 1) * seq).transpose(0, 1);
    }

    /** The (T, T) matrices of query heads g·rep + r, g &lt; KVH, of sequence b of p (B, H, T, T), as (KVH, T, T). */
    private Tensor scores(Tensor p, int b, int seq, int r) {
        int rep = heads / kvHeads;
        return p.reshape((long) p.dim(0) * kvHeads, (long) rep * seq, seq)
                .slice(0, (long) b * kvHeads, (long) (b + 1) * kvHeads)
                .slice(1, (long) r * seq, (long) (r + 1) * seq);
    }

    /** The (T, S) matrices of query heads g·rep + r, g &lt; KVH, of p (H, T, S), as (KVH, T, S). */
    private Tensor scores(Tensor p, int r) {
        int rep = heads / kvHeads;
        long t = p.dim(1);
        return p.reshape(kvHeads, rep * t, p.dim(2)).slice(1, r * t, (r + 1) * t);
    }

    private void check(int batch, int seq, Tensor q, Tensor k, Tensor v, Tensor probs, Tensor out) {
        long n = (long) batch * seq;
        Checks.f32("attention", q);
        Checks.shape("attention", q, n, (long) heads * headDim);
        Checks.shape("attention", k, n, (long) kvHeads * headDim);
        Checks.shape("attention", v, n, (long) kvHeads * headDim);
        Checks.shape("attention", probs, batch, heads, seq, seq);
        Checks.shape("attention", out, n, (long) heads * headDim);
    }
}
