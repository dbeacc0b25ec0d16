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
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.methods.FolderFuzz;
import jtune.methods.FolderFuzzCase;
import jtune.methods.FolderFuzz.ConfigCase;
import jtune.methods.FolderFuzz.Mutation;
import jtune.methods.peft.PeqaScales;
import jtune.methods.peft.PeqaWeight;
import org.junit.jupiter.api.Test;

/**
 * Seeded mutations of a valid PEQA scale set of stories260K (int4 g32 asymmetric, every decoder-block layer but
 * k_proj, as {@code --scales DIR} reads it): its {@code peqa_config.json} fields replaced by values of other types and
 * ranges (each value in turn for bits, group_size, symmetric, layers and codes_crc32), dropped or joined by unknown
 * ones, its text cut short or its bytes flipped, and its tensors dropped, retyped, reshaped, renamed or joined by
 * others. Every case must end in a load whose model computes finite logits, or in one sentence (an
 * {@link IOException} or {@link IllegalArgumentException} without a line break, naming the folder) with nothing left
 * in the ledger; any other exception fails the test with the case. The shared parts come from {@link FolderFuzz}.
 */
class ScalesFolderFuzzTest extends FolderFuzzCase {
    private static final QuantFormat INT4_G32 = QuantFormat.integer(4, 32, false, DType.F32);
    private static final Object[] VALUES = {0L, 1L, 2L, 3L, 4L, 5L, 8L, 9L, 16L, 32L, 64L, 128L, 4096L, -1L, -32L,
        2147483647L, 2147483648L, 4294967300L, Long.MAX_VALUE, Long.MIN_VALUE, 4.0, 4.5, 32.0, 1e300, -0.0, true, false,
        null, "", "4", "jtune-peqa-scales-1", "jtune-peqa-scales-2", "00000000", List.of(), List.of(4L),
        Arrays.asList((Object) null), List.of("model.layers.0.self_attn.q_proj"), Map.of(), Map.of("bits", 4L)};
    private static final String[] FIELDS = {"format", "base_model", "quantizer", "bits", "group_size", "symmetric",
        "codes_crc32", "layers"};

