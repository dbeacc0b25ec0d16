package jtune.engine.optim;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.AdamWStep;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * AdamW (Loshchilov and Hutter), as PyTorch's {@code torch.optim.AdamW}: decoupled weight decay and bias
 * correction, one fused {@link jtune.engine.backend.Backend#adamw} call per parameter. Weight decay applies
 * only to the parameters whose {@link Parameter#decay()} is true (not to norms and biases): the two parameter
 * groups of the usual recipe. The moments m and v are allocated at construction, zero-filled, under
 * {@link Category#OPTIMIZER_STATE}. One step count is shared by all parameters (PyTorch keeps one per
 * parameter; they agree whenever every parameter has a gradient at every step).
 */
public final class AdamW extends ParameterOptimizer {
    private final List<Tensor> m = new ArrayList<>();
    private final List<Tensor> v = new ArrayList<>();
    private final float beta1;
    private final float beta2;
    private final float eps;
    private final float weightDecay;

    public AdamW(Session s, List<Parameter> params, float beta1, float beta2, float eps, float weightDecay) {
        super(s, params);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("AdamW needs betas in [0, 1), eps > 0 and weight decay >= 0, got betas "
                    + beta1 + ", " + beta2 + ", eps " + eps + ", weight decay " + weightDecay);
        }
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        for (Parameter p : this.params) {
            m.add(s.pool().allocate(p.name() + ".exp_avg", p.value().dtype(), Category.OPTIMIZER_STATE, p.value().shape()));
            v.add(s.pool().allocate(p.name() + ".exp_avg_sq", p.value().dtype(), Category.OPTIMIZER_STATE, p.value().shape()));
        }
    }

    @Override
    public String name() {
        return "adamw";
    }

    @Override
    protected void update(float lr) {
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            Tensor g = p.gradOrNull();
            if (g != null) {
                AdamWStep st = new AdamWStep(lr, beta1, beta2, eps, p.decay() ? weightDecay : 0f, steps());
                session.backend().adamw(p.value(), g, m.get(i), v.get(i), st);
            }
        }
    }

    @Override
    public Map<String, Tensor> state() {
        Map<String, Tensor> s = new LinkedHashMap<>();
        for (int i = 0; i < params.size(); i++) {
            s.put("optimizer.exp_avg." + params.get(i).name(), m.get(i));
            s.put("optimizer.exp_avg_sq." + params.get(i).name(), v.get(i));
        }
        return s;
    }

    @Override
    public void close() {
        m.forEach(Tensor::close);
        v.forEach(Tensor::close);
    }
}
