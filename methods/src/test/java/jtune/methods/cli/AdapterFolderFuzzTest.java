package jtune.methods.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.io.Json;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.nn.WeightTransform;
import jtune.methods.FolderFuzz;
import jtune.methods.FolderFuzzCase;
import jtune.methods.FolderFuzz.ConfigCase;
import jtune.methods.FolderFuzz.Mutation;
import jtune.methods.peft.LoraAdapters;
import jtune.methods.peft.LoraConfig;
import jtune.methods.peft.LoraWeight;
import org.junit.jupiter.api.Test;

/**
 * Seeded mutations of a valid LoRA adapter folder of stories260K (r 2 on q_proj, v_proj and up_proj, as
 * {@code --adapter DIR} reads it): its {@code adapter_config.json} fields replaced by values of other types and
 * ranges (each value in turn for r, lora_alpha, lora_dropout and target_modules), dropped or joined by unknown ones,
 * its text cut short or its bytes flipped, and its tensors dropped, retyped, reshaped, renamed or joined by others.
 * Every case must end in a load whose model computes finite logits, or in one sentence naming the folder (an
 * {@link IOException} or {@link IllegalArgumentException} without a line break) with nothing left in the ledger; any
 * other exception fails the test with the case. The shared parts come from {@link FolderFuzz}.
 */
class AdapterFolderFuzzTest extends FolderFuzzCase {
    private static final List<Object> VALUES = Arrays.asList(0L, 1L, 2L, 3L, 4L, 8L, 64L, 4096L, -1L, 2147483647L,
        2147483648L, Long.MAX_VALUE, Long.MIN_VALUE, 0.5, 1.5, 2.0, 0.999, 1e300, -0.0, 1e-300, true, false, null, "",
        "2", "LORA", "lora", "CAUSAL_LM", "none", "all", "q_proj", List.of(), List.of("q_proj"),
        List.of("q_proj", "v_proj", "up_proj"), List.of("up_proj", "v_proj", "q_proj"), List.of("q_proj", "k_proj"),
        List.of("q", "v"), List.of(1L), Arrays.asList((Object) null), List.of(List.of()), List.of(0L, 1L),
        Map.of(), Map.of("q_proj", 4L), Map.of("model.layers.0.self_attn.q_proj", 2L));
    private static final String[] FIELDS = {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout",
        "target_modules", "use_rslora", "bias", "fan_in_fan_out", "use_dora", "modules_to_save", "rank_pattern",
        "alpha_pattern", "base_model_name_or_path", "inference_mode", "layers_to_transform", "layers_pattern",
        "init_lora_weights", "revision"};

    @Test
    void everyMutationLoadsAndComputesOrFailsWithOneSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20261127);
        Path good = write();
        String configText = Files.readString(good.resolve(LoraAdapters.CONFIG));
        Map<String, Object> config = Json.parseObject(configText);
        List<String> names = FolderFuzz.tensorNames(good.resolve(LoraAdapters.WEIGHTS));
        check("the valid adapter", good);
        assertThat(loaded).as("the valid adapter loads").isEqualTo(1);

        List<ConfigCase> cases = new ArrayList<>();
        for (String field : new String[]{"r", "lora_alpha", "lora_dropout", "target_modules"}) {
            cases.addAll(FolderFuzz.everyValue(config, field, VALUES));
        }
        for (int n = 0; n < 160; n++) {
            Map<String, Object> c = new LinkedHashMap<>(config);
            String what = FolderFuzz.edit(c, rng, 2, 12, "unknown_", FIELDS, VALUES);
            cases.add(new ConfigCase("c" + n, what, Json.write(c)));
        }
        cases.addAll(FolderFuzz.rawNumbers(config, FIELDS));
        cases.addAll(FolderFuzz.cuts(configText, rng, 40));
        cases.addAll(FolderFuzz.flips(configText, rng, 40));
        for (ConfigCase k : cases) {
            check(k.what(), copy(good, k.dir(), k.text(), Map.of(), Map.of()));
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
                        a, Mutation.renamed(b), b, Mutation.renamed(a)), Map.of()));
                continue;
            }
            Mutation m = switch (kind) {
                case 0 -> Mutation.dropped();
                case 1 -> Mutation.retyped(rng);
                case 2 -> Mutation.reshaped(rng.nextInt(4), 1 + rng.nextInt(300));
                case 3 -> Mutation.reshaped(rng.nextBoolean() ? new long[]{2} : new long[]{1, 2, 64});
                default -> Mutation.renamed(name.replace("layers.", "layers.1"));
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
            empty.put(name, Mutation.reshaped(name.contains("lora_A") ? new long[]{Integer.MAX_VALUE, 0}
                    : new long[]{0, Integer.MAX_VALUE}));
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

    /**
     * Loads stories260K with the adapter in {@code dir} as {@code jtune eval --adapter dir} does: it must compute
     * finite logits or fail with one sentence naming the folder, and leave nothing counted in the ledger either way.
     */
    private void check(String what, Path dir) {
        count(FolderFuzz.check(what, dir, ledger,
                () -> FolderFuzz.loadWith(what, s, STORIES, new AdapterOption(), dir, "the LoRA adapter ")));
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
        return FolderFuzz.copy(good, tmp.resolve(name), LoraAdapters.CONFIG, config, LoraAdapters.WEIGHTS, mutations,
                extras, pool);
    }
}