    @Test
    void everyMutationLoadsAndComputesOrFailsWithOneSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20261128);
        Path good = write();
        String configText = Files.readString(good.resolve(PeqaScales.CONFIG));
        Map<String, Object> config = Json.parseObject(configText);
        List<String> names = FolderFuzz.tensorNames(good.resolve(PeqaScales.SCALES));
        check("the valid scale set", good);
        assertThat(loaded).as("the valid scale set loads").isEqualTo(1);

        List<Object> values = new ArrayList<>(Arrays.asList(VALUES));
        values.addAll(layerLists(config));
        List<ConfigCase> cases = new ArrayList<>();
        for (String field : new String[]{"bits", "group_size", "symmetric", "layers", "codes_crc32", "format"}) {
            cases.addAll(FolderFuzz.everyValue(config, field, values));
            Map<String, Object> c = new LinkedHashMap<>(config);
            c.remove(field);
            cases.add(new ConfigCase("no-" + field, "config -" + field, Json.write(c)));
        }
        for (int n = 0; n < 100; n++) {
            Map<String, Object> c = new LinkedHashMap<>(config);
            String what = FolderFuzz.edit(c, rng, 3, 10, "unknown_", FIELDS, values);
            cases.add(new ConfigCase("c" + n, what, Json.write(c)));
        }
        cases.addAll(FolderFuzz.rawNumbers(config, FIELDS));
        cases.addAll(FolderFuzz.cuts(configText, rng, 30));
        cases.addAll(FolderFuzz.flips(configText, rng, 50));
        for (ConfigCase k : cases) {
            check(k.what(), copy(good, k.dir(), k.text(), Map.of(), Map.of()));
        }
        String[] wholes = {"", "[]", "null", "1", "\"jtune-peqa-scales-1\"", "{}",
            "{\"format\":\"jtune-peqa-scales-1\"}", "[".repeat(100_000) + "]".repeat(100_000),
            "{\"format\":\"jtune-peqa-scales-1\",\"layers\":" + "[".repeat(100_000) + "]".repeat(100_000) + "}"};
        for (int n = 0; n < wholes.length; n++) {
            check("config " + FolderFuzz.shorten(wholes[n]), copy(good, "whole" + n, wholes[n], Map.of(), Map.of()));
        }

        for (int n = 0; n < 70; n++) {
            String name = names.get(rng.nextInt(names.size()));
            Mutation m = switch (rng.nextInt(5)) {
                case 0 -> Mutation.dropped();
                case 1 -> Mutation.retyped(rng);
                case 2 -> Mutation.reshaped(rng.nextInt(4) * 32L, 1 + rng.nextInt(6));
                case 3 -> Mutation.reshaped(rng.nextBoolean() ? new long[]{64} : new long[]{1, 64, 2});
                default -> Mutation.renamed(name.replace("layers.", "layers.1"));
            };
            check(name + " " + m, copy(good, "t" + n, configText, Map.of(name, m), Map.of()));
        }
        String[] extras = {"model.layers.9.self_attn.q_proj.scales", "model.layers.0.self_attn.k_proj.scales",
            "lm_head.scales", "", "model.layers.0.mlp.up_proj.zeros"};
        for (int n = 0; n < extras.length; n++) {
            check("an extra tensor '" + extras[n] + "'", copy(good, "x" + n, configText, Map.of(),
                    Map.of(extras[n], new long[]{64, 2})));
        }
        Path noScales = Files.createDirectory(tmp.resolve("no-scales"));
        Files.writeString(noScales.resolve(PeqaScales.CONFIG), configText);
        check("no " + PeqaScales.SCALES, noScales);
        Path noConfig = Files.createDirectory(tmp.resolve("no-config"));
        Files.createSymbolicLink(noConfig.resolve(PeqaScales.SCALES), good.resolve(PeqaScales.SCALES));
        check("no " + PeqaScales.CONFIG, noConfig);
        Path notSafeTensors = Files.createDirectory(tmp.resolve("not-safetensors"));
        Files.writeString(notSafeTensors.resolve(PeqaScales.CONFIG), configText);
        Files.writeString(notSafeTensors.resolve(PeqaScales.SCALES), "{\"not\": \"safetensors\"}");
        check(PeqaScales.SCALES + " of JSON text", notSafeTensors);

        assertThat(loaded).as("some mutations still load").isGreaterThan(20);
        assertThat(refused).as("refusals").isGreaterThan(350);
    }

    /** Lists of layers near the valid one: reordered, shortened, lengthened, repeated, renamed. */
    private static List<Object> layerLists(Map<String, Object> config) {
        List<String> valid = ((List<?>) config.get("layers")).stream().map(String::valueOf).toList();
        List<Object> lists = new ArrayList<>();
        lists.add(valid);
        lists.add(valid.reversed());
        lists.add(valid.subList(1, valid.size()));
        lists.add(valid.subList(0, 1));
        List<String> more = new ArrayList<>(valid);
        more.add("model.layers.9.mlp.up_proj");
        lists.add(more);
        List<String> twice = new ArrayList<>(valid);
        twice.add(valid.getFirst());
        lists.add(twice);
        List<String> withK = new ArrayList<>(valid);
        withK.add(1, "model.layers.0.self_attn.k_proj");
        lists.add(withK);
        lists.add(valid.stream().map(l -> l.replace("model.", "")).toList());
        lists.add(List.of("lm_head"));
        return lists;
    }

    /**
     * Loads stories260K with the scale set in {@code dir} as {@code jtune eval --scales dir} does: it must compute
     * finite logits or fail with one sentence naming the folder, and leave nothing counted in the ledger either way.
     */
    private void check(String what, Path dir) {
        count(FolderFuzz.check(what, dir, ledger,
                () -> FolderFuzz.loadWith(what, s, STORIES, new ScalesOption(), dir, "the PEQA scale set ")));
    }

    /** The valid scale set: stories260K quantized int4 g32 asym, every block layer but k_proj PEQA, scales nudged. */
    private Path write() throws IOException {
        Path dir = tmp.resolve("good");
        Map<String, PeqaWeight> peqa = new LinkedHashMap<>();
        try (LoadedModel m = ModelLoader.load(s, STORIES, null, false,
                PeqaWeight.rtn(INT4_G32, l -> !l.endsWith("k_proj"), peqa), false)) {
            int i = 0;
            for (PeqaWeight w : peqa.values()) {
                float[] v = w.scales().value().toFloatArray();
                for (int e = 0; e < v.length; e++) {
                    v[e] *= 1 + 0.01f * ((i++ * 7) % 13 - 6);
                }
                w.scales().value().copyFrom(v);
            }
            PeqaScales.save(dir, peqa, STORIES.toString(), "rtn " + INT4_G32);
        }
        return dir;
    }

    /**
     * A copy of good with peqa_config.json's text {@code config}, the tensors of {@code mutations} changed and the f32
     * tensors of {@code extras} (zero, by name and dims) added.
     */
    private Path copy(Path good, String name, String config, Map<String, Mutation> mutations,
                      Map<String, long[]> extras) throws IOException {
        return FolderFuzz.copy(good, tmp.resolve(name), PeqaScales.CONFIG, config, PeqaScales.SCALES, mutations, extras,
                pool);
    }
}
