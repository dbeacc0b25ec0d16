package jtune.engine.optim;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Stochastic gradient descent with momentum, as PyTorch's {@code torch.optim.SGD} (no dampening, no Nesterov):
 * {@code d = g + wd·p}, {@code buf = μ·buf + d}, {@code p = p − lr·buf}; without momentum {@code p = p − lr·d}.
 * PyTorch sets {@code buf = d} at a parameter's first step; a zero-filled buffer gives exactly that. Weight
 * decay applies only where {@link Parameter#decay()} is true. The gradient is left as it was.
 */
public final class Sgd extends ParameterOptimizer {
    private final List<Tensor> momentumBuffers = new ArrayList<>();
    private final float momentum;
    private final float weightDecay;

    public Sgd(Session s, List<Parameter> params, float momentum, float weightDecay) {
        super(s, params);
        if (!(momentum >= 0 && momentum < 1) || !(weightDecay >= 0)) {
            throw new IllegalArgumentException("SGD needs momentum in [0, 1) and weight decay >= 0, got momentum "
                    + momentum + " and weight decay " + weightDecay);
        }
        this.momentum = momentum;
        this.weightDecay = weightDecay;
        for (Parameter p : this.params) {
            if (momentum > 0) {
                momentumBuffers.add(s.pool().allocate(p.name() + ".momentum_buffer", p.value().dtype(),
                        Category.OPTIMIZER_STATE, p.value().shape()));
            }
        }
    }

    @Override
    public String name() {
        return "sgd";
    }

    @Override
    protected void update(float lr) {
        var b = session.backend();
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            Tensor g = p.gradOrNull();
            if (g == null) {
                continue;
            }
            float wd = p.decay() ? weightDecay : 0f;
            if (momentum > 0) {
                Tensor buf = momentumBuffers.get(i);
                b.scale(buf, momentum, buf);
                b.axpy(1f, g, buf);
                if (wd != 0f) {
                    b.axpy(wd, p.value(), buf);
                }
                b.axpy(-lr, buf, p.value());
            } else {
                if (wd != 0f) {
                    b.scale(p.value(), 1f - lr * wd, p.value());
                }
                b.axpy(-lr, g, p.value());
            }
        }
    }

    @Override
    public Map<String, Tensor> state() {
        Map<String, Tensor> s = new LinkedHashMap<>();
        for (int i = 0; i < momentumBuffers.size(); i++) {
            s.put("optimizer.momentum_buffer." + params.get(i).name(), momentumBuffers.get(i));
        }
        return s;
    }

    @Override
    public void close() {
        momentumBuffers.forEach(Tensor::close);
    }
}
