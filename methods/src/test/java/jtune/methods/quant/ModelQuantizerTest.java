package jtune.methods.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Collectors;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The model-level driver on a tiny random LLaMA: every block linear is replaced (the embedding and head are not),
 * the quantized model computes what a dense model holding the same quantized values computes, the input model is
 * untouched, GPTQ's calibrated output error is below RTN's, and nothing leaks.
 */
class ModelQuantizerTest {
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);

    @AfterEach
    void close() {
        pool.close();
    }

    private static LlamaConfig config(boolean tied) {
        return LlamaConfig.llama(32, 64, 2, 4, 2, 64, 16, tied);
    }

    private static List<int[]> windows(int count, int seq, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(rng.ints(seq, 0, 64).toArray());
        }
        return out;
    }

    @Test
    void rtnAndNf4ModelsComputeWithTheirQuantizedValues() {
        for (boolean tied : new boolean[]{true, false}) {
            LlamaConfig c = config(tied);
            try (LlamaModel model = LlamaModel.create(s, c, 1, WeightTransform.IDENTITY, false)) {
                float[] before = logits(model);
                for (ModelQuantizer.Options o : List.of(ModelQuantizer.Options.of(ModelQuantizer.Method.RTN, 3, 32, 0),
                        ModelQuantizer.Options.of(ModelQuantizer.Method.RTN, 4, 0, 3),
                        new ModelQuantizer.Options(ModelQuantizer.Method.NF4, QuantFormat.nf4(32, true), false, 0, 2, 32, 5))) {
                    ModelQuantizer.Result r = ModelQuantizer.quantize(s, model, o, List.of());
                    try (LlamaModel q = r.model(); LlamaModel reference = dense(model, o)) {
                        assertThat(r.layers()).hasSize(7 * c.layers());
                        assertThat(r.layers()).allSatisfy(l -> {
                            assertThat(l.outputError()).isNaN();
                            assertThat(l.relativeWeightError()).isBetween(1e-8, 0.2);
                        });
                        Map<String, Parameter> params = q.parameters().stream()
                                .collect(Collectors.toMap(Parameter::name, p -> p));
                        assertThat(params).doesNotContainKey("model.layers.0.mlp.down_proj.weight")
                                .containsKey("model.layers.0.mlp.down_proj.weight.codes")
                                .containsKey("model.embed_tokens.weight");
                        assertThat(params.containsKey("lm_head.weight")).isEqualTo(!tied);
                        assertThat(params.values()).allMatch(p -> !p.trainable());
                        float[] got = logits(q), want = logits(reference);
                        for (int i = 0; i < got.length; i++) {
                            assertThat(got[i]).as("%s logit %d", o.format(), i).isCloseTo(want[i], within(2e-4f));
                        }
                    }
                }
                assertThat(logits(model)).containsExactly(before);
            }
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
            assertThat(ledger.current(Category.WORKSPACE)).isZero();
        }
    }

    @Test
    void gptqLowersTheCalibratedOutputError() {
        LlamaConfig c = config(true);
        List<int[]> calibration = windows(12, 16, 3);
        try (LlamaModel model = LlamaModel.create(s, c, 2, WeightTransform.IDENTITY, false)) {
            for (int bits : new int[]{4, 3, 2}) {
                double rtn = 0, gptq = 0, lorc = 0;
                for (ModelQuantizer.Options o : List.of(ModelQuantizer.Options.of(ModelQuantizer.Method.RTN, bits, 32, 0),
                        ModelQuantizer.Options.of(ModelQuantizer.Method.GPTQ, bits, 32, 0),
                        ModelQuantizer.Options.of(ModelQuantizer.Method.GPTQ, bits, 32, 4))) {
                    ModelQuantizer.Result r = ModelQuantizer.quantize(s, model, o, calibration);
                    try (LlamaModel q = r.model()) {
                        double total = r.layers().stream().mapToDouble(ModelQuantizer.LayerResult::outputError).sum();
                        assertThat(r.layers()).allSatisfy(l -> assertThat(l.outputError()).isPositive());
                        if (o.method() == ModelQuantizer.Method.RTN) {
                            rtn = total;
                        } else if (o.lorcRank() == 0) {
                            gptq = total;
                            assertThat(r.layers()).allSatisfy(l -> assertThat(l.percdamp()).isEqualTo(0.01));
                        } else {
                            lorc = total;
                        }
                        for (float v : logits(q)) {
                            assertThat(v).isFinite();
                        }
                    }
                }
                assertThat(gptq).as("%d bits: GPTQ vs RTN", bits).isLessThan(rtn);
                assertThat(lorc).as("%d bits: GPTQ + LoRC vs GPTQ", bits).isLessThan(gptq);
            }
        }
        assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
    }

    @Test
    void badRequestsAreRefused() {
        try (LlamaModel model = LlamaModel.create(s, config(true), 1, WeightTransform.IDENTITY, false)) {
            assertThatThrownBy(() -> ModelQuantizer.quantize(s, model,
                    ModelQuantizer.Options.of(ModelQuantizer.Method.GPTQ, 4, 0, 0), List.of()))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("calibration");
            assertThatThrownBy(() -> ModelQuantizer.quantize(s, model,
                    ModelQuantizer.Options.of(ModelQuantizer.Method.RTN, 4, 0, 0), List.of(new int[8], new int[9])))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("one length");
            assertThatThrownBy(() -> ModelQuantizer.Options.of(ModelQuantizer.Method.NF4, 3, 0, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("4-bit");
            assertThatThrownBy(() -> new ModelQuantizer.Options(ModelQuantizer.Method.RTN, QuantFormat.nf4(64, false),
                    false, 0.01, 0, 8, 0)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> new ModelQuantizer.Options(ModelQuantizer.Method.RTN,
                    QuantFormat.integer(4, 0, false, DType.F32), false, 0.01, 2, 16, 0))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("8 bits").hasMessageContaining("not 16");
        }
        assertThat(ModelQuantizer.Method.parse("GpTq")).isEqualTo(ModelQuantizer.Method.GPTQ);
        assertThatThrownBy(() -> ModelQuantizer.Method.parse("awq")).hasMessageContaining("rtn, gptq or nf4");
    }

    /**
     * The model with each block linear a dense f32 weight holding the quantizer's values (plus the LoRC product),
     * computed here from the arrays with the same seeds the driver uses.
     */
    private LlamaModel dense(LlamaModel model, ModelQuantizer.Options o) {
        Map<String, Parameter> byName = model.parameters().stream().collect(Collectors.toMap(Parameter::name, p -> p));
        WeightSource copy = (s2, name, init, category, dims) -> {
            Tensor t = s2.f32(name, category, dims);
            s2.backend().copy(byName.get(name).value(), t);
            return t;
        };
        WeightTransform quantized = (s2, layer, base) -> {
            if (layer.startsWith("model.layers.")) {
                Tensor t = base.weight().value();
                int rows = Math.toIntExact(t.dim(0)), cols = Math.toIntExact(t.dim(1));
                float[] w = t.toFloatArray();
                float[] d = (o.method() == ModelQuantizer.Method.NF4 ? Nf4Quantizer.quantize(w, rows, cols, o.format())
                        : Rtn.quantize(w, rows, cols, o.format())).dequantize();
                if (o.lorcRank() > 0) {
                    float[] e = new float[w.length];
                    for (int i = 0; i < w.length; i++) {
                        e[i] = w[i] - d[i];
                    }
                    LowRank f = LowRank.of(e, rows, cols, o.lorcRank(), o.seed() ^ layer.hashCode());
                    int r = f.rank();
                    // 8-bit factors: each singular direction rounded to its own symmetric int8 grid, multiplied out.
                    float[] u = o.lorcBits() == 32 ? f.u() : QuantizedWeightTest.eightBitU(f.u(), rows, r);
                    float[] v = o.lorcBits() == 32 ? f.v() : Rtn.quantize(f.v(), r, cols, LorcWeight.FACTOR_FORMAT).dequantize();
                    for (int i = 0; i < rows; i++) {
                        for (int j = 0; j < cols; j++) {
                            double uv = 0;
                            for (int c = 0; c < r; c++) {
                                uv += (double) u[i * r + c] * v[c * cols + j];
                            }
                            d[i * cols + j] = (float) (d[i * cols + j] + uv);
                        }
                    }
                }
                t.copyFrom(d);
            }
            return base;
        };
        return LlamaModel.create(s, model.config(), copy, false, quantized, false);
    }

    private float[] logits(LlamaModel m) {
        int seq = 8;
        try (Tensor tokens = s.i32("tokens", Category.WORKSPACE, 2, seq);
             Tensor out = s.f32("logits", Category.WORKSPACE, 2L * seq, m.config().vocab())) {
            int[] ids = windows(1, 2 * seq, 9).getFirst();
            for (int i = 0; i < ids.length; i++) {
                tokens.set(ids[i], i / seq, i % seq);
            }
            m.logits(tokens, out);
            return out.toFloatArray();
        }
    }
}
