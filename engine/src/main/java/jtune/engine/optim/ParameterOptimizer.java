package jtune.engine.optim;

import java.util.List;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;

/**
 * What {@link AdamW} and {@link Sgd} share: the trainable parameters they were given, in order, and one update
 * count for all of them. A subclass allocates its state per parameter of {@link #params} and implements
 * {@link #update}.
 */
abstract sealed class ParameterOptimizer implements Optimizer permits AdamW, Sgd {
    protected final Session session;
    /** The trainable parameters among those given, in the order given. */
    protected final List<Parameter> params;
    private long steps;

    ParameterOptimizer(Session s, List<Parameter> params) {
        this.session = s;
        this.params = params.stream().filter(Parameter::trainable).toList();
    }

    /** Counts the update, then applies it: {@link #update} sees the new count in {@link #steps()}. */
    @Override
    public final void step(float lr) {
        steps++;
        update(lr);
    }

    /** One update at learning rate {@code lr} of every parameter of {@link #params} that has a gradient. */
    protected abstract void update(float lr);

    @Override
    public final long steps() {
        return steps;
    }

    @Override
    public final void restoreSteps(long steps) {
        if (steps < 0) {
            throw new IllegalArgumentException("step count must be >= 0, got " + steps);
        }
        this.steps = steps;
    }

    @Override
    public final void zeroGrad() {
        Gradients.zero(session, params);
    }

    @Override
    public final List<Parameter> parameters() {
        return params;
    }
}
