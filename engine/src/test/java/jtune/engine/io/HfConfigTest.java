package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaConfig.RopeScaling;
import org.junit.jupiter.api.Test;

/**
 * config.json files modelled on the published ones of Llama-2-7b-hf, Llama-3.1-8B, Llama-3.2-1B, Mistral-7B-v0.1,
 * Qwen2-0.5B and Qwen3-0.6B (their values as published on the Hugging Face hub), each read to the LlamaConfig that
 * transformers' own config class gives; then the refusals, the defaults, and config.json written and read back.
 */
class HfConfigTest {
    static final String LLAMA2_7B = """
            {"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
             "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008,
             "max_position_embeddings": 4096, "model_type": "llama", "num_attention_heads": 32,
             "num_hidden_layers": 32, "num_key_value_heads": 32, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
             "rope_scaling": null, "tie_word_embeddings": false, "torch_dtype": "float16",
             "transformers_version": "4.31.0.dev0", "use_cache": true, "vocab_size": 32000}""";
    static final String LLAMA31_8B = """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
             "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
             "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
             "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
             "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256}""";
    static final String LLAMA32_1B = """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
             "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
             "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32,
             "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
             "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256}""";
    static final String MISTRAL_7B = """
            {"architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
             "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
             "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
             "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
             "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
             "transformers_version": "4.34.0.dev0", "use_cache": true, "vocab_size": 32000}""";
    static final String QWEN2_05B = """
            {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
             "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
             "intermediate_size": 4864, "max_position_embeddings": 131072, "max_window_layers": 24,
             "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
             "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": true,
             "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true,
             "use_sliding_window": false, "vocab_size": 151936}""";
    static final String QWEN3_06B = """
            {"architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
             "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
             "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
             "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
             "rope_scaling": null, "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true,
             "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": true,
             "use_sliding_window": false, "vocab_size": 151936}""";

    static LlamaConfig parse(String json) {
        return HfConfig.parse(json, "models/x/config.json");
    }

    @Test
    void readsThePublishedConfigs() {
        assertThat(parse(LLAMA2_7B)).isEqualTo(new LlamaConfig(4096, 11008, 32, 32, 32, 128, 32000, 4096, 10000.0,
                null, 1e-5f, false, false, false));
        assertThat(parse(LLAMA31_8B)).isEqualTo(new LlamaConfig(4096, 14336, 32, 32, 8, 128, 128256, 131072,
                500000.0, new RopeScaling(8.0, 1.0, 4.0, 8192), 1e-5f, false, false, false));
        assertThat(parse(LLAMA32_1B)).isEqualTo(new LlamaConfig(2048, 8192, 16, 32, 8, 64, 128256, 131072, 500000.0,
                new RopeScaling(32.0, 1.0, 4.0, 8192), 1e-5f, true, false, false));
        assertThat(parse(MISTRAL_7B)).as("positions clamped to the sliding window")
                .isEqualTo(new LlamaConfig(4096, 14336, 32, 32, 8, 128, 32000, 4096, 10000.0, null, 1e-5f, false,
                        false, false));
        assertThat(parse(QWEN2_05B)).isEqualTo(new LlamaConfig(896, 4864, 24, 14, 2, 64, 151936, 131072, 1e6, null,
                1e-6f, true, true, false));
        assertThat(parse(QWEN3_06B)).isEqualTo(new LlamaConfig(1024, 3072, 28, 16, 8, 128, 151936, 40960, 1e6, null,
                1e-6f, true, false, true));
    }

    @Test
    void readsTransformers5RopeParameters() {
        String v5 = LLAMA32_1B.replace("\"torch_dtype\"", "\"dtype\"")
                .replace("\"rope_theta\": 500000.0, ", "")
                .replace("\"rope_scaling\": {", "\"rope_parameters\": {\"rope_theta\": 500000.0, ");
        assertThat(parse(v5)).isEqualTo(parse(LLAMA32_1B));
        String plain = QWEN3_06B.replace("\"rope_scaling\": null, \"rope_theta\": 1000000, ",
                "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000}, ");
        assertThat(plain).contains("rope_parameters");
        assertThat(parse(plain)).isEqualTo(parse(QWEN3_06B));
    }

    @Test
    void appliesEachArchitecturesDefaults() {
        String sizes = "\"hidden_size\": 256, \"intermediate_size\": 512, \"num_hidden_layers\": 2, "
                + "\"num_attention_heads\": 4, \"vocab_size\": 1000";
        assertThat(parse("{\"architectures\": [\"LlamaForCausalLM\"], " + sizes + "}"))
                .isEqualTo(new LlamaConfig(256, 512, 2, 4, 4, 64, 1000, 2048, 10000.0, null, 1e-6f, false, false, false));
        assertThat(parse("{\"model_type\": \"mistral\", " + sizes.replace("4,", "16,") + "}"))
                .as("Mistral: 8 kv heads, positions clamped to the default window 4096")
                .isEqualTo(new LlamaConfig(256, 512, 2, 16, 8, 16, 1000, 4096, 10000.0, null, 1e-6f, false, false, false));
        assertThat(parse("{\"architectures\": [\"MistralForCausalLM\"], " + sizes + ", \"num_key_value_heads\": 4, "
                + "\"sliding_window\": null}").maxSeq()).as("a null window clamps nothing").isEqualTo(4096 * 32);
        assertThat(parse("{\"architectures\": [\"Qwen2ForCausalLM\"], " + sizes.replace("4,", "32,") + "}"))
                .isEqualTo(new LlamaConfig(256, 512, 2, 32, 32, 8, 1000, 32768, 10000.0, null, 1e-6f, false, true, false));
        assertThat(parse("{\"architectures\": [\"Qwen3ForCausalLM\"], " + sizes.replace("4,", "32,") + "}"))
                .isEqualTo(new LlamaConfig(256, 512, 2, 32, 32, 128, 1000, 32768, 10000.0, null, 1e-6f, false, false, true));
    }

