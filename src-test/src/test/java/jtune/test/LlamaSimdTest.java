package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import jtune.cpu.SimdBackend;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The LLaMA model on the SIMD backend against the same model on the scalar oracle (loss and every gradient), and the
 * output head's row chunking, which only a vocabulary as large as a real one triggers.
 *
 * <p>Tolerances: the SIMD kernels sum in f32 in another order than the oracle's double sums, which moves each op's
 * result by a few f32 ulps; through a two-layer model this gives relative differences of about 1e-6 (the PyTorch
 * fixture test sees the same), so 1e-5 for the loss and 1e-4 for each gradient (‖Δ‖ / ‖oracle‖) leave a wide margin,
 * while a kernel that is wrong on some tail or thread split errs by far more.
 */
class LlamaSimdTest {
    static Stream<Arguments> variants() {
        return Stream.of(
                Arguments.of("grouped-query, untied", new LlamaConfig(64, 96, 2, 4, 2, 16, 70, 24, 10000, null, 1e-5f, false, false, false)),
                Arguments.of("tied, Qwen2 bias", new LlamaConfig(48, 80, 2, 6, 3, 8, 70, 24, 10000, null, 1e-6f, true, true, false)),
                Arguments.of("Qwen3 q/k norm, Llama 3 scaling", new LlamaConfig(64, 96, 2, 4, 1, 12, 70, 24, 500000,
                        new LlamaConfig.RopeScaling(8, 1, 4, 8), 1e-6f, false, false, true)));
    }

