package jtune.methods.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.cli.LoadOptionProvider;
import jtune.engine.io.Json;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.methods.peft.LoraAdapters;
import jtune.methods.peft.LoraConfig;
import jtune.methods.peft.LoraWeight;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of a valid LoRA adapter folder of stories260K (r 2 on q_proj, v_proj and up_proj, as
 * {@code --adapter DIR} reads it): its {@code adapter_config.json} fields replaced by values of other types and
 * ranges (each value in turn for r, lora_alpha, lora_dropout and target_modules), dropped or joined by unknown ones,
 * its text cut short or its bytes flipped, and its tensors dropped, retyped, reshaped, renamed or joined by others. Every case must end in a load whose model computes finite logits,
 * or in one sentence naming the folder (an {@link IOException} or {@link IllegalArgumentException} without a line
 * break) with nothing left in the ledger; any other exception fails the test with the case.
 */
class AdapterFolderFuzzTest {
    private static final Path STORIES = Run.STORIES;
    private static final Object[] VALUES = {0L, 1L, 2L, 3L, 4L, 8L, 64L, 4096L, -1L, 2147483647L, 2147483648L,
        Long.MAX_VALUE, Long.MIN_VALUE, 0.5, 1.5, 2.0, 0.999, 1e300, -0.0, 1e-300, true, false, null, "", "2",
        "LORA", "lora", "CAUSAL_LM", "none", "all", "q_proj", List.of(), List.of("q_proj"),
        List.of("q_proj", "v_proj", "up_proj"), List.of("up_proj", "v_proj", "q_proj"), List.of("q_proj", "k_proj"),
        List.of("q", "v"), List.of(1L), Arrays.asList((Object) null), List.of(List.of()), List.of(0L, 1L),
        Map.of(), Map.of("q_proj", 4L), Map.of("model.layers.0.self_attn.q_proj", 2L)};
    private static final String[] FIELDS = {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout",
        "target_modules", "use_rslora", "bias", "fan_in_fan_out", "use_dora", "modules_to_save", "rank_pattern",
        "alpha_pattern", "base_model_name_or_path", "inference_mode", "layers_to_transform", "layers_pattern",
        "init_lora_weights", "revision"};
    /** Number texts that no value of Json.write gives: beyond a double's range, or in other spellings. */
    private static final String[] RAW = {"1e999", "-1e999", "1e-999", "2E0", "-0", "99999999999999999999"};
    private static final DType[] TYPES = {DType.U8, DType.I8, DType.F32, DType.BF16, DType.F16, DType.I32};

