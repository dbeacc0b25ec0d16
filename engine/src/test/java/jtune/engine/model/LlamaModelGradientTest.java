package jtune.engine.model;

import java.util.List;
import java.util.stream.Stream;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The whole model's gradient, from {@link LlamaModel#forwardBackward}, against finite differences of
 * {@link LlamaModel#loss} over a sample of entries of every parameter, for each variant of the family. Parameters are
 * redrawn large enough that every path matters (attention far from uniform, norms away from 1), and one target is
 * ignored. The gradient scale is 2, so the gradients must be twice the loss's derivatives.
 *
 * <p>Tolerance: the loss (a mean cross-entropy of order 2) goes through some fifty f32 ops, so its rounding noise is
 * larger than a single layer's; the largest error seen over every sampled entry of these variants was 6e-5 (see
 * {@link GradCheck} for the step), and the check allows {@code 2e-4 + 2e-3 · |fd|}.
 */
class LlamaModelGradientTest {
    private final GradCheck g = new GradCheck(0x11a3aL);

    @AfterEach
    void close() {
        g.close();
    }

    static Stream<Arguments> variants() {
        return Stream.of(
                Arguments.of("grouped-query, untied", new LlamaConfig(16, 24, 2, 4, 2, 4, 11, 8, 10000, null, 1e-5f, false, false, false)),
                Arguments.of("tied embeddings", new LlamaConfig(16, 24, 2, 4, 4, 4, 11, 8, 10000, null, 1e-5f, true, false, false)),
                Arguments.of("Qwen2 q/k/v bias", new LlamaConfig(16, 24, 2, 4, 2, 4, 11, 8, 10000, null, 1e-6f, true, true, false)),
                Arguments.of("Qwen3 q/k norm, head dim apart", new LlamaConfig(16, 24, 2, 4, 2, 6, 11, 8, 1000, null, 1e-6f, false, false, true)),
                Arguments.of("Llama 3 rope scaling, one kv head", new LlamaConfig(16, 24, 2, 4, 1, 4, 11, 8, 500000,
                        new LlamaConfig.RopeScaling(8, 1, 4, 4), 1e-5f, false, false, false)));
    }

    /** Redraws every parameter: norms in [0.5, 1.5), biases in ±0.3, the embedding in ±1, weights in ±1.5/sqrt(in). */
    static void randomize(GradCheck g, List<Parameter> params) {
        for (Parameter p : params) {
            Tensor v = p.value();
            if (p.name().endsWith("norm.weight")) {
                g.fill(v, 0.5, 1.5);
            } else if (p.name().endsWith(".bias")) {
                g.fill(v, -0.3, 0.3);
            } else if (p.name().equals("model.embed_tokens.weight")) {
                g.fill(v, -1, 1);
            } else {
                double a = 1.5 / Math.sqrt(v.dim(1));
                g.fill(v, -a, a);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variants")
    void gradientsOfEveryParameterMatchFiniteDifferences(String what, LlamaConfig c) {
        try (LlamaModel m = LlamaModel.create(g.session, c, 7, WeightTransform.IDENTITY, false)) {
            randomize(g, m.parameters());
            Tensor tokens = g.ints("tokens", new int[]{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, 2, 5);
            Tensor targets = g.ints("targets", new int[]{1, 4, 1, 5, 9, 2, 6, -1, 3, 5}, 2, 5);
            m.forwardBackward(tokens, targets, 2f);
            for (Parameter p : m.parameters()) {
                float[] grad = p.grad(g.session).toFloatArray();
                for (int i = 0; i < grad.length; i++) {
                    grad[i] /= 2;
                }
                GradCheck.check(what + ": " + p.name(), p.value(), grad, g.sample(p.value().size(), 4), 2e-4, 2e-3,
                        () -> m.loss(tokens, targets));
            }
        }
    }
}
