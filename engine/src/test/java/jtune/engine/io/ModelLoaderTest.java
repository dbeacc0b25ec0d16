package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The loader on small files written here: Hugging Face folders with a tensor missing, mis-shaped, left over or
 * stored in BF16/F16; jtune checkpoints; and llama2.c checkpoints laid out by hand from the format's description
 * (the order of the arrays, the RoPE row permutation), valid and broken.
 */
class ModelLoaderTest {
    static final LlamaConfig TINY = new LlamaConfig(8, 12, 2, 2, 1, 4, 10, 16, 10000.0, null, 1e-5f, false, false, false);

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

    private LoadedModel load(Path path) throws IOException {
        return ModelLoader.load(session, path, null, false, WeightTransform.IDENTITY, false);
    }

    /** A Hugging Face folder of TINY's tensors (seeded random values), edited by {@code edit} before writing. */
    private Path hfFolder(String name, LlamaConfig c, Consumer<Map<String, Tensor>> edit) throws IOException {
        Path folder = dir.resolve(name);
        Files.createDirectories(folder);
        Files.writeString(folder.resolve("config.json"), HfConfig.write(c, -1, -1));
        try (LlamaModel m = LlamaModel.create(session, c, 7, WeightTransform.IDENTITY, false)) {
            Map<String, Tensor> tensors = new java.util.LinkedHashMap<>();
            for (Parameter p : m.parameters()) {
                tensors.put(p.name(), p.value());
            }
            edit.accept(tensors);
            SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
            tensors.forEach(w::add);
            w.write(folder.resolve("model.safetensors"));
            tensors.values().forEach(Tensor::close);
        }
        return folder;
    }

    private Tensor f32(String name, long... dims) {
        return session.f32(name, Category.WORKSPACE, dims);
    }