    @TempDir
    Path tmp;
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);
    private int loaded;
    private int refused;

    @BeforeEach
    void needsStories() {
        Assumptions.assumeTrue(Files.isRegularFile(STORIES), "stories260K.bin is not in ../../shared/data; skipped");
    }

    @AfterEach
    void close() {
        pool.close();
    }

    @Test
    void everyMutationLoadsAndComputesOrFailsWithOneSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20261127);
        Path good = write();
        String configText = Files.readString(good.resolve(LoraAdapters.CONFIG));
        Map<String, Object> config = Json.parseObject(configText);
        List<String> names;
        try (SafeTensorsReader r = SafeTensorsReader.open(good.resolve(LoraAdapters.WEIGHTS))) {
            names = r.entries().stream().map(SafeTensors.Entry::name).toList();
        }
        check("the valid adapter", good);
        assertThat(loaded).as("the valid adapter loads").isEqualTo(1);

        for (String field : new String[]{"r", "lora_alpha", "lora_dropout", "target_modules"}) {
            for (int v = 0; v < VALUES.length; v++) {
                Map<String, Object> c = new LinkedHashMap<>(config);
                c.put(field, VALUES[v]);
                check("config " + field + "=" + Json.write(VALUES[v]), copy(good, field + v, Json.write(c), Map.of(),
                        Map.of()));
            }
        }
        for (int n = 0; n < 160; n++) {
            Map<String, Object> c = new LinkedHashMap<>(config);
            int edits = 1 + rng.nextInt(2);
            StringBuilder what = new StringBuilder("config");
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
            check(what.toString(), copy(good, "c" + n, Json.write(c), Map.of(), Map.of()));
        }
        for (String field : FIELDS) {
            for (int t = 0; t < RAW.length; t++) {
                Map<String, Object> c = new LinkedHashMap<>(config);
                c.put(field, "@RAW@");
                check("config " + field + "=" + RAW[t] + " (raw)", copy(good, "raw-" + field + t,
                        Json.write(c).replace("\"@RAW@\"", RAW[t]), Map.of(), Map.of()));
            }
        }
        byte[] text = configText.getBytes(StandardCharsets.UTF_8);
        for (int n = 0; n < 40; n++) {
            int cut = rng.nextInt(text.length);
            check("config cut to " + cut + " bytes", copy(good, "cut" + n,
                    new String(Arrays.copyOf(text, cut), StandardCharsets.UTF_8), Map.of(), Map.of()));
        }
        for (int n = 0; n < 40; n++) {
            byte[] m = text.clone();
            int at = rng.nextInt(m.length);
            m[at] ^= (byte) (1 << rng.nextInt(8));
            check("config with a bit flipped at " + at, copy(good, "flip" + n, new String(m, StandardCharsets.UTF_8),
                    Map.of(), Map.of()));
        }
        String deep = "[".repeat(100_000) + "]".repeat(100_000);
        for (String whole : new String[]{"", "[]", "null", "1", "\"LORA\"", "{}", "{\"peft_type\":\"LORA\"}", deep,
                "{\"r\":" + deep + "}"}) {
            check("config " + whole, copy(good, "whole" + loaded + "-" + refused, whole, Map.of(), Map.of()));
        }

        for (int n = 0; n < 80; n++) {
            String name = names.get(rng.nextInt(names.size()));
            int kind = rng.nextInt(6);
            if (kind == 5) {
                String a = name.replace("lora_B", "lora_A"), b = name.replace("lora_A", "lora_B");
                check("the factors of " + a + " swapped", copy(good, "t" + n, configText, Map.of(
                        a, new Mutation(null, null, b), b, new Mutation(null, null, a)), Map.of()));
                continue;
            }
            Mutation m = switch (kind) {
                case 0 -> new Mutation(null, null, null);
                case 1 -> new Mutation(TYPES[rng.nextInt(TYPES.length)], null, null);
                case 2 -> new Mutation(null, new long[]{rng.nextInt(4), 1 + rng.nextInt(300)}, null);
                case 3 -> new Mutation(null, rng.nextBoolean() ? new long[]{2} : new long[]{1, 2, 64}, null);
                default -> new Mutation(null, null, name.replace("layers.", "layers.1"));
            };
            check(name + " " + m, copy(good, "t" + n, configText, Map.of(name, m), Map.of()));
        }
        String[] extras = {"base_model.model.model.layers.9.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight", "base_model.model.lm_head.lora_A.weight",
            "model.layers.0.self_attn.q_proj.lora_A.weight", "", "base_model.model.model.layers.0.mlp.up_proj.bias"};
        for (String extra : extras) {
            check("an extra tensor '" + extra + "'", copy(good, "x" + refused + "-" + loaded, configText, Map.of(),
                    Map.of(extra, new long[]{2, 64})));
        }
        Map<String, Object> huge = new LinkedHashMap<>(config);
        huge.put("r", (long) Integer.MAX_VALUE);
        Map<String, Mutation> empty = new LinkedHashMap<>();
        for (String name : names) {
            empty.put(name, new Mutation(null, name.contains("lora_A") ? new long[]{Integer.MAX_VALUE, 0}
                    : new long[]{0, Integer.MAX_VALUE}, null));
        }
        check("r 2^31 - 1 with empty factors of that rank", copy(good, "huge", Json.write(huge), empty, Map.of()));
        Path noWeights = Files.createDirectory(tmp.resolve("no-weights"));
        Files.writeString(noWeights.resolve(LoraAdapters.CONFIG), configText);
        check("no " + LoraAdapters.WEIGHTS, noWeights);
        Path noConfig = Files.createDirectory(tmp.resolve("no-config"));
        Files.createSymbolicLink(noConfig.resolve(LoraAdapters.WEIGHTS), good.resolve(LoraAdapters.WEIGHTS));
        check("no " + LoraAdapters.CONFIG, noConfig);
        Path notSafeTensors = copy(good, "not-safetensors", configText, Map.of(), Map.of());
        Files.delete(notSafeTensors.resolve(LoraAdapters.WEIGHTS));
        Files.writeString(notSafeTensors.resolve(LoraAdapters.WEIGHTS), "{\"not\": \"safetensors\"}");
        check(LoraAdapters.WEIGHTS + " of JSON text", notSafeTensors);

        assertThat(loaded).as("some mutations still load").isGreaterThan(30);
        assertThat(refused).as("refusals").isGreaterThan(350);
    }

    /** A tensor dropped (all null), retyped, reshaped to dims (keeping its type), or renamed. */
    private record Mutation(DType type, long[] dims, String name) {
        @Override
        public String toString() {
            return name != null ? "renamed to " + name : type == null && dims == null ? "dropped"
                    : type != null ? "as " + type : "reshaped to " + Arrays.toString(dims);
        }
    }

    /**
     * Loads stories260K with the adapter in {@code dir} as {@code jtune eval --adapter dir} does: it must compute
     * finite logits or fail with one sentence, and leave nothing counted in the ledger either way.
     */
    private void check(String what, Path dir) {
        LoadedModel m = null;
        try {
            LoadOptionProvider.Attachment a = new AdapterOption().open(dir);
            m = ModelLoader.load(s, STORIES, null, false, a.transform(), false);
            String note = a.finish().run();
            assertThat(note).as("%s: the load description", what).startsWith("the LoRA adapter " + dir);
            for (float v : logits(m.model())) {
                if (!Float.isFinite(v)) {
                    fail("%s: loaded, but computes a non-finite logit", what);
                }
            }
            loaded++;
        } catch (IOException | IllegalArgumentException e) {
            String message = String.valueOf(e.getMessage());
            if (message.contains("\n") || message.equals("null") || message.isBlank()) {
                fail(shorten(what) + ": not one sentence: " + message, e);
            }
            if (!message.contains(dir.toString())) {
                fail(shorten(what) + ": the sentence does not name the file: " + message, e);
            }
            refused++;
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            fail(shorten(what) + ": " + e, e);
        } finally {
            if (m != null) {
                m.close();
            }
        }
        for (Category c : Category.values()) {
            assertThat(ledger.current(c)).as("%s: nothing left counted as %s", shorten(what), c).isZero();
        }
    }

    private static String shorten(String s) {
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }

    /** The valid adapter: r 2, alpha 4 on q_proj, v_proj and up_proj of stories260K, B drawn so that it matters. */
    private Path write() throws IOException {
        Path dir = tmp.resolve("good");
        LoraAdapters lora = new LoraAdapters(new LoraConfig(2, 4, 0.05, false, List.of("q_proj", "v_proj", "up_proj")),
                1);
        try (LoadedModel m = ModelLoader.load(s, STORIES, null, false, lora.over(WeightTransform.IDENTITY, 1), false)) {
            SplittableRandom rng = new SplittableRandom(5);
            for (LoraWeight w : lora.weights().values()) {
                float[] b = new float[Math.toIntExact(w.b().value().size())];
                for (int i = 0; i < b.length; i++) {
                    b[i] = (float) (0.1 * rng.nextGaussian());
                }
                w.b().value().copyFrom(b);
            }
            lora.save(dir, STORIES.toString());
        }
        return dir;
    }

    /**
     * A copy of good with adapter_config.json's text {@code config}, the tensors of {@code mutations} changed and the
     * f32 tensors of {@code extras} (zero, by name and dims) added.
     */
    private Path copy(Path good, String name, String config, Map<String, Mutation> mutations,
                      Map<String, long[]> extras) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve(name));
        Files.writeString(dir.resolve(LoraAdapters.CONFIG), config);
        if (mutations.isEmpty() && extras.isEmpty()) {
            Files.createSymbolicLink(dir.resolve(LoraAdapters.WEIGHTS), good.resolve(LoraAdapters.WEIGHTS));
            return dir;
        }
        List<Tensor> made = new ArrayList<>();
        try (SafeTensorsReader r = SafeTensorsReader.open(good.resolve(LoraAdapters.WEIGHTS))) {
            SafeTensorsWriter w = new SafeTensorsWriter();
            r.metadata().forEach(w::metadata);
            for (SafeTensors.Entry e : r.entries()) {
                Mutation m = mutations.get(e.name());
                if (m == null || m.name() != null) {
                    w.add(m == null ? e.name() : m.name(), r.tensor(e.name(), pool, Category.WORKSPACE));
                } else if (m.type() != null || m.dims() != null) {
                    Tensor t = pool.allocate(e.name(), m.type() != null ? m.type() : e.type().dtype(),
                            Category.WORKSPACE, m.dims() != null ? m.dims() : e.dims());
                    made.add(t);
                    w.add(e.name(), t);
                }
            }
            extras.forEach((n, dims) -> {
                Tensor t = pool.allocate(n, DType.F32, Category.WORKSPACE, dims);
                made.add(t);
                w.add(n, t);
            });
            w.write(dir.resolve(LoraAdapters.WEIGHTS));
        } finally {
            made.forEach(Tensor::close);
        }
        return dir;
    }

    private float[] logits(LlamaModel m) {
        int seq = 6;
        try (Tensor tokens = s.i32("tokens", Category.WORKSPACE, 1, seq);
             Tensor out = s.f32("logits", Category.WORKSPACE, seq, m.config().vocab())) {
            for (int i = 0; i < seq; i++) {
                tokens.set(1 + 37 * i % 500, 0, i);
            }
            m.logits(tokens, out);
            return out.toFloatArray();
        }
    }
}