    /** Redraws every parameter from {@code seed} so that all paths matter (see LlamaModelGradientTest). */
    static void randomize(List<Parameter> params, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (Parameter p : params) {
            Tensor v = p.value();
            double lo, hi;
            if (p.name().endsWith("norm.weight")) {
                lo = 0.5;
                hi = 1.5;
            } else if (p.name().endsWith(".bias")) {
                lo = -0.3;
                hi = 0.3;
            } else if (p.name().equals("model.embed_tokens.weight")) {
                lo = -1;
                hi = 1;
            } else {
                hi = 1.5 / Math.sqrt(v.dim(1));
                lo = -hi;
            }
            float[] x = new float[Math.toIntExact(v.size())];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) (lo + (hi - lo) * rng.nextDouble());
            }
            v.copyFrom(x);
        }
    }

    static Tensor ints(Session s, String name, int[] values, long... dims) {
        Tensor t = s.i32(name, Category.WORKSPACE, dims);
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = values[i];
        }
        return t.copyFrom(f);
    }

    /** Tokens (B, T) and targets (the next token; the last of each sequence and every seventh ignored). */
    static int[][] batch(int b, int t, int vocab, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] tokens = new int[b * t], targets = new int[b * t];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = rng.nextInt(vocab);
        }
        for (int i = 0; i < tokens.length; i++) {
            targets[i] = (i % t == t - 1 || i % 7 == 3) ? -1 : tokens[i + 1];
        }
        return new int[][]{tokens, targets};
    }

    private record Run(float loss, List<float[]> grads) {
    }

    private static Run run(Backend backend, LlamaConfig c, boolean checkpointing, int[][] data, int b, int t) {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger());
             LlamaModel m = LlamaModel.create(new Session(backend, pool), c, 11, WeightTransform.IDENTITY, checkpointing)) {
            Session s = new Session(backend, pool);
            randomize(m.parameters(), 99);
            float loss = m.forwardBackward(ints(s, "tokens", data[0], b, t), ints(s, "targets", data[1], b, t), 1f);
            assertThat(pool.ledger().current(Category.ACTIVATIONS)).isZero();
            return new Run(loss, m.parameters().stream().map(p -> p.grad(s).toFloatArray()).toList());
        }
    }

    private static double relative(float[] got, float[] want) {
        double diff = 0, norm = 0;
        for (int i = 0; i < got.length; i++) {
            diff += ((double) got[i] - want[i]) * ((double) got[i] - want[i]);
            norm += (double) want[i] * want[i];
        }
        return Math.sqrt(diff / norm);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variants")
    void simdGivesTheOraclesLossAndGradients(String what, LlamaConfig c) {
        int b = 2, t = 19;
        int[][] data = batch(b, t, c.vocab(), 5);
        Run oracle = run(new ScalarBackend(), c, false, data, b, t);
        try (Backend simd = new SimdBackend(2)) {
            for (boolean checkpointing : new boolean[]{false, true}) {
                Run got = run(simd, c, checkpointing, data, b, t);
                String how = what + (checkpointing ? ", checkpointing" : "") + " on " + simd.describe();
                assertThat((double) got.loss()).as("%s: loss", how).isCloseTo(oracle.loss(), within(1e-5 * oracle.loss()));
                double worst = 0;
                for (int i = 0; i < oracle.grads().size(); i++) {
                    double rel = relative(got.grads().get(i), oracle.grads().get(i));
                    assertThat(rel).as("%s: gradient %d", how, i).isLessThan(1e-4);
                    worst = Math.max(worst, rel);
                }
                System.out.printf("%s: loss %.7f (oracle %.7f), largest relative gradient difference %.1e%n", how,
                        got.loss(), oracle.loss(), worst);
            }
        }
    }

    /** The lm_head weight, recording the input of its last forward call (the final hidden states). */
    private static final class Recording implements LinearWeight {
        final DenseWeight base;
        float[] lastInput;

        Recording(DenseWeight base) {
            this.base = base;
        }

        public long inFeatures() {
            return base.inFeatures();
        }

        public long outFeatures() {
            return base.outFeatures();
        }

        public void forward(Session s, Tensor x, Tensor y) {
            lastInput = x.toFloatArray();
            base.forward(s, x, y);
        }

        public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
            base.backward(s, x, dy, dx);
        }

        public List<Parameter> parameters() {
            return base.parameters();
        }
    }

    /**
     * A 32000-token vocabulary over 1100 positions is 35M logits, more than one chunk of the head (16M): the head runs
     * over three chunks, the last one short. The loss must still be the mean cross-entropy of the whole logits matrix,
     * the head's gradient {@code Σ_rows (softmax − onehot)ᵀ · h / count} from those logits and the hidden states h, and
     * the gradient flowing back into the network (checked along a random direction of the final norm's weight by
     * finite differences, Richardson-extrapolated) must match the loss's change.
     */
    @Test
    void largeVocabularyRunsTheHeadInChunksWithTheSameLossAndGradients() {
        int t = 1100, v = 32000, d = 8;
        LlamaConfig c = new LlamaConfig(d, 16, 1, 2, 1, 4, v, t, 10000, null, 1e-5f, false, false, false);
        int[][] data = batch(1, t, v, 17);
        Recording[] head = new Recording[1];
        WeightTransform record = (s, layer, base) -> layer.equals("lm_head") ? (head[0] = new Recording(base)) : base;
        try (Backend simd = new SimdBackend(2); MemoryPool pool = new MemoryPool(new MemoryLedger());
             LlamaModel m = LlamaModel.create(new Session(simd, pool), c, 3, record, false)) {
            Session s = new Session(simd, pool);
            randomize(m.parameters(), 23);
            Tensor tokens = ints(s, "tokens", data[0], 1, t), targets = ints(s, "targets", data[1], 1, t);
            float[] logits;
            try (Tensor out = s.f32("logits", Category.WORKSPACE, t, v)) {
                m.logits(tokens, out);
                logits = out.toFloatArray();
            }
            float[] h = head[0].lastInput;
            double total = 0;
            int count = 0;
            double[] expectedGrad = new double[v * d];
            for (int r = 0; r < t; r++) {
                int target = data[1][r];
                if (target < 0) {
                    continue;
                }
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int j = 0; j < v; j++) {
                    max = Math.max(max, logits[r * v + j]);
                }
                for (int j = 0; j < v; j++) {
                    sum += Math.exp(logits[r * v + j] - max);
                }
                total += max + Math.log(sum) - logits[r * v + target];
                count++;
                for (int j = 0; j < v; j++) {
                    double dl = Math.exp(logits[r * v + j] - max) / sum - (j == target ? 1 : 0);
                    for (int k = 0; k < d; k++) {
                        expectedGrad[j * d + k] += dl * h[r * d + k];
                    }
                }
            }
            double mean = total / count;
            assertThat((double) m.loss(tokens, targets)).isCloseTo(mean, within(1e-5 * mean));
            assertThat((double) m.forwardBackward(tokens, targets, 1f)).isCloseTo(mean, within(1e-5 * mean));

            Parameter lmHead = m.parameters().getLast(), norm = m.parameters().get(m.parameters().size() - 2);
            assertThat(lmHead.name()).isEqualTo("lm_head.weight");
            assertThat(norm.name()).isEqualTo("model.norm.weight");
            float[] want = new float[expectedGrad.length];
            for (int i = 0; i < want.length; i++) {
                want[i] = (float) (expectedGrad[i] / count);
            }
            assertThat(relative(lmHead.grad(s).toFloatArray(), want)).as("lm_head gradient").isLessThan(1e-4);

            float[] g = norm.grad(s).toFloatArray(), w0 = norm.value().toFloatArray(), u = new float[d];
            SplittableRandom rng = new SplittableRandom(31);
            double predicted = 0;
            for (int k = 0; k < d; k++) {
                u[k] = rng.nextBoolean() ? 1f : -1f;
                predicted += (double) g[k] * u[k];
            }
            double step = 2e-2;
            double[] central = new double[2];
            for (int i = 0; i < 2; i++) {
                double hh = step / (1 + i);
                double[] l = new double[2];
                for (int sign = 0; sign < 2; sign++) {
                    float[] w = w0.clone();
                    for (int k = 0; k < d; k++) {
                        w[k] += (float) ((sign == 0 ? hh : -hh) * u[k]);
                    }
                    norm.value().copyFrom(w);
                    l[sign] = m.loss(tokens, targets);
                }
                central[i] = (l[0] - l[1]) / (2 * hh);
            }
            norm.value().copyFrom(w0);
            double fd = (4 * central[1] - central[0]) / 3;
            System.out.printf("chunked head: loss %.6f, lm_head gradient relative difference %.1e, final norm gradient "
                    + "along a direction %.6e, finite differences %.6e%n", mean, relative(lmHead.grad(s).toFloatArray(), want),
                    predicted, fd);
            assertThat(predicted).as("final norm gradient along a direction").isCloseTo(fd, within(1e-3 * Math.abs(fd) + 1e-5));
        }
    }
}
