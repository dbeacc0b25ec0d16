package jtune.methods.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The saved form of a quantized model on stories260K: written and loaded back through the engine's model loader, the
 * model computes exactly the logits of the in-memory quantized model, holds exactly its bytes in the ledger, and maps
 * the packed tensors from the file; broken or inconsistent folders fail with one sentence naming the file and the
 * tensor or field.
 */
class QuantizedModelFileTest {
    private static final Path STORIES = Path.of("../../shared/data/models/stories260K/stories260K.bin");

    @TempDir
    Path tmp;
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);

    @BeforeEach
    void needsStories() {
        Assumptions.assumeTrue(Files.isRegularFile(STORIES), "stories260K.bin is not in ../../shared/data; skipped");
    }

    @AfterEach
    void close() {
        pool.close();
    }

    static Stream<ModelQuantizer.Options> formats() {
        return Stream.of(
                new ModelQuantizer.Options(ModelQuantizer.Method.RTN, QuantFormat.integer(4, 32, false, DType.F32), false,
                        0.01, 4, 8, 0),
                new ModelQuantizer.Options(ModelQuantizer.Method.GPTQ, QuantFormat.integer(3, 0, true, DType.BF16), false,
                        0.01, 0, 8, 0),
                new ModelQuantizer.Options(ModelQuantizer.Method.GPTQ, QuantFormat.integer(2, 64, false, DType.BF16), true,
                        0.01, 8, 32, 3),
                new ModelQuantizer.Options(ModelQuantizer.Method.RTN, QuantFormat.integer(8, 128, true, DType.F32), false,
                        0.01, 0, 8, 0),
                new ModelQuantizer.Options(ModelQuantizer.Method.NF4, QuantFormat.nf4(64, false), false, 0.01, 0, 8, 0),
                new ModelQuantizer.Options(ModelQuantizer.Method.NF4, QuantFormat.nf4(32, true), false, 0.01, 2, 8, 1));
    }

    @ParameterizedTest
    @MethodSource("formats")
    void reloadedModelComputesExactlyWhatTheQuantizedModelComputes(ModelQuantizer.Options o) throws IOException {
        Path dir = tmp.resolve("q");
        try (LoadedModel original = ModelLoader.load(s, STORIES, null, false, WeightTransform.IDENTITY, false)) {
            List<int[]> calibration = o.method() == ModelQuantizer.Method.GPTQ ? randomWindows(4, 32) : List.of();
            ModelQuantizer.Result q = ModelQuantizer.quantize(s, original.model(), o, calibration);
            try (LlamaModel quantized = q.model()) {
                QuantizedModelFile.Spec spec = new QuantizedModelFile.Spec(o.method(), o.format(), o.lorcRank(), o.lorcBits(),
                        Map.of());
                QuantizedModelFile.write(quantized, q.weights(), spec, original.tokenizer(), original.tokenizerFiles(), dir);
                long bytes = quantized.parameters().stream()
                        .mapToLong(p -> p.value().dtype().bytesFor(p.value().size())).sum();
                MemoryLedger reloadLedger = new MemoryLedger();
                try (MemoryPool reloadPool = new MemoryPool(reloadLedger);
                     LoadedModel back = ModelLoader.load(new Session(new ScalarBackend(), reloadPool), dir, null, false,
                             WeightTransform.IDENTITY, false)) {
                    assertThat(back.description()).contains("quantized " + spec.describe());
                    assertThat(back.tokenizer()).isNotNull();
                    assertThat(logits(back.model())).containsExactly(logits(quantized));
                    assertThat(reloadLedger.current(Category.FROZEN_WEIGHTS)).isEqualTo(bytes);
                    List<Parameter> packed = back.model().parameters().stream()
                            .filter(p -> p.name().endsWith(".qcodes")).toList();
                    assertThat(packed).filteredOn(p -> !p.name().contains(".lorc_")).hasSize(35);
                    assertThat(packed).filteredOn(p -> p.name().contains(".lorc_"))
                            .hasSize(o.lorcRank() > 0 && o.lorcBits() == 8 ? 70 : 0);
                    assertThat(packed).allMatch(p -> p.value().segment().isReadOnly(), "mapped from the file, not copied");
                    assertThat(back.model().parameters()).noneMatch(p -> p.name().endsWith("_proj.weight"));
                }
            }
        }
    }

    @Test
    void brokenFoldersFailNamingTheFileAndTheTensor() throws IOException {
        Path good = tmp.resolve("good");
        ModelQuantizer.Options o = new ModelQuantizer.Options(ModelQuantizer.Method.RTN,
                QuantFormat.integer(4, 32, false, DType.F32), false, 0.01, 2, 8, 0);
        try (LoadedModel original = ModelLoader.load(s, STORIES, null, false, WeightTransform.IDENTITY, false)) {
            ModelQuantizer.Result q = ModelQuantizer.quantize(s, original.model(), o, List.of());
            try (LlamaModel quantized = q.model()) {
                QuantizedModelFile.write(quantized, q.weights(), new QuantizedModelFile.Spec(o.method(), o.format(), 2,
                        8, Map.of()), original.tokenizer(), original.tokenizerFiles(), good);
            }
        }
        String q0 = "model.layers.0.self_attn.q_proj";
        Path codes = broken(good, "codes", Map.of(q0 + ".qcodes", t -> u8(q0 + ".qcodes", 64, 30)), c -> c);
        assertFails(codes, "model.safetensors", "'" + q0 + ".qcodes' is U8 [64, 30]", "needs U8 [64, 32]");

        String down = "model.layers.2.mlp.down_proj";
        Path scales = broken(good, "scales", Map.of(down + ".scales", t -> null), c -> c);
        assertFails(scales, "model.safetensors", "has no tensor '" + down + ".scales'", "int4 g32");

        Path lorc = broken(good, "lorc", Map.of(down + ".lorc_v.qcodes", t -> null), c -> c);
        assertFails(lorc, "model.safetensors", "has no tensor '" + down + ".lorc_v.qcodes'",
                "LoRC of rank 2 (8-bit factors)");

        Path lorcScales = broken(good, "lorc-scales", Map.of(down + ".lorc_ut.scales", t -> u8(down + ".lorc_ut.scales",
                2, 1)), c -> c);
        assertFails(lorcScales, "model.safetensors", "'" + down + ".lorc_ut.scales' is U8 [2, 1]", "needs F32 [2, 1]");

        Path f32 = broken(good, "lorc-f32", Map.of(), c -> edit(c, "\"lorc_bits\":8", "\"lorc_bits\":32"));
        assertFails(f32, "model.safetensors", q0 + ".lorc_ut.qcodes", "f32 LoRC factors (lorc_bits 32, or absent)");

        Path bits16 = broken(good, "lorc-16", Map.of(), c -> edit(c, "\"lorc_bits\":8", "\"lorc_bits\":16"));
        assertFails(bits16, "config.json", "\"lorc_bits\" is 16", "8 (int8 factors) or 32");
        Path text8 = broken(good, "lorc-text", Map.of(), c -> edit(c, "\"lorc_bits\":8", "\"lorc_bits\":\"8\""));
        assertFails(text8, "config.json", "\"lorc_bits\" is \"8\"", "8 (int8 factors) or 32");

        Path bits5 = broken(good, "bits5", Map.of(), c -> edit(c, "\"bits\":4", "\"bits\":5"));
        assertFails(bits5, "config.json", "quantization_config", "2, 3, 4 or 8 bits, not 5");

        Path eight = broken(good, "eight", Map.of(), c -> edit(c, "\"bits\":4", "\"bits\":8"));
        assertFails(eight, "model.safetensors", q0 + ".qcodes' is U8 [64, 32]", "int8 g32", "needs U8 [64, 64]");

        Path method = broken(good, "method", Map.of(), c -> edit(c, "\"quant_method\":\"jtune\"",
                "\"quant_method\":\"gptq\""));
        assertFails(method, "config.json", "\"quant_method\": \"gptq\"", "it reads \"jtune\"");

        Path unknown = broken(good, "unknown", Map.of(), c -> edit(c, "\"sym\":false", "\"sym\":false,\"desc_act\":1"));
        assertFails(unknown, "config.json", "unknown field \"desc_act\"");

        Path stray = broken(good, "stray", Map.of(), c -> edit(c, "\"lorc_rank\":2", "\"lorc_rank\":0"));
        assertFails(stray, "model.safetensors", q0 + ".lorc_u", "lorc_rank 0");

        Path twice = broken(good, "twice", Map.of(), c -> c);
        try (SafeTensorsReader r = SafeTensorsReader.open(good.resolve(SafeTensors.MODEL_FILE))) {
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (SafeTensors.Entry e : r.entries()) {
                w.add(e.name(), r.tensor(e.name(), pool, Category.WORKSPACE));
            }
            w.add(q0 + ".weight", pool.allocate(q0 + ".weight", DType.F32, Category.WORKSPACE, 64, 64));
            w.write(twice.resolve(SafeTensors.MODEL_FILE));
        }
        assertFails(twice, "model.safetensors", "'" + q0 + "' twice", q0 + ".qcodes", q0 + ".weight");
    }

    /** {@code text} with its one occurrence of {@code from} replaced by {@code to}. */
    @Test
    void aConfigWithoutLorcBitsReadsF32FactorsAsFoldersBeforeItDid() throws IOException {
        Path good = tmp.resolve("f32");
        ModelQuantizer.Options o = new ModelQuantizer.Options(ModelQuantizer.Method.RTN,
                QuantFormat.integer(4, 32, false, DType.F32), false, 0.01, 2, 32, 0);
        float[] expected;
        try (LoadedModel original = ModelLoader.load(s, STORIES, null, false, WeightTransform.IDENTITY, false)) {
            ModelQuantizer.Result q = ModelQuantizer.quantize(s, original.model(), o, List.of());
            try (LlamaModel quantized = q.model()) {
                QuantizedModelFile.write(quantized, q.weights(), new QuantizedModelFile.Spec(o.method(), o.format(), 2,
                        32, Map.of()), original.tokenizer(), original.tokenizerFiles(), good);
                expected = logits(quantized);
            }
        }
        Path old = broken(good, "old", Map.of(), c -> edit(c, ",\"lorc_bits\":32", ""));
        try (LoadedModel back = ModelLoader.load(s, old, null, false, WeightTransform.IDENTITY, false)) {
            assertThat(back.description()).contains("LoRC rank 2 (32-bit factors)");
            assertThat(logits(back.model())).containsExactly(expected);
        }
    }

    private static String edit(String text, String from, String to) {
        assertThat(text).containsOnlyOnce(from);
        return text.replace(from, to);
    }

    /**
     * A copy of {@code good} named {@code name} whose weights have each tensor of {@code replace} replaced by what
     * its function returns (null: dropped), and whose config.json text is {@code config} of the original.
     */
    private Path broken(Path good, String name, Map<String, UnaryOperator<Tensor>> replace,
                        UnaryOperator<String> config) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve(name));
        Files.writeString(dir.resolve("config.json"), config.apply(Files.readString(good.resolve("config.json"))));
        Files.copy(good.resolve("tokenizer.bin"), dir.resolve("tokenizer.bin"));
        try (SafeTensorsReader r = SafeTensorsReader.open(good.resolve(SafeTensors.MODEL_FILE))) {
            SafeTensorsWriter w = new SafeTensorsWriter();
            for (SafeTensors.Entry e : r.entries()) {
                Tensor t = r.tensor(e.name(), pool, Category.WORKSPACE);
                Tensor out = replace.containsKey(e.name()) ? replace.get(e.name()).apply(t) : t;
                if (out != null) {
                    w.add(e.name(), out);
                }
            }
            w.write(dir.resolve(SafeTensors.MODEL_FILE));
        }
        return dir;
    }

    private void assertFails(Path dir, String... fragments) {
        assertThatThrownBy(() -> {
            try (LoadedModel m = ModelLoader.load(s, dir, null, false, WeightTransform.IDENTITY, false)) {
                m.model();
            }
        }).isInstanceOfAny(IOException.class, IllegalArgumentException.class)
                .satisfies(e -> assertThat(e.getMessage()).contains(fragments).doesNotContain("\n"));
        assertThat(ledger.current(Category.FROZEN_WEIGHTS)).as("nothing left counted after a failed load").isZero();
    }

    private Tensor u8(String name, long rows, long cols) {
        return pool.allocate(name, DType.U8, Category.WORKSPACE, rows, cols);
    }

    private static List<int[]> randomWindows(int count, int seq) {
        SplittableRandom rng = new SplittableRandom(7);
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(rng.ints(seq, 0, 512).toArray());
        }
        return out;
    }

    private float[] logits(LlamaModel m) {
        int seq = 24;
        try (Tensor tokens = s.i32("tokens", Category.WORKSPACE, 2, seq);
             Tensor out = s.f32("logits", Category.WORKSPACE, 2L * seq, m.config().vocab())) {
            int[] ids = randomWindows(1, 2 * seq).getFirst();
            for (int i = 0; i < ids.length; i++) {
                tokens.set(ids[i], i / seq, i % seq);
            }
            m.logits(tokens, out);
            return out.toFloatArray();
        }
    }
}
