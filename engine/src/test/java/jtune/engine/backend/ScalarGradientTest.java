package jtune.engine.backend;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.function.DoubleSupplier;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every backward op of the scalar backend is the derivative of its forward op: for a random cotangent dy,
 * the gradient of {@code L(x) = Σ dy ⊙ forward(x)} by central finite differences of the forward op must
 * match what the backward op returns.
 *
 * <p>Step and tolerance: the forward ops return f32, so L carries rounding noise of about
 * {@code 2^-24 · Σ|dy ⊙ y|} over the outputs one input touches, which a step h divides by 2h; the central
 * difference's truncation error is {@code h²/6 · |L'''|}, with |L'''| of order 1 for these smooth ops on inputs
 * of order 1. With h = 1e-2 both stay below 1e-4; the check allows {@code 2e-4 + 2e-3 · |grad|}, far tighter
 * than any wrong formula (a missing term or factor changes gradients of order 0.1 to 1).
 */
class ScalarGradientTest {
    private static final double H = 1e-2;

    private final ScalarBackend backend = new ScalarBackend();
    private final Fixture f = new Fixture(0x5eedL);

    @AfterEach
    void close() {
        f.close();
    }

    /** Σ dy ⊙ y in double. */
    private static double weighted(Tensor dy, Tensor y) {
        float[] a = dy.toFloatArray(), b = y.toFloatArray();
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    /** Checks {@code grad} (same shape as x) against central differences of {@code loss} over each element of x. */
    private static void checkGradient(String what, Tensor x, DoubleSupplier loss, float[] grad) {
        Tensor flat = x.reshape(x.size());
        for (int i = 0; i < grad.length; i++) {
            float orig = flat.get(i);
            float plus = (float) (orig + H), minus = (float) (orig - H);
            flat.set(plus, i);
            double lp = loss.getAsDouble();
            flat.set(minus, i);
            double lm = loss.getAsDouble();
            flat.set(orig, i);
            double fd = (lp - lm) / ((double) plus - minus);
            assertThat((double) grad[i]).as("%s[%d]", what, i).isCloseTo(fd, within(2e-4 + 2e-3 * Math.abs(fd)));
        }
    }

    @Test
    void softmaxBackward() {
        Tensor x = f.random("x", -2, 2, 3, 7), y = f.f32("y", 3, 7), dy = f.random("dy", -1, 1, 3, 7), dx = f.f32("dx", 3, 7);
        backend.softmax(x, y, false);
        backend.softmaxBackward(y, dy, dx);
        float[] grad = dx.toFloatArray();
        checkGradient("softmax dx", x, () -> {
            backend.softmax(x, y, false);
            return weighted(dy, y);
        }, grad);
        // dx may alias dy.
        backend.softmax(x, y, false);
        backend.softmaxBackward(y, dy, dy);
        assertThat(dy.toFloatArray()).containsExactly(grad);
    }

    @Test
    void rmsNormBackwardGivesDxAndAccumulatesDweight() {
        int n = 3, d = 6;
        float eps = 1e-5f;
        Tensor x = f.random("x", -2, 2, n, d), w = f.random("w", -1.5, 1.5, d), dy = f.random("dy", -1, 1, n, d);
        Tensor out = f.f32("out", n, d), rstd = f.f32("rstd", n), dx = f.f32("dx", n, d);
        float[] dw0 = f.uniform(d, -1, 1);
        Tensor dw = f.of("dw", dw0, d);
        backend.rmsNorm(x, w, eps, out, rstd);
        backend.rmsNormBackward(x, w, rstd, dy, dx, dw);
        DoubleSupplier loss = () -> {
            backend.rmsNorm(x, w, eps, out, rstd);
            return weighted(dy, out);
        };
        checkGradient("rmsNorm dx", x, loss, dx.toFloatArray());
        float[] accumulated = dw.toFloatArray(), added = new float[d];
        for (int j = 0; j < d; j++) {
            added[j] = accumulated[j] - dw0[j];
        }
        checkGradient("rmsNorm dweight", w, loss, added);
    }

    @Test
    void siluBackward() {
        Tensor x = f.random("x", -6, 6, 40), y = f.f32("y", 40), dy = f.random("dy", -1, 1, 40), dx = f.f32("dx", 40);
        backend.siluBackward(x, dy, dx);
        float[] grad = dx.toFloatArray();
        checkGradient("silu dx", x, () -> {
            backend.silu(x, y);
            return weighted(dy, y);
        }, grad);
        backend.siluBackward(x, dy, dy);
        assertThat(dy.toFloatArray()).containsExactly(grad);
    }

    @Test
    void swigluBackward() {
        int n = 40;
        Tensor gate = f.random("gate", -6, 6, n), up = f.random("up", -2, 2, n), dout = f.random("dout", -1, 1, n);
        Tensor out = f.f32("out", n), dgate = f.f32("dgate", n), dup = f.f32("dup", n);
        backend.swigluBackward(gate, up, dout, dgate, dup);
        DoubleSupplier loss = () -> {
            backend.swiglu(gate, up, out);
            return weighted(dout, out);
        };
        checkGradient("swiglu dgate", gate, loss, dgate.toFloatArray());
        checkGradient("swiglu dup", up, loss, dup.toFloatArray());
    }

    @Test
    void crossEntropyGradient() {
        int n = 3, v = 7;
        float scale = 0.5f;
        Tensor logits = f.random("logits", -3, 3, n, v), targets = f.ints("targets", 4, -1, 0), dl = f.f32("dl", n, v);
        backend.crossEntropy(logits, targets, dl, scale);
        float[] grad = dl.toFloatArray();
        for (int i = 0; i < grad.length; i++) {
            grad[i] /= scale;
        }
        checkGradient("crossEntropy dlogits", logits, () -> backend.crossEntropy(logits, targets, null, 1f), grad);
        for (int j = 0; j < v; j++) {
            assertThat(dl.get(1, j)).isZero(); // the ignored row
        }
    }

    @Test
    void embeddingBackwardScatterAddsIntoTheTable() {
        int vocab = 5, d = 4;
        Tensor table = f.random("table", -1, 1, vocab, d), ids = f.ints("ids", 3, 1, 3, 0, 3);
        Tensor out = f.f32("out", 5, d), dout = f.random("dout", -1, 1, 5, d);
        float[] dt0 = f.uniform(vocab * d, -1, 1);
        Tensor dtable = f.of("dtable", dt0, vocab, d);
        backend.embeddingBackward(dout, ids, dtable);
        float[] accumulated = dtable.toFloatArray(), added = new float[vocab * d];
        for (int i = 0; i < added.length; i++) {
            added[i] = accumulated[i] - dt0[i];
        }
        checkGradient("embedding dtable", table, () -> {
            backend.embedding(table, ids, out);
            return weighted(dout, out);
        }, added);
        for (int j = 0; j < d; j++) {
            assertThat(added[2 * d + j]).isZero();                  // row 2 is never looked up
            assertThat(accumulated[4 * d + j]).isEqualTo(dt0[4 * d + j]);
        }
    }
}
