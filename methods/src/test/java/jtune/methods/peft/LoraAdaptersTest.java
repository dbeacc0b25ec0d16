package jtune.methods.peft;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Adapters are saved with PEFT's file names, config fields and tensor keys and shapes, and read back into a model built
 * from the saved config, which then computes exactly what the saved one did; foreign adapters are refused by name.
 */
class LoraAdaptersTest {
    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);
    private final Session s = new Session(new ScalarBackend(), pool);

    @TempDir
    Path dir;

    @AfterEach
    void close() {
        pool.close();
    }

    private LlamaModel model(LoraAdapters adapters) {
        return LlamaModel.create(s, PeqaWeightTest.TINY, WeightSource.random(4), false,
                adapters.over(WeightTransform.IDENTITY, 8), false);
    }

    @Test
    void savedInPeftsFormatAndReadBack() throws IOException {
        LoraConfig c = new LoraConfig(4, 16, 0.1, true, List.of("q_proj", "v_proj", "down_proj"));
        LoraAdapters saved = new LoraAdapters(c, 1);
        float[] logits;
        try (LlamaModel m = model(saved)) {
            assertThat(saved.weights()).hasSize(6).containsKey("model.layers.1.mlp.down_proj");
            long trainable = m.parameters().stream().filter(Parameter::trainable).mapToLong(p -> p.value().size())
                    .sum();
            assertThat(trainable).isEqualTo(2L * 4 * ((64 + 64) + (64 + 32) + (96 + 64)));
            assertThat(ledger.current(Category.TRAINABLE_PARAMETERS)).isEqualTo(4 * trainable);
            SplittableRandom rng = new SplittableRandom(2);
            for (LoraWeight w : saved.weights().values()) {
                float[] b = new float[Math.toIntExact(w.b().value().size())];
                for (int i = 0; i < b.length; i++) {
                    b[i] = (float) rng.nextGaussian();
                }
                w.b().value().copyFrom(b);
            }
            logits = PeqaWeightTest.logits(s, m);
            saved.save(dir, "stories260K");
        }
        Map<String, Object> json = Json.parseObject(Files.readString(dir.resolve("adapter_config.json")));
        assertThat(json).containsEntry("peft_type", "LORA").containsEntry("task_type", "CAUSAL_LM")
                .containsEntry("r", 4L).containsEntry("lora_alpha", 16L).containsEntry("lora_dropout", 0.1)
                .containsEntry("use_rslora", true).containsEntry("bias", "none")
                .containsEntry("base_model_name_or_path", "stories260K")
                .containsEntry("target_modules", List.of("q_proj", "v_proj", "down_proj"));
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve("adapter_model.safetensors"))) {
            assertThat(r.metadata()).containsEntry("format", "pt");
            assertThat(r.entries()).hasSize(12);
            assertThat(r.entry("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").dims())
                    .containsExactly(4, 64);
            assertThat(r.entry("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").dims())
                    .containsExactly(32, 4);
            assertThat(r.entry("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").dims())
                    .containsExactly(4, 96);
        }
        LoraAdapters read = new LoraAdapters(LoraAdapters.readConfig(dir), 1);
        assertThat(read.config()).isEqualTo(c);
        try (LlamaModel m = model(read)) {
            assertThat(PeqaWeightTest.logits(s, m)).isNotEqualTo(logits);
            read.load(dir);
            assertThat(PeqaWeightTest.logits(s, m)).containsExactly(logits);
        }
        LoraAdapters fewer = new LoraAdapters(new LoraConfig(4, 16, 0.1, true, List.of("q_proj", "v_proj")), 1);
        try (LlamaModel m = model(fewer)) {
            assertThatThrownBy(() -> fewer.load(dir)).isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageContaining("holds tensor 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'");
        }
        LoraAdapters wider = new LoraAdapters(new LoraConfig(8, 16, 0.1, true, c.targets()), 1);
        try (LlamaModel m = model(wider)) {
            assertThatThrownBy(() -> wider.load(dir)).hasMessageContaining("describes r 4");
        }
    }

    @Test
    void refusesAdaptersItCannotApply() throws IOException {
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"IA3\", \"r\": 8}");
        assertThatThrownBy(() -> LoraAdapters.readConfig(dir)).isInstanceOf(SafeTensors.FormatException.class)
                .hasMessageContaining("\"peft_type\" is \"IA3\"");
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, "
                + "\"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"q_proj\": 4}}");
        assertThatThrownBy(() -> LoraAdapters.readConfig(dir)).hasMessageContaining("\"rank_pattern\"");
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, "
                + "\"target_modules\": [\"q_proj\"], \"use_dora\": true}");
        assertThatThrownBy(() -> LoraAdapters.readConfig(dir)).hasMessageContaining("\"use_dora\" is true");
        String[][] refused = {
            {"\"layers_to_transform\": [0, 1]", "\"layers_to_transform\" is [0,1]; jtune reads LoRA adapters with "
                + "layers_to_transform null only"},
            {"\"layers_pattern\": \"layers\"", "\"layers_pattern\" is \"layers\""},
            {"\"exclude_modules\": [\"v_proj\"]", "\"exclude_modules\" is [\"v_proj\"]"},
            {"\"use_rslora\": \"true\"", "\"use_rslora\" must be true or false, got \"true\""},
        };
        for (String[] c : refused) {
            Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8, "
                    + "\"lora_alpha\": 16, \"target_modules\": [\"q_proj\"], " + c[0] + "}");
            assertThatThrownBy(() -> LoraAdapters.readConfig(dir)).as(c[0]).hasMessageContaining(c[1]);
        }
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, "
                + "\"target_modules\": [\"q_proj\", \"lm_head\"]}");
        assertThatThrownBy(() -> LoraAdapters.readConfig(dir)).hasMessageContaining("\"target_modules\" names "
                + "\"lm_head\"; jtune adapts only the decoder blocks' linear layers, q_proj, k_proj");
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, "
                + "\"target_modules\": [\"q_proj\"]}");
        assertThat(LoraAdapters.readConfig(dir)).isEqualTo(new LoraConfig(8, 16, 0, false, List.of("q_proj")));
    }
}
