package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of the config.json of stories260K as a Hugging Face folder: each field replaced by values of other
 * types and ranges (every value in turn for the fields that size the model), dropped, or joined by unknown ones, and
 * the text cut short or its bytes flipped. Every case must end in a load whose model computes finite logits, or in one
 * sentence naming the folder (an {@link IOException} or {@link IllegalArgumentException} without a line break) with
 * nothing left in the ledger; any other exception fails the test with the case.
 */
class HfConfigFuzzTest {
    private static final Path HF = Path.of("../../shared/data/models/stories260K-hf-derived");
    private static final Object[] VALUES = {0L, 1L, 2L, 3L, 4L, 5L, 8L, 16L, 32L, 64L, 172L, 512L, 4096L, -1L, -64L,
        2147483647L, 2147483648L, 4294967360L, Long.MAX_VALUE, Long.MIN_VALUE, 64.0, 64.5, 1e-5, 1e300, -0.0, true,
        false, null, "", "64", "llama", "mistral", "qwen2", "silu", "gelu", "LlamaForCausalLM", "float32", "bfloat16",
        List.of(), List.of("LlamaForCausalLM"), List.of("MistralForCausalLM"), List.of("BertModel"), List.of(1L),
        Map.of(), Map.of("rope_type", "default"), Map.of("rope_type", "llama3", "factor", 8.0),
        Map.of("type", "linear", "factor", 2.0), Map.of("quant_method", "bitsandbytes")};
    /** Number texts that no value of Json.write gives: beyond a double's range, or in other spellings. */
    private static final String[] RAW = {"1e999", "-1e999", "1e-999", "6.4E1", "-0", "99999999999999999999"};
    private static final String[] SIZES = {"hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings"};
    private static final String[] FIELDS = {"architectures", "model_type", "hidden_size", "intermediate_size",
        "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
        "max_position_embeddings", "rms_norm_eps", "rope_theta", "hidden_act", "tie_word_embeddings", "attention_bias",
        "mlp_bias", "bos_token_id", "eos_token_id", "torch_dtype", "rope_scaling", "rope_parameters", "sliding_window",
        "use_sliding_window", "layer_types", "quantization_config"};

    @TempDir
    Path tmp;
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);
    private int loaded;
    private int refused;
    private int folders;

    @BeforeEach
    void needsTheFolder() {
        Assumptions.assumeTrue(Files.isRegularFile(HF.resolve("model.safetensors")),
                "stories260K-hf-derived is not in ../../shared/data; skipped");
    }

    @AfterEach
    void close() {
        pool.close();
    }

    @Test
    void everyMutationLoadsAndComputesOrFailsWithOneSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20261130);
        String configText = Files.readString(HF.resolve("config.json"));
        Map<String, Object> config = Json.parseObject(configText);
        check("the valid config", configText);
        assertThat(loaded).isEqualTo(1);
        for (String field : SIZES) {
            for (Object v : VALUES) {
                Map<String, Object> c = new LinkedHashMap<>(config);
                c.put(field, v);
                check(field + "=" + Json.write(v), Json.write(c));
            }
        }
        for (String field : FIELDS) {
            Map<String, Object> c = new LinkedHashMap<>(config);
            c.remove(field);
            check("-" + field, Json.write(c));
            for (String raw : RAW) {
                c.put(field, "@RAW@");
                check(field + "=" + raw + " (raw)", Json.write(c).replace("\"@RAW@\"", raw));
            }
        }
        for (int n = 0; n < 250; n++) {
            Map<String, Object> c = new LinkedHashMap<>(config);
            int edits = 1 + rng.nextInt(3);
            StringBuilder what = new StringBuilder();
            for (int e = 0; e < edits; e++) {
                String field = rng.nextInt(12) == 0 ? "unknown_" + rng.nextInt(3) : FIELDS[rng.nextInt(FIELDS.length)];
                if (rng.nextInt(5) == 0) {
                    c.remove(field);
                    what.append(" -").append(field);
                } else {
                    Object v = VALUES[rng.nextInt(VALUES.length)];
                    c.put(field, v);
                    what.append(' ').append(field).append('=').append(Json.write(v));
                }
            }
            check(what.toString().strip(), Json.write(c));
        }
        byte[] text = configText.getBytes(StandardCharsets.UTF_8);
        for (int n = 0; n < 40; n++) {
            int cut = rng.nextInt(text.length);
            check("cut to " + cut + " bytes", new String(Arrays.copyOf(text, cut), StandardCharsets.UTF_8));
        }
        for (int n = 0; n < 60; n++) {
            byte[] m = text.clone();
            int at = rng.nextInt(m.length);
            m[at] ^= (byte) (1 << rng.nextInt(8));
            check("a bit flipped at " + at, new String(m, StandardCharsets.UTF_8));
        }
        for (String whole : new String[]{"", "[]", "null", "{}", "[".repeat(100_000) + "]".repeat(100_000),
                "{\"rope_scaling\":" + "{\"a\":".repeat(100_000) + "1" + "}".repeat(100_000) + "}"}) {
            check("config " + (whole.length() > 40 ? whole.substring(0, 40) + "..." : whole), whole);
        }
        assertThat(loaded).as("some mutations still load").isGreaterThan(50);
        assertThat(refused).as("refusals").isGreaterThan(400);
    }

    /** A folder of config.json with text {@code config} and the model's tensors; it must load and compute or fail. */
    private void check(String what, String config) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("m" + folders++));
        Files.writeString(dir.resolve("config.json"), config);
        Files.createSymbolicLink(dir.resolve("model.safetensors"), HF.toAbsolutePath().resolve("model.safetensors"));
        try (LoadedModel m = ModelLoader.load(s, dir, null, false, WeightTransform.IDENTITY, false)) {
            for (float v : logits(m.model())) {
                if (!Float.isFinite(v)) {
                    fail("%s: loaded, but computes a non-finite logit", what);
                }
            }
            loaded++;
        } catch (IOException | IllegalArgumentException e) {
            String message = String.valueOf(e.getMessage());
            if (message.contains("\n") || message.isBlank() || !message.contains(dir.toString())) {
                fail(what + ": not one sentence naming the folder: " + message, e);
            }
            refused++;
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            fail(what + ": " + e, e);
        }
        for (Category c : Category.values()) {
            assertThat(ledger.current(c)).as("%s: nothing left counted as %s", what, c).isZero();
        }
    }

    private float[] logits(LlamaModel m) {
        int seq = Math.min(6, m.config().maxSeq());
        try (Tensor tokens = s.i32("tokens", Category.WORKSPACE, 1, seq);
             Tensor out = s.f32("logits", Category.WORKSPACE, seq, m.config().vocab())) {
            for (int i = 0; i < seq; i++) {
                tokens.set((1 + 37 * i) % m.config().vocab(), 0, i);
            }
            m.logits(tokens, out);
            return out.toFloatArray();
        }
    }
}
