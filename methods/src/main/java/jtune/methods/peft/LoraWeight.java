package jtune.methods.peft;

import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;
import jtune.engine.backend.Backend;
import jtune.engine.backend.Checks;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * LoRA (Hu et al. 2021) over any frozen base weight, PEFT's formula
 * {@code y = base(x) + scaling · (drop(x) Aᵀ) Bᵀ} with A (r, in) and B (out, r) trainable f32,
 * {@code scaling = alpha / r} ({@code alpha / sqrt(r)} with rsLoRA) and {@code drop} the shared {@link Dropout}. The
 * base may be dense, integer-quantized or NF4 (QLoRA); it is never changed except by {@link #merge}. The product
 * {@code B A} is never formed: the update goes through the (N, r) intermediate.
 *
 * <p>Initialisation as PEFT's: A from {@code kaiming_uniform_(a = sqrt(5))}, i.e. uniform in
 * {@code [−1/sqrt(in), 1/sqrt(in)]}, drawn row-major from the generator given; B zero, so the adapter starts as the
 * identity change. Parameters: the base's, then {@code <layer>.lora_A.weight} and {@code <layer>.lora_B.weight}
 * (trainable, with weight decay). Owns the base.
 */
public final class LoraWeight implements LinearWeight {
    private final LinearWeight base;
    private final Parameter a;
    private final Parameter b;
    private final float scaling;
    private final Dropout dropout;
    private final int id;
    private long passes;
    private boolean merged;

    /**
     * @param base    the frozen weight (out, in)
     * @param a       A (r, in), trainable f32
     * @param b       B (out, r), trainable f32
     * @param scaling the update's factor
     * @param dropout the shared dropout
     * @param id      this adapter's index among the model's, which keys its dropout masks
     */
    public LoraWeight(LinearWeight base, Parameter a, Parameter b, double scaling, Dropout dropout, int id) {
        long r = a.value().dim(0);
        if (a.value().rank() != 2 || b.value().rank() != 2 || a.value().dim(1) != base.inFeatures()
                || b.value().dim(0) != base.outFeatures() || b.value().dim(1) != r) {
            throw new IllegalArgumentException("LoRA factors for a (" + base.outFeatures() + ", " + base.inFeatures()
                    + ") weight must be A (r, " + base.inFeatures() + ") and B (" + base.outFeatures() + ", r), got "
                    + a.value().shape() + " and " + b.value().shape());
        }
        this.base = base;
        this.a = a;
        this.b = b;
        this.scaling = (float) scaling;
        this.dropout = dropout;
        this.id = id;
    }

    /** A new adapter over {@code base} for layer {@code layer}, initialised as PEFT does (see the class comment). */
    public static LoraWeight create(Session s, String layer, LinearWeight base, LoraConfig c, RandomGenerator rng,
                                    Dropout dropout, int id) {
        long in = base.inFeatures(), out = base.outFeatures();
        Tensor ta = s.f32(layer + ".lora_A.weight", Category.TRAINABLE_PARAMETERS, c.rank(), in);
        Tensor tb = s.f32(layer + ".lora_B.weight", Category.TRAINABLE_PARAMETERS, out, c.rank());
        float[] init = new float[Math.toIntExact(ta.size())];
        double bound = 1 / Math.sqrt(in);
        for (int i = 0; i < init.length; i++) {
            init[i] = (float) ((2 * rng.nextDouble() - 1) * bound);
        }
        ta.copyFrom(init);
        return new LoraWeight(base, new Parameter(ta.name(), ta, true, true), new Parameter(tb.name(), tb, true, true),
                c.scaling(), dropout, id);
    }

    public LinearWeight base() {
        return base;
    }

    /** A (r, in). */
    public Parameter a() {
        return a;
    }

    /** B (out, r). */
    public Parameter b() {
        return b;
    }

    public float scaling() {
        return scaling;
    }

    public long rank() {
        return a.value().dim(0);
    }

    public boolean merged() {
        return merged;
    }

    /**
     * Adds {@code scaling · B A} into a dense base's weight, after which the forward is the base's alone (inference
     * without the adapter's cost). Only a dense base can take it exactly; a quantized base would have to be
     * re-quantized, which changes it.
     */
    public void merge(Session s) {
        if (merged) {
            throw new IllegalStateException("the LoRA adapter of " + a.name() + " is already merged");
        }
        s.backend().matmul(b.value(), false, a.value(), false, dense().weight().value(), scaling, 1f);
        merged = true;
    }

    /** Subtracts {@code scaling · B A} from the base again: the weight before {@link #merge}, up to rounding. */
    public void unmerge(Session s) {
        if (!merged) {
            throw new IllegalStateException("the LoRA adapter of " + a.name() + " is not merged");
        }
        s.backend().matmul(b.value(), false, a.value(), false, dense().weight().value(), -scaling, 1f);
        merged = false;
    }

    private DenseWeight dense() {
        if (!(base instanceof DenseWeight d)) {
            throw new IllegalStateException("a LoRA adapter merges into a dense f32 base only; the base of "
                    + a.name() + " is " + base.getClass().getSimpleName());
        }
        return d;
    }

    @Override
    public long inFeatures() {
        return base.inFeatures();
    }

    @Override
    public long outFeatures() {
        return base.outFeatures();
    }

    @Override
    public void forward(Session s, Tensor x, Tensor y) {
        base.forward(s, x, y);
        if (merged) {
            return;
        }
        try (Tensor mask = mask(s, x); Tensor xd = dropped(s, x, mask);
             Tensor t = s.f32("lora.xa", Category.WORKSPACE, x.dim(0), rank())) {
            Backend be = s.backend();
            be.matmul(xd == null ? x : xd, false, a.value(), true, t, 1f, 0f);
            be.matmul(t, false, b.value(), true, y, scaling, 1f);
        }
    }

    @Override
    public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
        if (merged) {
            throw new IllegalStateException("the LoRA adapter of " + a.name() + " is merged, which is for inference; "
                    + "unmerge it to train");
        }
        base.backward(s, x, dy, dx);
        Backend be = s.backend();
        long n = x.dim(0);
        try (Tensor mask = mask(s, x); Tensor xd = dropped(s, x, mask);
             Tensor t = s.f32("lora.xa", Category.WORKSPACE, n, rank());
             Tensor g = s.f32("lora.dt", Category.WORKSPACE, n, rank())) {
            Tensor in = xd == null ? x : xd;
            be.matmul(in, false, a.value(), true, t, 1f, 0f);
            // dB (out, r) += scaling · dyᵀ t;  dt = scaling · dy B (N, r);  dA (r, in) += dtᵀ · drop(x)
            be.matmul(dy, true, t, false, b.grad(s), scaling, 1f);
            be.matmul(dy, false, b.value(), false, g, scaling, 0f);
            be.matmul(g, true, in, false, a.grad(s), 1f, 1f);
            if (dx != null) {
                Checks.shape("LoRA linear backward", dx, n, inFeatures());
                if (mask == null) {
                    be.matmul(g, false, a.value(), false, dx, 1f, 1f);
                } else {
                    try (Tensor d = s.f32("lora.dxd", Category.WORKSPACE, n, inFeatures())) {
                        be.matmul(g, false, a.value(), false, d, 1f, 0f);
                        be.mul(d, mask, d);
                        be.add(dx, d, dx);
                    }
                }
            }
        }
        if (dropout.active()) {
            passes++;
        }
    }

    /**
     * Sets the count of training passes that keys the dropout masks, after a checkpoint of a run that made {@code
     * passes} updates of one batch each has been loaded, so the masks continue as in an uninterrupted run.
     */
    public void restorePasses(long passes) {
        this.passes = passes;
    }

    /** This pass's dropout mask (N, in), or null when dropout is off. */
    private Tensor mask(Session s, Tensor x) {
        if (!dropout.active()) {
            return null;
        }
        float[] m = new float[Math.toIntExact(x.size())];
        dropout.mask(id, passes, m);
        return s.f32("lora.mask", Category.WORKSPACE, x.dim(0), x.dim(1)).copyFrom(m);
    }

    /** {@code x ⊙ mask}, or null without a mask. */
    private static Tensor dropped(Session s, Tensor x, Tensor mask) {
        if (mask == null) {
            return null;
        }
        Tensor xd = s.f32("lora.dropped", Category.WORKSPACE, x.dim(0), x.dim(1));
        s.backend().mul(x, mask, xd);
        return xd;
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(base.parameters());
        all.add(a);
        all.add(b);
        return all;
    }

    @Override
    public void close() {
        base.close();
        a.close();
        b.close();
    }
}
