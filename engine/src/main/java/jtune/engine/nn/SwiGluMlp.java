package jtune.engine.nn;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/** LLaMA's feed-forward block: {@code y = down(silu(gate(x)) ⊙ up(x))}; x and y are (N, D), the hidden layer (N, F). */
public final class SwiGluMlp implements AutoCloseable {
    private final Linear gate;
    private final Linear up;
    private final Linear down;

    public SwiGluMlp(Linear gate, Linear up, Linear down) {
        if (gate.outFeatures() != up.outFeatures() || gate.inFeatures() != up.inFeatures()
                || down.inFeatures() != gate.outFeatures() || down.outFeatures() != gate.inFeatures()) {
            throw new IllegalArgumentException("SwiGLU MLP: gate and up must be (F, D) and down (D, F), got gate ("
                    + gate.outFeatures() + ", " + gate.inFeatures() + "), up (" + up.outFeatures() + ", "
                    + up.inFeatures() + "), down (" + down.outFeatures() + ", " + down.inFeatures() + ")");
        }
        this.gate = gate;
        this.up = up;
        this.down = down;
    }

    /** What backward needs: the input (owned by the caller) and the hidden activations (owned here). */
    public record Saved(Tensor x, Tensor gate, Tensor up, Tensor act) implements AutoCloseable {
        @Override
        public void close() {
            gate.close();
            up.close();
            act.close();
        }
    }

    /** Writes out; the hidden activations are allocated under {@code keep} and returned for the backward pass. */
    public Saved forward(Session s, Tensor x, Tensor out, Category keep) {
        long n = x.dim(0), f = gate.outFeatures();
        Tensor g = s.f32("mlp.gate", keep, n, f), u = s.f32("mlp.up", keep, n, f), a = s.f32("mlp.act", keep, n, f);
        gate.forward(s, x, g);
        up.forward(s, x, u);
        s.backend().swiglu(g, u, a);
        down.forward(s, a, out);
        return new Saved(x, g, u, a);
    }

    /** Adds the weights' gradients and writes dx (N, D); closes the saved activations as soon as they are used. */
    public void backward(Session s, Saved saved, Tensor dout, Tensor dx) {
        long n = saved.x().dim(0), f = gate.outFeatures();
        try (Tensor dact = s.f32("mlp.dact", Category.WORKSPACE, n, f);
             Tensor dgate = s.f32("mlp.dgate", Category.WORKSPACE, n, f);
             Tensor dup = s.f32("mlp.dup", Category.WORKSPACE, n, f)) {
            down.backward(s, saved.act(), dout, dact);
            saved.act().close();
            s.backend().swigluBackward(saved.gate(), saved.up(), dact, dgate, dup);
            saved.gate().close();
            saved.up().close();
            dact.close();
            gate.backward(s, saved.x(), dgate, dx);
            dgate.close();
            if (dx == null) {
                up.backward(s, saved.x(), dup, null);
                return;
            }
            try (Tensor tmp = s.f32("mlp.dx", Category.WORKSPACE, dx.shape().toArray())) {
                up.backward(s, saved.x(), dup, tmp);
                s.backend().add(dx, tmp, dx);
            }
        }
    }

    /** gate, up, down. */
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>(gate.parameters());
        all.addAll(up.parameters());
        all.addAll(down.parameters());
        return all;
    }

    @Override
    public void close() {
        gate.close();
        up.close();
        down.close();
    }
}
