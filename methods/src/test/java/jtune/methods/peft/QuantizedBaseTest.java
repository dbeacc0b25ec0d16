package jtune.methods.peft;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.cli.Main;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.Tensor;
import jtune.methods.quant.LorcWeight;
import jtune.methods.quant.QuantizedWeight;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA and PEQA over a folder written by {@code jtune quantize} (stories260K, quantized here): the stored layers are
 * the frozen base as they are. A LoRA model starts (B = 0) at exactly the quantized model's logits, trains, and its
 * saved adapter over the reloaded folder gives exactly the trained model's logits; PEQA over an RTN folder starts at
 * the quantized model's logits, has gradients on the scales alone, leaves the codes and zero points bit for bit as the
 * file holds them, and its saved scale set over the reloaded folder gives exactly the trained model's logits. PEQA
 * refuses NF4 and LoRC-corrected layers in one sentence.
 */
class QuantizedBaseTest {
    private static final Path DATA = Path.of("../../shared/data");
    private static final Path STORIES = DATA.resolve("models/stories260K/stories260K.bin");
    private static final Path TEXT = DATA.resolve("corpora/tinystories/tinystories_validation_head.txt");
    private static final int BATCH = 4, SEQ = 64, STEPS = 6;

    @TempDir
    Path tmp;
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session s = new Session(new ScalarBackend(), pool);

    @BeforeEach
    void needsData() {
        Assumptions.assumeTrue(Files.isRegularFile(STORIES) && Files.isRegularFile(TEXT),
                "stories260K.bin or the TinyStories text is not in ../../shared/data; skipped");
    }

    @AfterEach
    void close() {
        pool.close();
    }

    /** stories260K quantized by {@code jtune quantize} with {@code options} into a new folder {@code name}. */
    private Path quantize(String name, String... options) {
        Path dir = tmp.resolve(name);
        List<String> argv = new ArrayList<>(List.of("--backend", "scalar", "quantize", "--model", STORIES.toString(),
                "--out", dir.toString()));
        argv.addAll(List.of(options));
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(argv, new PrintStream(OutputStream.nullOutputStream()), new PrintStream(err, true,
                StandardCharsets.UTF_8));
        assertThat(status).as(err.toString(StandardCharsets.UTF_8)).isZero();
        return dir;
    }

    private LoadedModel load(Path dir, WeightTransform t) throws IOException {
        return ModelLoader.load(s, dir, null, false, t, false);
    }

    /** Tokens (BATCH, SEQ) and their next tokens from the start of the TinyStories text, as two i32 tensors. */
    private Tensor[] batch(LoadedModel m) throws IOException {
        int[] ids = m.tokenizer().encode(Files.readString(TEXT).substring(0, 20_000), true);
        float[] x = new float[BATCH * SEQ], y = new float[BATCH * SEQ];
        for (int i = 0; i < x.length; i++) {
            x[i] = ids[i + i / SEQ];
            y[i] = ids[i + i / SEQ + 1];
        }
        return new Tensor[]{s.i32("tokens", Category.WORKSPACE, BATCH, SEQ).copyFrom(x),
                s.i32("targets", Category.WORKSPACE, BATCH, SEQ).copyFrom(y)};
    }

    private float[] logits(LlamaModel m, Tensor tokens) {
        try (Tensor out = s.f32("logits", Category.WORKSPACE, BATCH * SEQ, m.config().vocab())) {
            m.logits(tokens, out);
            return out.toFloatArray();
        }
    }

    /** STEPS AdamW updates at {@code lr} on one batch; the losses before each. */
    private static float[] train(Session s, LlamaModel m, Tensor[] batch, float lr) {
        float[] losses = new float[STEPS];
        try (AdamW opt = new AdamW(s, m.parameters(), 0.9f, 0.999f, 1e-8f, 0f)) {
            for (int i = 0; i < STEPS; i++) {
                opt.zeroGrad();
                losses[i] = m.forwardBackward(batch[0], batch[1], 1f);
                opt.step(lr);
            }
        }
        return losses;
    }

