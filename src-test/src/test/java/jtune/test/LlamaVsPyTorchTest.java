package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Stream;
import jtune.cpu.SimdBackend;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * jtune's LLaMA against PyTorch: the fixtures of src-test/src/test/python/make_llama_fixtures.py hold a tiny model's
 * weights, a batch with ignored targets, and what PyTorch (Hugging Face's LlamaForCausalLM semantics) computed from
 * them in float32: logits, loss, every gradient, and the losses and weights of 10 AdamW steps. Each variant (GQA
 * untied, tied, Qwen2 bias, Qwen3 q/k norm, Llama 3 rope scaling) runs on the scalar and on the SIMD backend.
 *
 * <p>Errors are relative, ‖got − want‖ / ‖want‖ over a whole tensor. The bounds leave a wide margin over rounding:
 * PyTorch's own float32 results lie within 2e-6 (gradients) and 4e-7 (the rest) of a float64 run of the same model
 * (printed by the script), and two float32 implementations summing in different orders differ by about as much.
 * A wrong formula (a missing bias, a misplaced RoPE pair, a wrong repeat of kv heads) errs by 1e-2 or more.
 */
class LlamaVsPyTorchTest {
    static final String[] VARIANTS = {"gqa", "tied", "qwen2", "qwen3", "llama3"};
    static final double LOGITS_AND_LOSS = 1e-5;
    static final double GRADIENTS = 1e-4;
    /** Ten AdamW steps compound rounding; Adam's division by sqrt(v) amplifies it where a gradient is small. */
    static final double FINAL_WEIGHTS = 1e-4;

    static Stream<Arguments> cases() {
        return Stream.of(VARIANTS).flatMap(v -> Stream.of(Arguments.of(v, "scalar"), Arguments.of(v, "cpu-simd")));
    }

    static Backend backend(String name) {
        return name.equals("scalar") ? new ScalarBackend() : new SimdBackend(2);
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("cases")
    void matchesPyTorch(String variant, String backendName) {
        SafetensorsFixture f = SafetensorsFixture.load("llama-" + variant + ".safetensors");
        LlamaConfig config = config(f);
        try (Backend backend = backend(backendName); MemoryPool pool = new MemoryPool(new MemoryLedger());
             LlamaModel model = LlamaModel.create(new Session(backend, pool), config, 0, WeightTransform.IDENTITY, false)) {
            Session s = new Session(backend, pool);
            String what = variant + " on " + backend.describe();
            List<Parameter> params = model.parameters();
            assertThat(params.stream().map(Parameter::name).toList()).as("%s: parameter names", what)
                    .containsExactlyInAnyOrderElementsOf(weightNames(f));
            for (Parameter p : params) {
                assertThat(p.value().shape().toArray()).as("%s: shape of %s", what, p.name()).isEqualTo(f.shape(p.name()));
                p.value().copyFrom(f.floats(p.name()));
            }
            long[] bt = f.shape("tokens");
            Tensor tokens = s.i32("tokens", Category.WORKSPACE, bt).copyFrom(asFloats(f.ints("tokens")));
            Tensor targets = s.i32("targets", Category.WORKSPACE, bt).copyFrom(asFloats(f.ints("targets")));
            Errors errors = new Errors(what);

            Tensor logits = s.f32("logits", Category.WORKSPACE, bt[0] * bt[1], config.vocab());
            model.logits(tokens, logits);
            errors.check("logits", logits.toFloatArray(), f.floats("logits"), LOGITS_AND_LOSS);
            errors.check("loss (forward only)", model.loss(tokens, targets), f.scalar("loss"), LOGITS_AND_LOSS);

            float loss = model.forwardBackward(tokens, targets, 1f);
            errors.check("loss (forward-backward)", loss, f.scalar("loss"), LOGITS_AND_LOSS);
            for (Parameter p : params) {
                assertThat(p.gradOrNull()).as("%s: gradient of %s", what, p.name()).isNotNull();
                errors.check("grad " + p.name(), p.gradOrNull().toFloatArray(), f.floats("grad." + p.name()), GRADIENTS);
            }

            float[] losses = f.floats("losses");
            try (AdamW adamw = new AdamW(s, params, (float) f.metaDouble("adamw.beta1"),
                    (float) f.metaDouble("adamw.beta2"), (float) f.metaDouble("adamw.eps"),
                    (float) f.metaDouble("adamw.weight_decay"))) {
                for (int step = 0; step < losses.length; step++) {
                    adamw.zeroGrad();
                    float l = model.forwardBackward(tokens, targets, 1f);
                    errors.check("AdamW loss " + step, l, losses[step], LOGITS_AND_LOSS);
                    adamw.step((float) f.metaDouble("adamw.lr"));
                }
            }
            for (Parameter p : params) {
                errors.check("final " + p.name(), p.value().toFloatArray(), f.floats("final." + p.name()), FINAL_WEIGHTS);
            }
            errors.report();
        }
    }

    static LlamaConfig config(SafetensorsFixture f) {
        LlamaConfig.RopeScaling scaling = null;
        if (f.hasMeta("rope_scaling.rope_type")) {
            assertThat(f.meta("rope_scaling.rope_type")).isEqualTo("llama3");
            scaling = new LlamaConfig.RopeScaling(f.metaDouble("rope_scaling.factor"),
                    f.metaDouble("rope_scaling.low_freq_factor"), f.metaDouble("rope_scaling.high_freq_factor"),
                    f.metaInt("rope_scaling.original_max_position_embeddings"));
        }
        return new LlamaConfig(f.metaInt("hidden_size"), f.metaInt("intermediate_size"), f.metaInt("num_hidden_layers"),
                f.metaInt("num_attention_heads"), f.metaInt("num_key_value_heads"), f.metaInt("head_dim"),
                f.metaInt("vocab_size"), f.metaInt("max_position_embeddings"), f.metaDouble("rope_theta"), scaling,
                (float) f.metaDouble("rms_norm_eps"), f.metaBoolean("tie_word_embeddings"),
                f.metaBoolean("attention_bias"), f.metaBoolean("qk_norm"));
    }

    /** The initial weights: the tensors named as Hugging Face names them (not data, not results). */
    static List<String> weightNames(SafetensorsFixture f) {
        Set<String> data = Set.of("tokens", "targets", "logits", "loss", "losses");
        return f.names().stream()
                .filter(n -> !data.contains(n) && !n.startsWith("grad.") && !n.startsWith("final."))
                .toList();
    }

    static float[] asFloats(int[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i];
        }
        return out;
    }

    /** Checks relative errors, keeping the largest of each kind for the report printed at the end. */
    static final class Errors {
        private final String what;
        private final List<String> kinds = new ArrayList<>();
        private final List<double[]> worst = new ArrayList<>();

        Errors(String what) {
            this.what = what;
        }

        void check(String name, float got, float want, double bound) {
            check(name, new float[]{got}, new float[]{want}, bound);
        }

        void check(String name, float[] got, float[] want, double bound) {
            assertThat(got.length).as("%s: %s length", what, name).isEqualTo(want.length);
            double diff = 0, norm = 0;
            for (int i = 0; i < got.length; i++) {
                double d = (double) got[i] - want[i];
                diff += d * d;
                norm += (double) want[i] * want[i];
            }
            double rel = norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
            String kind = name.startsWith("grad ") ? "gradients" : name.startsWith("final ") ? "final weights"
                    : name.startsWith("AdamW loss") ? "AdamW losses" : name;
            int k = kinds.indexOf(kind);
            if (k < 0) {
                kinds.add(kind);
                worst.add(new double[]{rel});
            } else {
                worst.get(k)[0] = Math.max(worst.get(k)[0], rel);
            }
            assertThat(rel).as("%s: %s relative error (PyTorch: ‖want‖ = %s)", what, name, Math.sqrt(norm))
                    .isLessThanOrEqualTo(bound);
        }

        void report() {
            StringBuilder b = new StringBuilder(what).append(": max relative error");
            for (int k = 0; k < kinds.size(); k++) {
                b.append(String.format(Locale.ROOT, "%s %s %.1e", k == 0 ? "" : ",", kinds.get(k), worst.get(k)[0]));
            }
            System.out.println(b);
        }
    }
}