    @Test
    void namesAMissingAMisShapedAndALeftOverTensor() throws IOException {
        Path missing = hfFolder("missing", TINY, t -> t.remove("model.norm.weight"));
        assertThatThrownBy(() -> load(missing)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage(missing.resolve("model.safetensors") + " has no tensor 'model.norm.weight', which this "
                        + "model needs");
        Path shaped = hfFolder("shaped", TINY, t -> t.put("model.layers.1.mlp.up_proj.weight", f32("u", 8, 12)));
        assertThatThrownBy(() -> load(shaped)).isInstanceOf(IllegalArgumentException.class)
                .hasMessage(shaped.resolve("model.safetensors") + ": tensor 'model.layers.1.mlp.up_proj.weight' has "
                        + "shape [8, 12] but this model needs [12, 8]");
        Path extra = hfFolder("extra", TINY, t -> t.put("model.layers.0.self_attn.o_proj.bias", f32("b", 8)));
        assertThatThrownBy(() -> load(extra)).isInstanceOf(FormatException.class)
                .hasMessage(extra.resolve("model.safetensors") + " holds tensor 'model.layers.0.self_attn.o_proj.bias' "
                        + "that the model its config describes does not have");
        assertThat(pool.ledger().currentTotal()).as("nothing left allocated by the failed loads").isZero();
    }

    @Test
    void ignoresTheRotaryBufferAndAStoredHeadOfATiedModel() throws IOException {
        LlamaConfig tied = new LlamaConfig(8, 12, 2, 2, 1, 4, 10, 16, 10000.0, null, 1e-5f, true, false, false);
        Path folder = hfFolder("tied", tied, t -> {
            t.put("model.layers.0.self_attn.rotary_emb.inv_freq", f32("r", 2));
            t.put("lm_head.weight", f32("h", 10, 8));
        });
        try (LoadedModel m = load(folder)) {
            assertThat(m.model().config()).isEqualTo(tied);
            assertThat(m.tokenizer()).isNull();
        }
    }

    @Test
    void convertsBf16AndF16WeightsToF32Exactly() throws IOException {
        for (DType type : new DType[]{DType.BF16, DType.F16}) {
            Path folder = hfFolder("narrow-" + type, TINY, t -> t.replaceAll((name, v) -> {
                Tensor narrow = pool.allocate(name, type, Category.WORKSPACE, v.shape().toArray());
                backend.convert(v, narrow);
                return narrow;
            }));
            try (SafeTensorsReader r = SafeTensorsReader.open(folder.resolve("model.safetensors"));
                 LoadedModel m = load(folder)) {
                for (Parameter p : m.model().parameters()) {
                    assertThat(r.entry(p.name()).type().dtype()).isEqualTo(type);
                    Tensor stored = r.tensor(p.name(), pool, Category.WORKSPACE);
                    assertThat(p.value().dtype()).isEqualTo(DType.F32);
                    assertThat(p.value().toFloatArray()).as("%s %s", type, p.name()).isEqualTo(stored.toFloatArray());
                    stored.close();
                }
            }
        }
    }

    @Test
    void readsAJtuneCheckpointWithTheByteTokenizerAndWithoutItsOptimizerState() throws IOException {
        LlamaConfig c = LlamaConfig.llama(16, 24, 1, 2, 2, ByteTokenizer.VOCAB, 32, true);
        Path run = dir.resolve("run");
        float[] embedding;
        try (LlamaModel m = LlamaModel.create(session, c, 3, WeightTransform.IDENTITY, false);
             AdamW opt = new AdamW(session, m.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f)) {
            Checkpoint.save(run.resolve(Checkpoint.FILE), m, opt,
                    new Checkpoint.State(42, new BatchStream.Position(1, 0, 0), 1.5, Map.of()));
            embedding = m.parameters().getFirst().value().toFloatArray();
        }
        for (Path path : List.of(run, run.resolve(Checkpoint.FILE))) {
            try (LoadedModel m = load(path)) {
                assertThat(m.model().config()).isEqualTo(c);
                assertThat(m.tokenizer()).isInstanceOf(ByteTokenizer.class);
                assertThat(m.tokenizerFiles()).isEmpty();
                assertThat(m.description()).contains("jtune checkpoint of step 42").contains("byte tokenizer");
                assertThat(m.model().parameters().getFirst().value().toFloatArray()).isEqualTo(embedding);
            }
        }
    }

    @Test
    void refusesWhatIsNoModel() throws IOException {
        assertThatThrownBy(() -> load(dir.resolve("absent"))).isInstanceOf(NoSuchFileException.class);
        Path empty = Files.createDirectory(dir.resolve("empty"));
        assertThatThrownBy(() -> load(empty)).isInstanceOf(FormatException.class)
                .hasMessage(empty + " is not a model folder: it holds neither config.json (Hugging Face) nor "
                        + "checkpoint.safetensors (a jtune run)");
        Path noWeights = Files.createDirectory(dir.resolve("no-weights"));
        Files.writeString(noWeights.resolve("config.json"), HfConfig.write(TINY, -1, -1));
        assertThatThrownBy(() -> load(noWeights)).isInstanceOf(FormatException.class)
                .hasMessageContaining("holds no safetensors model");
    }

    // ---- llama2.c checkpoints, laid out from the format's description ----------------------------------------

    /** TINY's arrays as llama2.c stores them, each filled with distinct values: name -> floats (all layers). */
    private static Map<String, float[]> llama2cArrays() {
        SplittableRandom rng = new SplittableRandom(5);
        int d = 8, h = 12, l = 2, kv = 4, v = 10;
        Map<String, float[]> a = new java.util.LinkedHashMap<>();
        for (Object[] spec : new Object[][]{{"emb", v * d}, {"rms_att", l * d}, {"wq", l * d * d}, {"wk", l * kv * d},
                {"wv", l * kv * d}, {"wo", l * d * d}, {"rms_ffn", l * d}, {"w1", l * h * d}, {"w2", l * d * h},
                {"w3", l * h * d}, {"rms_final", d}, {"wcls", v * d}}) {
            float[] x = new float[(Integer) spec[1]];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) rng.nextGaussian();
            }
            a.put((String) spec[0], x);
        }
        return a;
    }

    private static Path write(Path file, ByteBuffer header, Map<String, float[]> arrays, String... order)
            throws IOException {
        int floats = 0;
        for (String name : order) {
            floats += name.equals("rope") ? 16 * 4 : arrays.get(name).length;
        }
        ByteBuffer b = ByteBuffer.allocate(header.capacity() + 4 * floats).order(ByteOrder.LITTLE_ENDIAN);
        b.put(header.flip());
        for (String name : order) {
            if (name.equals("rope")) {
                for (int i = 0; i < 16 * 4; i++) {
                    b.putFloat(Float.NaN);
                }
            } else {
                for (float x : arrays.get(name)) {
                    b.putFloat(x);
                }
            }
        }
        return Files.write(file, b.array());
    }

    /** The 7 header ints: dim 8, hidden 12, 2 layers, 2 heads, 1 kv head, vocab, seq 16. */
    private static ByteBuffer header(int size, int magicAndVersion, int vocab, int shared) {
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        if (magicAndVersion > 0) {
            b.putInt(Llama2cCheckpoint.MAGIC).putInt(magicAndVersion);
        }
        b.putInt(8).putInt(12).putInt(2).putInt(2).putInt(1).putInt(vocab).putInt(16);
        if (magicAndVersion > 0) {
            b.put((byte) shared);
        }
        b.position(size);
        return b;
    }

    @Test
    void readsBothLlama2cLayoutsToTheSameTensorsWithRopeRowsPermuted() throws IOException {
        Map<String, float[]> a = llama2cArrays();
        Path legacy = write(dir.resolve("legacy.bin"), header(28, 0, -10, 0), a, "emb", "rms_att", "wq", "wk", "wv",
                "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "rope", "wcls");
        Path v1 = write(dir.resolve("v1.bin"), header(256, 1, 10, 0), a, "rms_att", "rms_ffn", "rms_final", "emb",
                "wq", "wk", "wv", "wo", "w1", "w2", "w3", "wcls");
        LlamaConfig untied = new LlamaConfig(8, 12, 2, 2, 1, 4, 10, 16, 10000.0, null, 1e-5f, false, false, false);
        List<float[]> first = null;
        for (Path file : List.of(legacy, v1)) {
            try (LoadedModel m = load(file)) {
                assertThat(m.model().config()).isEqualTo(untied);
                assertThat(m.tokenizer()).isNull();
                Map<String, Tensor> p = new java.util.HashMap<>();
                m.model().parameters().forEach(x -> p.put(x.name(), x.value()));
                assertThat(p.get("model.embed_tokens.weight").toFloatArray()).isEqualTo(a.get("emb"));
                assertThat(p.get("lm_head.weight").toFloatArray()).isEqualTo(a.get("wcls"));
                assertThat(p.get("model.norm.weight").toFloatArray()).isEqualTo(a.get("rms_final"));
                assertThat(p.get("model.layers.1.mlp.down_proj.weight").toFloatArray())
                        .isEqualTo(java.util.Arrays.copyOfRange(a.get("w2"), 96, 192));
                assertThat(p.get("model.layers.1.self_attn.v_proj.weight").toFloatArray())
                        .isEqualTo(java.util.Arrays.copyOfRange(a.get("wv"), 32, 64));
                // q of layer 1: 2 heads of 4 rows; Hugging Face row h*4 + j*2 + i is llama2.c row h*4 + 2i + j
                Tensor q = p.get("model.layers.1.self_attn.q_proj.weight");
                for (int hd = 0; hd < 2; hd++) {
                    for (int i = 0; i < 2; i++) {
                        for (int j = 0; j < 2; j++) {
                            for (int col = 0; col < 8; col++) {
                                assertThat(q.get(hd * 4 + j * 2 + i, col))
                                        .isEqualTo(a.get("wq")[64 + (hd * 4 + 2 * i + j) * 8 + col]);
                            }
                        }
                    }
                }
                // k of layer 0: 1 kv head of 4 rows, llama2.c rows 0, 1, 2, 3 become 0, 2, 1, 3
                Tensor k = p.get("model.layers.0.self_attn.k_proj.weight");
                int[] from = {0, 2, 1, 3};
                for (int row = 0; row < 4; row++) {
                    for (int col = 0; col < 8; col++) {
                        assertThat(k.get(row, col)).isEqualTo(a.get("wk")[from[row] * 8 + col]);
                    }
                }
                List<float[]> all = m.model().parameters().stream().map(x -> x.value().toFloatArray()).toList();
                if (first == null) {
                    first = all;
                } else {
                    for (int i = 0; i < all.size(); i++) {
                        assertThat(all.get(i)).isEqualTo(first.get(i));
                    }
                }
            }
        }
    }

    @Test
    void refusesBrokenLlama2cFilesInOneSentence() throws IOException {
        Map<String, float[]> a = llama2cArrays();
        String[] legacyOrder = {"emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final",
                "rope"};
        Path ok = write(dir.resolve("ok.bin"), header(28, 0, 10, 0), a, legacyOrder);
        try (LoadedModel m = load(ok)) {
            assertThat(m.model().config().tiedEmbeddings()).isTrue();
        }
        byte[] bytes = Files.readAllBytes(ok);
        Path truncated = Files.write(dir.resolve("truncated.bin"), java.util.Arrays.copyOf(bytes, bytes.length - 4));
        assertThatThrownBy(() -> load(truncated)).isInstanceOf(FormatException.class)
                .hasMessage(truncated + " holds " + (bytes.length - 4) + " bytes but a legacy llama2.c checkpoint with "
                        + "dim 8, hidden_dim 12, n_layers 2, n_heads 2, n_kv_heads 1, vocab_size 10, seq_len 16, shared "
                        + "output head holds " + bytes.length + "; it is truncated or not such a checkpoint");
        Path tiny = Files.write(dir.resolve("tiny.bin"), new byte[12]);
        assertThatThrownBy(() -> load(tiny)).hasMessage(tiny + " is not a llama2.c checkpoint: it holds 12 bytes, "
                + "fewer than the 28 of the smallest header");
        Path v2 = write(dir.resolve("v2.bin"), header(256, 2, 10, 1), a, "rms_att");
        assertThatThrownBy(() -> load(v2)).hasMessage(v2 + " is a llama2.c version 2 checkpoint (Q8_0 "
                + "group-quantized, for runq.c), which jtune does not read; it reads the legacy format and version 1");
        Path v9 = write(dir.resolve("v9.bin"), header(256, 9, 10, 1), a);
        assertThatThrownBy(() -> load(v9)).hasMessageContaining("unknown version 9");
        Path shared = write(dir.resolve("shared.bin"), header(256, 1, 10, 7), a);
        assertThatThrownBy(() -> load(shared)).hasMessageContaining("shared_classifier byte is 7; it must be 0 or 1");
        ByteBuffer gqa = header(28, 0, 10, 0);
        gqa.putInt(16, 3);
        Path badHeads = write(dir.resolve("heads.bin"), gqa, a, legacyOrder);
        assertThatThrownBy(() -> load(badHeads)).isInstanceOf(FormatException.class).hasMessage(badHeads
                + ": the legacy llama2.c checkpoint header (dim 8, hidden_dim 12, n_layers 2, n_heads 2, n_kv_heads 3, "
                + "vocab_size 10, seq_len 16) is not a valid model: n_heads must be a multiple of n_kv_heads");
        ByteBuffer huge = header(28, 0, 10, 0);
        huge.putInt(0, 1 << 30).putInt(4, Integer.MAX_VALUE).putInt(8, Integer.MAX_VALUE);
        Path absurd = write(dir.resolve("absurd.bin"), huge, a, legacyOrder);
        assertThatThrownBy(() -> load(absurd)).isInstanceOf(FormatException.class)
                .hasMessageContaining("describes a model too large to address");
        ByteBuffer negative = header(28, 0, 10, 0);
        negative.putInt(8, -2);
        Path minus = write(dir.resolve("minus.bin"), negative, a, legacyOrder);
        assertThatThrownBy(() -> load(minus)).hasMessageContaining("every size must be positive");
        assertThat(pool.ledger().currentTotal()).isZero();
    }
}