    @Test
    void loraOverStoredLayersStartsAtTheQuantizedModelTrainsAndReloads() throws IOException {
        Path[] folders = {quantize("rtn-lorc", "--method", "rtn", "--bits", "4", "--group", "32", "--lorc-rank", "4"),
            quantize("nf4", "--method", "nf4", "--double-quant")};
        Class<?>[] bases = {LorcWeight.class, QuantizedWeight.class};
        for (int f = 0; f < folders.length; f++) {
            Path dir = folders[f];
            float[] quantized;
            Tensor[] batch;
            try (LoadedModel plain = load(dir, WeightTransform.IDENTITY)) {
                batch = batch(plain);
                quantized = logits(plain.model(), batch[0]);
            }
            LoraConfig c = new LoraConfig(4, 8, 0, false, LoraConfig.MODULES);
            LoraAdapters lora = new LoraAdapters(c, 1);
            float[] trained;
            try (LoadedModel m = load(dir, lora.over(WeightTransform.IDENTITY, 1))) {
                assertThat(lora.weights()).as(dir.toString()).hasSize(5 * 7);
                for (LoraWeight w : lora.weights().values()) {
                    assertThat(w.base()).as(dir.toString()).isInstanceOf(bases[f]);
                }
                assertThat(m.model().parameters().stream().filter(Parameter::trainable).map(Parameter::name))
                        .as(dir.toString()).hasSize(2 * 35)
                        .allMatch(n -> n.contains(".lora_A.") || n.contains(".lora_B."));
                assertThat(logits(m.model(), batch[0])).as("%s at B = 0", dir).containsExactly(quantized);
                float[] losses = train(s, m.model(), batch, 1e-2f);
                assertThat(losses[STEPS - 1]).as("%s: losses %s", dir, Arrays.toString(losses))
                        .isLessThan(0.95f * losses[0]);
                trained = logits(m.model(), batch[0]);
                assertThat(trained).as(dir.toString()).isNotEqualTo(quantized);
                lora.save(tmp.resolve("adapter-" + f), dir.toString());
            }
            LoraAdapters back = new LoraAdapters(LoraAdapters.readConfig(tmp.resolve("adapter-" + f)), 7);
            try (LoadedModel m = load(dir, back.over(WeightTransform.IDENTITY, 7))) {
                back.load(tmp.resolve("adapter-" + f));
                assertThat(logits(m.model(), batch[0])).as("%s with the saved adapter", dir).containsExactly(trained);
            }
            batch[0].close();
            batch[1].close();
        }
    }

