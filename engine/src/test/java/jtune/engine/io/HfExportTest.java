package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.tokenizer.HfTokenizer;
import jtune.engine.tokenizer.Llama2cTokenizer;
import jtune.engine.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Export and reload: a model written as a Hugging Face folder and read back by {@link ModelLoader} has the same
 * config, the same weights and bit for bit the same logits; the byte tokenizer's generated tokenizer.json reads back
 * (by jtune's independent tokenizer.json reader) to the same ids; the folder is never written over or half-written.
 */
class HfExportTest {
    static final float[] TOKENS = {1, 200, 13, 99, 255, 0, 42};

    @TempDir
    Path dir;

    private final ScalarBackend backend = new ScalarBackend();
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session session = new Session(backend, pool);

    @AfterEach
    void close() {
        pool.close();
        backend.close();
    }

    private float[] logits(LlamaModel m) {
        try (Tensor t = session.i32("tokens", Category.WORKSPACE, 1, TOKENS.length).copyFrom(TOKENS);
             Tensor out = session.f32("logits", Category.WORKSPACE, TOKENS.length, m.config().vocab())) {
            m.logits(t, out);
            return out.toFloatArray();
        }
    }

    private LoadedModel load(Path path) throws IOException {
        return ModelLoader.load(session, path, null, false, WeightTransform.IDENTITY, false);
    }

    @Test
    void exportedModelsReloadWithTheSameLogitsBitForBit() throws IOException {
        LlamaConfig[] configs = {
                new LlamaConfig(32, 48, 2, 4, 2, 8, 256, 64, 100.0, new LlamaConfig.RopeScaling(4.0, 1.0, 4.0, 32),
                        1e-5f, false, false, false),
                new LlamaConfig(32, 48, 2, 4, 2, 8, 256, 64, 1e6, null, 1e-6f, false, true, false),
                new LlamaConfig(32, 48, 2, 4, 2, 16, 256, 64, 1e6, null, 1e-6f, true, false, true)};
        int n = 0;
        for (LlamaConfig c : configs) {
            for (long shard : new long[]{HfExport.SHARD_BYTES, 20_000}) {
                Path out = dir.resolve("export-" + n++);
                float[] want;
                List<float[]> weights;
                try (LlamaModel m = LlamaModel.create(session, c, n, WeightTransform.IDENTITY, false)) {
                    want = logits(m);
                    weights = m.parameters().stream().map(p -> p.value().toFloatArray()).toList();
                    HfExport.Result r = HfExport.write(m, new ByteTokenizer(), List.of(), out, shard);
                    assertThat(r.files()).contains("config.json", "generation_config.json", "tokenizer.json",
                            "tokenizer_config.json");
                    assertThat(r.files()).contains(shard == HfExport.SHARD_BYTES ? "model.safetensors"
                            : "model.safetensors.index.json");
                }
                try (LoadedModel m = load(out)) {
                    assertThat(m.model().config()).isEqualTo(c);
                    assertThat(m.model().parameters().stream().map(p -> p.value().toFloatArray()).toList())
                            .containsExactlyElementsOf(weights);
                    assertThat(logits(m.model())).as("logits of %s, shards of %d bytes", c, shard).isEqualTo(want);
                    assertThat(m.tokenizer()).isInstanceOf(HfTokenizer.class);
                }
            }
        }
        assertThat(pool.ledger().currentTotal()).isZero();
    }

    @Test
    void theByteTokenizersTokenizerJsonGivesTheSameIds() throws IOException {
        Path out = dir.resolve("bytes");
        try (LlamaModel m = LlamaModel.create(session, LlamaConfig.llama(16, 24, 1, 2, 2, 256, 32, true), 1,
                WeightTransform.IDENTITY, false)) {
            HfExport.write(m, new ByteTokenizer(), List.of(), out, HfExport.SHARD_BYTES);
        }
        Tokenizer hf = HfTokenizer.load(out.resolve("tokenizer.json"));
        ByteTokenizer bytes = new ByteTokenizer();
        assertThat(hf.vocabSize()).isEqualTo(256);
        assertThat(hf.bos()).isEqualTo(-1);
        assertThat(hf.eos()).isEqualTo(-1);
        List<String> texts = List.of("", "Hello, world!", "  two  spaces\tand\ttabs\n\nnew lines\r\n",
                "naïve café, Ünïcödé: àéîõü ß", "日本語のテキストと中文", "emoji 😀👍🏽 and ⚙️",
                "<|endoftext|> <s> </s> [INST]", "controls \u0000\u0001\u001f\u007f and \u00a0\u00ad end",
                "def f(x):\n    return x ** 2  # 42\n", "1234567890 3.14159 -2e10");
        for (String t : texts) {
            int[] ids = hf.encode(t, true);
            assertThat(ids).as("ids of %s", t).isEqualTo(bytes.encode(t));
            assertThat(hf.decode(ids, false)).isEqualTo(t);
        }
        for (int b = 0; b < 256; b++) {
            assertThat(hf.decodeBytes(new int[]{b}, false)).as("byte %d", b).containsExactly((byte) b);
        }
    }

    @Test
    void refusesToWriteOverAnythingAndLeavesNothingHalfWritten() throws IOException {
        Path full = Files.createDirectories(dir.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "mine");
        Path file = Files.writeString(dir.resolve("file"), "mine");
        Path empty = Files.createDirectories(dir.resolve("empty"));
        try (LlamaModel m = LlamaModel.create(session, LlamaConfig.llama(16, 24, 1, 2, 2, 256, 32, true), 1,
                WeightTransform.IDENTITY, false)) {
            assertThatThrownBy(() -> HfExport.write(m, null, List.of(), full, HfExport.SHARD_BYTES))
                    .isInstanceOf(FileAlreadyExistsException.class)
                    .hasMessage(full + ": is not empty; jtune exports only into a new or empty folder, never over files");
            assertThat(Files.readString(full.resolve("keep.txt"))).isEqualTo("mine");
            assertThat(full.toFile().list()).containsExactly("keep.txt");
            assertThatThrownBy(() -> HfExport.write(m, null, List.of(), file, HfExport.SHARD_BYTES))
                    .isInstanceOf(FileAlreadyExistsException.class).hasMessageContaining("is not a folder");
            assertThat(Files.readString(file)).isEqualTo("mine");

            Path failed = dir.resolve("failed");
            assertThatThrownBy(() -> HfExport.write(m, null, List.of(dir.resolve("no-such-tokenizer.json")), failed,
                    HfExport.SHARD_BYTES)).isInstanceOf(NoSuchFileException.class);
            try (Stream<Path> left = Files.list(dir)) {
                assertThat(left.map(p -> p.getFileName().toString()).sorted().toList())
                        .as("no folder and no temporary folder left").containsExactly("empty", "file", "full");
            }

            HfExport.Result r = HfExport.write(m, null, List.of(), empty, HfExport.SHARD_BYTES);
            assertThat(r.files()).containsExactly("config.json", "generation_config.json", "model.safetensors");
            assertThat(r.tokenizerNote()).startsWith("no tokenizer");
        }
    }

    @Test
    void copiesTheTokenizerFilesOfAHuggingFaceFolder() throws IOException {
        Path source = dir.resolve("source");
        try (LlamaModel m = LlamaModel.create(session, LlamaConfig.llama(16, 24, 1, 2, 2, 256, 32, false), 1,
                WeightTransform.IDENTITY, false)) {
            HfExport.write(m, new ByteTokenizer(), List.of(), source, HfExport.SHARD_BYTES);
        }
        Files.writeString(source.resolve("special_tokens_map.json"), "{}");
        Path copy = dir.resolve("copy");
        try (LoadedModel m = load(source)) {
            assertThat(m.tokenizerFiles()).containsExactly(source.resolve("tokenizer.json"),
                    source.resolve("tokenizer_config.json"), source.resolve("special_tokens_map.json"));
            HfExport.Result r = HfExport.write(m, copy);
            assertThat(r.tokenizerNote()).isEqualTo("tokenizer: tokenizer.json, tokenizer_config.json, "
                    + "special_tokens_map.json copied");
        }
        for (String f : List.of("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "model.safetensors")) {
            assertThat(Files.readAllBytes(copy.resolve(f))).as(f).isEqualTo(Files.readAllBytes(source.resolve(f)));
        }
    }

    @Test
    void stories260KFromLlama2cExportsWithItsTokenizerAndReloadsBitForBit() throws IOException {
        ModelLoaderStoriesTest.assumeData();
        Path out = dir.resolve("stories");
        float[] want;
        try (LoadedModel m = load(ModelLoaderStoriesTest.LEGACY)) {
            want = logits(m.model());
            HfExport.Result r = HfExport.write(m, out);
            assertThat(r.files()).containsExactly("config.json", "generation_config.json", "model.safetensors",
                    "tokenizer.bin");
            assertThat(r.tokenizerNote()).contains("tokenizer.bin").contains("transformers cannot");
        }
        assertThat(Files.readAllBytes(out.resolve("tokenizer.bin")))
                .isEqualTo(Files.readAllBytes(ModelLoaderStoriesTest.TOK512));
        Map<String, Object> generation = Json.parseObject(Files.readString(out.resolve("generation_config.json"),
                StandardCharsets.UTF_8));
        assertThat(generation).containsEntry("bos_token_id", 1L).containsEntry("eos_token_id", 2L);
        try (LoadedModel m = load(out)) {
            assertThat(m.tokenizer()).isInstanceOf(Llama2cTokenizer.class);
            assertThat(logits(m.model())).isEqualTo(want);
        }
        assumeTrue(Files.isDirectory(ModelLoaderStoriesTest.HF));
        try (LoadedModel exported = load(out); LoadedModel derived = load(ModelLoaderStoriesTest.HF)) {
            assertThat(logits(exported.model())).as("the same as the independently derived safetensors")
                    .isEqualTo(logits(derived.model()));
        }
    }
}