    /** Each case: the config text and the words its one-sentence error must contain. */
    @Test
    void refusesWhatItDoesNotSupportInOneSentence() {
        Map<String, String[]> cases = Map.ofEntries(
                Map.entry(LLAMA2_7B.replace("LlamaForCausalLM", "GPT2LMHeadModel"),
                        new String[]{"\"architectures\" is [\"GPT2LMHeadModel\"]", "Qwen3ForCausalLM"}),
                Map.entry(LLAMA2_7B.replace("\"silu\"", "\"gelu\""),
                        new String[]{"\"hidden_act\" is \"gelu\"", "only \"silu\""}),
                Map.entry(LLAMA2_7B.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}"),
                        new String[]{"\"rope_scaling.type\" is \"linear\"", "\"llama3\""}),
                Map.entry(QWEN2_05B.replace("\"rope_theta\"", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
                                + "\"original_max_position_embeddings\": 32768}, \"rope_theta\""),
                        new String[]{"\"rope_scaling.rope_type\" is \"yarn\"", "\"llama3\""}),
                Map.entry(LLAMA2_7B.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}"),
                        new String[]{"\"rope_scaling.type\" is \"dynamic\""}),
                Map.entry(LLAMA2_7B.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"longrope\"}"),
                        new String[]{"\"rope_scaling.rope_type\" is \"longrope\""}),
                Map.entry(QWEN2_05B.replace("\"use_sliding_window\": false", "\"use_sliding_window\": true"),
                        new String[]{"\"use_sliding_window\" is true", "false"}),
                Map.entry(LLAMA31_8B.replace("\"attention_bias\": false", "\"attention_bias\": true"),
                        new String[]{"\"attention_bias\" is true", "Qwen2ForCausalLM"}),
                Map.entry(QWEN3_06B.replace("\"attention_bias\": false", "\"attention_bias\": true"),
                        new String[]{"\"attention_bias\" is true"}),
                Map.entry(LLAMA31_8B.replace("\"mlp_bias\": false", "\"mlp_bias\": true"),
                        new String[]{"\"mlp_bias\" is true"}),
                Map.entry(LLAMA2_7B.replace("\"use_cache\"", "\"quantization_config\": {\"quant_method\": \"gptq\"}, \"use_cache\""),
                        new String[]{"\"quantization_config\" is present", "unquantized"}),
                Map.entry(QWEN3_06B.replace("\"use_cache\"", "\"layer_types\": [\"full_attention\", \"sliding_attention\"], \"use_cache\""),
                        new String[]{"\"layer_types\"", "sliding_attention", "only \"full_attention\""}),
                Map.entry(LLAMA2_7B.replace("\"hidden_size\": 4096,", ""), new String[]{"lacks \"hidden_size\""}),
                Map.entry(LLAMA2_7B.replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": \"32\""),
                        new String[]{"\"num_hidden_layers\" must be a whole number, got \"32\""}),
                Map.entry(LLAMA2_7B.replace("\"num_key_value_heads\": 32", "\"num_key_value_heads\": 5"),
                        new String[]{"multiple of kv heads"}),
                Map.entry("{\"architectures\": ", new String[]{"is not a valid config.json", "malformed JSON"}));
        cases.forEach((json, words) -> assertThatThrownBy(() -> parse(json)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageStartingWith("models/x/config.json")
                .hasMessageContainingAll(words)
                .satisfies(e -> assertThat(e.getMessage()).as("one sentence").doesNotContain(". ", "\n")));
    }

    @Test
    void writesAConfigThatReadsBackEqual() {
        LlamaConfig[] configs = {parse(LLAMA2_7B), parse(LLAMA31_8B), parse(LLAMA32_1B), parse(QWEN2_05B),
                parse(QWEN3_06B), new LlamaConfig(64, 172, 5, 8, 4, 8, 512, 512, 10000.0, null, 1e-5f, true, false, false)};
        for (LlamaConfig c : configs) {
            String json = HfConfig.write(c, 1, 2);
            assertThat(HfConfig.parse(json, "written")).as(json).isEqualTo(c);
            Map<String, Object> m = Json.parseObject(json);
            assertThat(m).containsEntry("torch_dtype", "float32").containsEntry("bos_token_id", 1L)
                    .containsEntry("eos_token_id", 2L).containsEntry("hidden_act", "silu");
        }
        assertThat(Json.parseObject(HfConfig.write(parse(QWEN3_06B), -1, -1)))
                .containsEntry("architectures", java.util.List.of("Qwen3ForCausalLM")).containsEntry("model_type", "qwen3")
                .doesNotContainKey("bos_token_id");
        assertThat(Json.parseObject(HfConfig.write(parse(QWEN2_05B), -1, -1)))
                .containsEntry("architectures", java.util.List.of("Qwen2ForCausalLM"));
        assertThat(Json.parseObject(HfConfig.write(parse(LLAMA31_8B), -1, -1)))
                .containsEntry("architectures", java.util.List.of("LlamaForCausalLM"))
                .containsEntry("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0,
                        "high_freq_factor", 4.0, "original_max_position_embeddings", 8192L));
        LlamaConfig both = new LlamaConfig(64, 128, 1, 4, 4, 16, 100, 64, 1e4, null, 1e-6f, false, true, true);
        assertThatThrownBy(() -> HfConfig.write(both, -1, -1)).hasMessageContaining("no Hugging Face architecture");
    }
}
