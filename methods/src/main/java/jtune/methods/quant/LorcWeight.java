package jtune.methods.quant;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.backend.Checks;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * ZeroQuant-V2's low-rank compensation (LoRC, reference §4) over a quantized base: {@code W_eff = Ŵ + Û V̂} with the
 * frozen f32 factors Û (out, r) and V̂ (r, in) of the quantization error, so
 * {@code y = x Ŵᵀ + (x V̂ᵀ) Ûᵀ}, never forming Û V̂. Backward gives only {@code dx = dy Ŵ + (dy Û) V̂} (and whatever
 * the base's own trainable parts need). Owns the base and the factors.
 */
public final class LorcWeight implements LinearWeight {
    private final LinearWeight base;
    private final Parameter u;
    private final Parameter v;

    /** {@code u} (out, r) and {@code v} (r, in) frozen f32 factors matching {@code base}'s shape. */
    public LorcWeight(LinearWeight base, Parameter u, Parameter v) {
        long r = v.value().dim(0);
        if (u.value().rank() != 2 || v.value().rank() != 2 || u.value().dim(0) != base.outFeatures()
                || u.value().dim(1) != r || v.value().dim(1) != base.inFeatures()) {
            throw new IllegalArgumentException("LoRC factors for a (" + base.outFeatures() + ", " + base.inFeatures()
                    + ") weight must be (" + base.outFeatures() + ", r) and (r, " + base.inFeatures() + "), got "
                    + u.value().shape() + " and " + v.value().shape());
        }
        this.base = base;
        this.u = u;
        this.v = v;
    }

    /** Builds the weight from {@link LowRank} factors, allocated as frozen weights named {@code layer.lorc_u/v}. */
    public static LorcWeight of(Session s, String layer, LinearWeight base, LowRank f) {
        Tensor tu = s.f32(layer + ".lorc_u", Category.FROZEN_WEIGHTS, f.rows(), f.rank()).copyFrom(f.u());
        Tensor tv = s.f32(layer + ".lorc_v", Category.FROZEN_WEIGHTS, f.rank(), f.cols()).copyFrom(f.v());
        return new LorcWeight(base, new Parameter(tu.name(), tu, false, false), new Parameter(tv.name(), tv, false, false));
    }

    public LinearWeight base() {
        return base;
    }

    /** The frozen factor Û (out, r). */
    public Parameter u() {
        return u;
    }

    /** The frozen factor V̂ (r, in). */
    public Parameter v() {
        return v;
    }

    /** Rank of the correction. */
    public long rank() {
        return v.value().dim(0);
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
        try (Tensor t = s.f32("lorc.xv", Category.WORKSPACE, x.dim(0), rank())) {
            s.backend().matmul(x, false, v.value(), true, t, 1f, 0f);
            s.backend().matmul(t, false, u.value(), true, y, 1f, 1f);
        }
    }

    @Override
    public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
        base.backward(s, x, dy, dx);
        if (dx != null) {
            Checks.shape("LoRC linear backward", dx, x.dim(0), inFeatures());
            try (Tensor t = s.f32("lorc.dyu", Category.WORKSPACE, dy.dim(0), rank())) {
                s.backend().matmul(dy, false, u.value(), false, t, 1f, 0f);
                s.backend().matmul(t, false, v.value(), false, dx, 1f, 1f);
            }
        }
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(base.parameters());
        all.add(u);
        all.add(v);
        return all;
    }

    @Override
    public void close() {
        base.close();
        u.close();
        v.close();
    }
}
