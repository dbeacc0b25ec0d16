package jtune.methods.quant;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.io.Json;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.io.SafeTensors;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.methods.FolderFuzz;
import jtune.methods.FolderFuzzCase;
import jtune.methods.FolderFuzz.Mutation;
import org.junit.jupiter.api.Test;

/**
 * Seeded mutations of a valid quantized folder of stories260K (int4 g32 asymmetric, LoRC rank 2 with 8-bit factors,
 * and one with f32 factors): its {@code quantization_config} fields replaced by values of other types and ranges,
 * dropped or joined by unknown ones, and its tensors dropped, retyped or reshaped. Every case must end in a load whose
 * model computes finite logits, or in one sentence (an {@link IOException} or {@link IllegalArgumentException}
 * without a line break) with nothing left in the ledger; any other exception fails the test with the case. The
 * shared parts come from {@link FolderFuzz}.
 */
class QuantizedFolderFuzzTest extends FolderFuzzCase {
    private static final List<Object> VALUES = List.of(0L, 1L, 2L, 3L, 4L, 5L, 8L, 16L, 32L, 64L, 128L, 256L, 4096L,
        8192L, -1L, 2147483648L, Long.MAX_VALUE, 1.5, 1e300, -0.0, true, false, "", "int", "nf4", "rtn", "gptq", "nf4 ",
        "F32", "BF16", "F16", "jtune", List.of(), List.of(4L), Map.of(), Map.of("file", "x"));
    private static final String[] FIELDS = {"quant_method", "format_version", "method", "kind", "bits", "group_size",
        "sym", "scale_dtype", "double_quant", "lorc_rank", "lorc_bits", "act_order", "damp_percent", "calibration"};

    @Test
    void everyMutationLoadsAndComputesOrFailsWithOneSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20261126);
        for (int lorcBits : new int[]{8, 32}) {
            Path good = write(lorcBits);
            String configText = Files.readString(good.resolve("config.json"));
            Map<String, Object> config = Json.parseObject(configText);
            List<String> names = FolderFuzz.tensorNames(good.resolve(SafeTensors.MODEL_FILE));
            int before = loaded;
            check("the valid " + lorcBits + "-bit folder", good);
            assertThat(loaded).as("the valid %d-bit folder loads", lorcBits).isEqualTo(before + 1);
            for (int n = 0; n < 150; n++) {
                Map<String, Object> q = new LinkedHashMap<>(quantization(config));
                String what = FolderFuzz.edit(q, rng, 2, 12, "bits_", FIELDS, VALUES);
                Map<String, Object> c = new LinkedHashMap<>(config);
                c.put("quantization_config", q);
                check(what, copy(good, "c" + lorcBits + "-" + n, Json.write(c), Map.of()));
            }
            for (int n = 0; n < 60; n++) {
                String name = names.get(rng.nextInt(names.size()));
                int kind = rng.nextInt(3);
                Mutation m = switch (kind) {
                    case 0 -> Mutation.dropped();
                    case 1 -> Mutation.retyped(rng);
                    default -> Mutation.reshaped(rng.nextInt(4), 1 + rng.nextInt(300));
                };
                check(name + " " + m, copy(good, "t" + lorcBits + "-" + n, configText, Map.of(name, m)));
            }
        }
        assertThat(refused).as("refusals").isGreaterThan(300);
    }

    /**
     * Loads the folder {@code dir}: it must compute finite logits or fail with one sentence, and leave nothing counted
     * in the ledger either way.
     */
    private void check(String what, Path dir) {
        count(FolderFuzz.check(what, null, ledger, () -> {
            try (LoadedModel m = ModelLoader.load(s, dir, null, false, WeightTransform.IDENTITY, false)) {
                FolderFuzz.assertFiniteLogits(what, s, m.model());
            }
        }));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> quantization(Map<String, Object> config) {
        return (Map<String, Object>) config.get("quantization_config");
    }

    /** The valid folder: stories260K as int4 g32 with LoRC rank 2, factors of lorcBits. */
    private Path write(int lorcBits) throws IOException {
        Path dir = tmp.resolve("good" + lorcBits);
        ModelQuantizer.Options o = new ModelQuantizer.Options(ModelQuantizer.Method.RTN,
                QuantFormat.integer(4, 32, false, DType.F32), false, 0.01, 2, lorcBits, 0);
        try (LoadedModel original = ModelLoader.load(s, STORIES, null, false, WeightTransform.IDENTITY, false)) {
            ModelQuantizer.Result q = ModelQuantizer.quantize(s, original.model(), o, List.of());
            try (LlamaModel quantized = q.model()) {
                QuantizedModelFile.write(quantized, q.weights(), new QuantizedModelFile.Spec(o.method(), o.format(), 2,
                        lorcBits, Map.of()), original.tokenizer(), original.tokenizerFiles(), dir);
            }
        }
        return dir;
    }

    /** A copy of good with config.json's text {@code config} and the tensors of {@code mutations} changed. */
    private Path copy(Path good, String name, String config, Map<String, Mutation> mutations) throws IOException {
        Path dir = FolderFuzz.copy(good, tmp.resolve(name), "config.json", config, SafeTensors.MODEL_FILE, mutations,
                Map.of(), pool);
        Files.copy(good.resolve("tokenizer.bin"), dir.resolve("tokenizer.bin"));
        return dir;
    }
}