    @Test
    void peqaOverAnRtnFolderTrainsOnlyItsScales() throws IOException {
        Path dir = quantize("rtn", "--method", "rtn", "--bits", "4", "--group", "32");
        float[] quantized;
        Tensor[] batch;
        try (LoadedModel plain = load(dir, WeightTransform.IDENTITY)) {
            batch = batch(plain);
            quantized = logits(plain.model(), batch[0]);
        }
        // The format given is not the folder's: over stored layers it must not apply.
        QuantFormat unused = QuantFormat.integer(2, 0, true, DType.F32);
        Map<String, PeqaWeight> peqa = new LinkedHashMap<>();
        float[] trained;
        try (LoadedModel m = load(dir, PeqaWeight.rtn(unused, LoraConfig::isBlockLayer, peqa))) {
            assertThat(peqa).hasSize(35);
            assertThat(peqa.values()).allMatch(p -> p.matrix().format().equals(QuantFormat.integer(4, 32, false,
                    DType.F32)));
            assertThat(m.model().parameters().stream().filter(Parameter::trainable).map(Parameter::name))
                    .hasSize(35).allMatch(n -> n.endsWith(".weight.scales"));
            assertThat(logits(m.model(), batch[0])).as("PEQA before training").containsExactly(quantized);

            m.model().forwardBackward(batch[0], batch[1], 1f);
            for (Parameter p : m.model().parameters()) {
                if (p.trainable()) {
                    assertThat(norm(p.gradOrNull().toFloatArray())).as(p.name()).isPositive();
                } else {
                    assertThat(p.gradOrNull()).as(p.name()).isNull();
                }
            }
            float[] losses = train(s, m.model(), batch, 1e-3f);
            assertThat(losses[STEPS - 1]).as(Arrays.toString(losses)).isLessThan(0.97f * losses[0]);
            trained = logits(m.model(), batch[0]);

            try (SafeTensorsReader file = SafeTensorsReader.open(dir.resolve("model.safetensors"))) {
                int scalesMoved = 0;
                for (Map.Entry<String, PeqaWeight> e : peqa.entrySet()) {
                    String layer = e.getKey();
                    var q = e.getValue().matrix();
                    assertThat(bytes(q.codes())).as(layer + " codes").isEqualTo(bytes(file, layer + ".qcodes"));
                    assertThat(q.zeros().toFloatArray()).as(layer + " zeros")
                            .containsExactly(floats(file, layer + ".zeros"));
                    if (!Arrays.equals(q.scales().toFloatArray(), floats(file, layer + ".scales"))) {
                        scalesMoved++;
                    }
                }
                assertThat(scalesMoved).isEqualTo(35);
            }
            PeqaScales.save(tmp.resolve("scales"), peqa, dir.toString(), "stored");
        }
        Map<String, PeqaWeight> again = new LinkedHashMap<>();
        try (LoadedModel m = load(dir, PeqaWeight.rtn(unused, LoraConfig::isBlockLayer, again))) {
            PeqaScales.load(tmp.resolve("scales"), again);
            assertThat(logits(m.model(), batch[0])).as("the saved scale set over the reloaded folder")
                    .containsExactly(trained);
        }
        batch[0].close();
        batch[1].close();
    }

    /** Loads {@code folder} with every decoder-block layer made a PEQA weight (int4 g32 for dense layers). */
    private void loadForPeqa(Path folder) throws IOException {
        load(folder, PeqaWeight.rtn(QuantFormat.integer(4, 32, false, DType.F32), LoraConfig::isBlockLayer,
                new LinkedHashMap<>()));
    }

    @Test
    void peqaRefusesNf4AndLorcLayersInOneSentence() {
        Path nf4 = quantize("nf4", "--method", "nf4");
        Path lorc = quantize("lorc", "--method", "rtn", "--lorc-rank", "2");
        assertThatThrownBy(() -> loadForPeqa(nf4))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("PEQA trains the scales of integer codes, but layer 'model.layers.0.self_attn.q_proj' is "
                        + "stored as nf4 b64 (NF4 has absmax values, not scales on an integer grid); quantize the "
                        + "model with rtn or gptq for peqa, or fine-tune this one with lora or qlora");
        assertThatThrownBy(() -> loadForPeqa(lorc))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessage("PEQA does not train layers with a LoRC correction, and layer "
                        + "'model.layers.0.self_attn.q_proj' is stored with one; quantize the model without "
                        + "--lorc-rank for peqa, or fine-tune this one with lora or qlora");
        assertThat(pool.ledger().current(Category.FROZEN_WEIGHTS)).as("nothing left allocated").isZero();
    }

    private static double norm(float[] v) {
        double sum = 0;
        for (float x : v) {
            sum += (double) x * x;
        }
        return Math.sqrt(sum);
    }

    private static byte[] bytes(Tensor t) {
        return t.segment().asSlice(t.byteOffset(), t.size()).toArray(ValueLayout.JAVA_BYTE);
    }

    private byte[] bytes(SafeTensorsReader file, String name) throws IOException {
        try (Tensor t = file.tensor(name, pool, Category.WORKSPACE)) {
            return bytes(t);
        }
    }

    private float[] floats(SafeTensorsReader file, String name) throws IOException {
        try (Tensor t = file.tensor(name, pool, Category.WORKSPACE)) {
            return t.toFloatArray();
        }
    }
}
