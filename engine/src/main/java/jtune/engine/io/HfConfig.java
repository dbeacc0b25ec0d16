package jtune.engine.io;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.model.LlamaConfig;

/**
 * A Hugging Face {@code config.json} and {@link LlamaConfig}, both ways.
 *
 * <p>Reading accepts the architectures {@code LlamaForCausalLM} (Llama 2, 3, 3.1, 3.2), {@code MistralForCausalLM},
 * {@code Qwen2ForCausalLM} (q/k/v bias) and {@code Qwen3ForCausalLM} (per-head q/k norm), named by
 * {@code "architectures"} or, when that is absent, {@code "model_type"}. It requires {@code hidden_size},
 * {@code intermediate_size}, {@code num_hidden_layers}, {@code num_attention_heads} and {@code vocab_size}; the other
 * fields default as transformers' config class of that architecture does: {@code num_key_value_heads} to the
 * heads (Llama), 8 (Mistral) or 32 (Qwen2, Qwen3); {@code head_dim} to hidden / heads (128 for Qwen3);
 * {@code max_position_embeddings} to 2048 (Llama), 131072 (Mistral) or 32768 (Qwen); {@code rope_theta} to 10000;
 * {@code rms_norm_eps} to 1e-6; {@code tie_word_embeddings} to false. A null value counts as absent (except for
 * Mistral's sliding_window, below). RoPE comes from
 * {@code rope_theta} and {@code rope_scaling} (null, type "default", or type "llama3" with factor, low_freq_factor,
 * high_freq_factor and original_max_position_embeddings; the type under "rope_type" or the older "type"), or from
 * transformers 5's {@code rope_parameters}, which holds the same fields and rope_theta.
 *
 * <p>Mistral's sliding window: attention within a window of {@code sliding_window} positions equals full causal
 * attention over sequences no longer than the window, so the model's usable positions are clamped to
 * min(max_position_embeddings, sliding_window). As in transformers, an absent sliding_window means 4096 and a null
 * one means no window (the positions are left as they are).
 *
 * <p>Refused, each in one sentence naming the file, the field, its value and what is supported: another
 * architecture; {@code hidden_act} other than "silu"; another rope scaling type (linear, dynamic, yarn, longrope,
 * ...); {@code attention_bias} true for Llama and Qwen3 (it would add an o_proj bias); {@code mlp_bias} true;
 * {@code use_sliding_window} true (Qwen2, Qwen3); a {@code layer_types} entry other than "full_attention"; a
 * {@code quantization_config}. Every other field (torch_dtype, bos_token_id, transformers_version, use_cache,
 * initializer_range, pretraining_tp, attention_dropout, max_window_layers, ...) is ignored: none changes the
 * forward pass.
 *
 * <p>Writing chooses the architecture from the config's flags: q/k norm makes Qwen3, q/k/v bias Qwen2, otherwise
 * Llama; a config with both has no Hugging Face architecture and is refused.
 */
public final class HfConfig {
    /** The architectures read, with transformers' defaults for the fields a config.json may leave out. */
    enum Architecture {
        LLAMA("LlamaForCausalLM", "llama", -1, -1, 2048),
        MISTRAL("MistralForCausalLM", "mistral", 8, -1, 4096 * 32),
        QWEN2("Qwen2ForCausalLM", "qwen2", 32, -1, 32768),
        QWEN3("Qwen3ForCausalLM", "qwen3", 32, 128, 32768);

        final String className;
        final String modelType;
        /** Default kv heads; -1: as many as heads. */
        final int kvHeads;
        /** Default head dimension; -1: hidden / heads. */
        final int headDim;
        final int maxPositions;

        Architecture(String className, String modelType, int kvHeads, int headDim, int maxPositions) {
            this.className = className;
            this.modelType = modelType;
            this.kvHeads = kvHeads;
            this.headDim = headDim;
            this.maxPositions = maxPositions;
        }

        static String supported() {
            return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM";
        }
    }

    /** Largest config.json read: real ones are a few kilobytes. */
    private static final long MAX_BYTES = 1 << 20;
    /** transformers' default sliding_window of Mistral. */
    private static final int MISTRAL_WINDOW = 4096;

    private HfConfig() {
    }

    /** Reads and converts {@code file}. */
    public static LlamaConfig read(Path file) throws IOException {
        if (Files.size(file) > MAX_BYTES) {
            throw new SafeTensors.FormatException(file + " holds " + Files.size(file) + " bytes, more than the "
                    + MAX_BYTES + " a config.json may have");
        }
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8), file.toString());
        } catch (CharacterCodingException e) {
            throw new SafeTensors.FormatException(file + " is not UTF-8 text, as a config.json must be");
        }
    }

    /** Converts the text of a config.json; {@code source} names it in error messages. */
    public static LlamaConfig parse(String json, String source) {
        Map<String, Object> root;
        try {
            root = Json.parseObject(json);
        } catch (Json.JsonException e) {
            throw new IllegalArgumentException(source + " is not a valid config.json: " + e.getMessage());
        }
        Fields f = new Fields(root, source);
        Architecture arch = architecture(f);
        f.refuse("quantization_config", "unquantized weights only (no quantization_config)");
        String act = f.string("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw f.unsupported("hidden_act", "only \"silu\" (SwiGLU)");
        }
        if (arch != Architecture.QWEN2 && arch != Architecture.MISTRAL && f.bool("attention_bias", false)) {
            throw f.unsupported("attention_bias", "false for " + arch.className
                    + " (only Qwen2ForCausalLM has attention biases, on q, k and v)");
        }
        if (arch == Architecture.LLAMA && f.bool("mlp_bias", false)) {
            throw f.unsupported("mlp_bias", "false (no MLP biases)");
        }
        if ((arch == Architecture.QWEN2 || arch == Architecture.QWEN3) && f.bool("use_sliding_window", false)) {
            throw f.unsupported("use_sliding_window", "false (full attention in every layer)");
        }
        if (f.get("layer_types") != null) {
            if (!(f.get("layer_types") instanceof List<?> types)) {
                throw f.unsupported("layer_types", "a list of \"full_attention\"");
            }
            for (Object t : types) {
                if (!"full_attention".equals(t)) {
                    throw f.unsupported("layer_types", "only \"full_attention\" layers");
                }
            }
        }
        int dim = f.integer("hidden_size", null);
        int heads = f.integer("num_attention_heads", null);
        int kvHeads = f.integer("num_key_value_heads", arch.kvHeads < 0 ? heads : arch.kvHeads);
        int headDim = f.integer("head_dim", arch.headDim > 0 ? arch.headDim : heads > 0 ? dim / heads : 0);
        int maxSeq = f.integer("max_position_embeddings", arch.maxPositions);
        if (arch == Architecture.MISTRAL && (f.get("sliding_window") != null || !f.map.containsKey("sliding_window"))) {
            maxSeq = Math.min(maxSeq, f.integer("sliding_window", MISTRAL_WINDOW));
        }
        Rope rope = rope(f);
        int hidden = f.integer("intermediate_size", null), layers = f.integer("num_hidden_layers", null);
        int vocab = f.integer("vocab_size", null);
        float eps = (float) f.number("rms_norm_eps", 1e-6);
        boolean tied = f.bool("tie_word_embeddings", false);
        try {
            return new LlamaConfig(dim, hidden, layers, heads, kvHeads, headDim, vocab, maxSeq, rope.theta, rope.scaling,
                    eps, tied, arch == Architecture.QWEN2, arch == Architecture.QWEN3);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage());
        }
    }

    private static Architecture architecture(Fields f) {
        Object names = f.get("architectures");
        if (names == null) {
            String type = f.string("model_type", null);
            if (type == null) {
                throw new IllegalArgumentException(f.source + " names no architecture (neither \"architectures\" nor "
                        + "\"model_type\"); jtune reads " + Architecture.supported());
            }
            for (Architecture a : Architecture.values()) {
                if (a.modelType.equals(type)) {
                    return a;
                }
            }
            throw f.unsupported("model_type", "\"llama\", \"mistral\", \"qwen2\" and \"qwen3\"");
        }
        if (names instanceof List<?> list) {
            for (Object name : list) {
                for (Architecture a : Architecture.values()) {
                    if (a.className.equals(name)) {
                        return a;
                    }
                }
            }
        }
        throw f.unsupported("architectures", Architecture.supported());
    }

    private record Rope(double theta, LlamaConfig.RopeScaling scaling) {
    }

    /** rope_theta and rope_scaling, or transformers 5's rope_parameters holding both. */
    private static Rope rope(Fields f) {
        String key = f.get("rope_parameters") != null ? "rope_parameters" : "rope_scaling";
        double theta = f.number("rope_theta", 10000.0);
        Object raw = f.get(key);
        if (raw == null) {
            return new Rope(theta, null);
        }
        if (!(raw instanceof Map<?, ?>)) {
            throw f.unsupported(key, "null or an object");
        }
        @SuppressWarnings("unchecked")
        Fields r = new Fields((Map<String, Object>) raw, f.source, key + ".");
        if (key.equals("rope_parameters")) {
            theta = r.number("rope_theta", theta);
        }
        String typeKey = r.get("rope_type") != null ? "rope_type" : "type";
        String type = r.string(typeKey, "default");
        return switch (type) {
            case "default" -> new Rope(theta, null);
            case "llama3" -> new Rope(theta, new LlamaConfig.RopeScaling(r.number("factor", null),
                    r.number("low_freq_factor", null), r.number("high_freq_factor", null),
                    r.integer("original_max_position_embeddings", null)));
            default -> throw r.unsupported(typeKey, "no rope scaling (\"default\") or \"llama3\"");
        };
    }

    /** The fields of one JSON object, read with their type checked; {@code prefix} names a nested object. */
    private record Fields(Map<String, Object> map, String source, String prefix) {
        Fields(Map<String, Object> map, String source) {
            this(map, source, "");
        }

        Object get(String key) {
            return map.get(key);
        }

        IllegalArgumentException unsupported(String key, String supported) {
            return new IllegalArgumentException(source + ": \"" + prefix + key + "\" is " + Json.write(get(key))
                    + ", which jtune does not support; it supports " + supported);
        }

        void refuse(String key, String supported) {
            if (get(key) != null) {
                throw new IllegalArgumentException(source + ": \"" + prefix + key + "\" is present, which jtune does "
                        + "not support; it supports " + supported);
            }
        }

        private IllegalArgumentException wrongType(String key, String type) {
            return new IllegalArgumentException(source + ": \"" + prefix + key + "\" must be " + type + ", got "
                    + Json.write(get(key)));
        }

        private IllegalArgumentException missing(String key) {
            return new IllegalArgumentException(source + " lacks \"" + prefix + key + "\", which jtune needs");
        }

        int integer(String key, Integer fallback) {
            Object v = get(key);
            if (v == null) {
                if (fallback == null) {
                    throw missing(key);
                }
                return fallback;
            }
            if (v instanceof Double d && d == Math.rint(d) && Math.abs(d) <= Integer.MAX_VALUE) {
                return d.intValue();
            }
            if (!(v instanceof Long x) || x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
                throw wrongType(key, "a whole number");
            }
            return x.intValue();
        }

        double number(String key, Double fallback) {
            Object v = get(key);
            if (v == null) {
                if (fallback == null) {
                    throw missing(key);
                }
                return fallback;
            }
            if (!(v instanceof Number n)) {
                throw wrongType(key, "a number");
            }
            return n.doubleValue();
        }

        boolean bool(String key, boolean fallback) {
            Object v = get(key);
            if (v == null) {
                return fallback;
            }
            if (!(v instanceof Boolean b)) {
                throw wrongType(key, "true or false");
            }
            return b;
        }

        String string(String key, String fallback) {
            Object v = get(key);
            if (v == null) {
                return fallback;
            }
            if (!(v instanceof String s)) {
                throw wrongType(key, "a string");
            }
            return s;
        }
    }

    /**
     * The config.json of {@code c} for transformers, with {@code torch_dtype} "float32" and the token ids
     * {@code bos} and {@code eos} where they are known (≥ 0). Floats are written as their shortest decimal form
     * (1e-05 as 1.0E-5), which reads back to the same float.
     */
    public static String write(LlamaConfig c, int bos, int eos) {
        if (c.qkNorm() && c.qkvBias()) {
            throw new IllegalArgumentException("no Hugging Face architecture has both q/k/v biases and q/k norms; "
                    + "this model cannot be written as a config.json");
        }
        Architecture arch = c.qkNorm() ? Architecture.QWEN3 : c.qkvBias() ? Architecture.QWEN2 : Architecture.LLAMA;
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("architectures", List.of(arch.className));
        m.put("model_type", arch.modelType);
        m.put("hidden_size", c.dim());
        m.put("intermediate_size", c.hiddenDim());
        m.put("num_hidden_layers", c.layers());
        m.put("num_attention_heads", c.heads());
        m.put("num_key_value_heads", c.kvHeads());
        m.put("head_dim", c.headDim());
        m.put("vocab_size", c.vocab());
        m.put("max_position_embeddings", c.maxSeq());
        m.put("rms_norm_eps", c.normEps());
        m.put("rope_theta", c.ropeTheta());
        if (c.ropeScaling() != null) {
            LlamaConfig.RopeScaling r = c.ropeScaling();
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("rope_type", "llama3");
            s.put("factor", r.factor());
            s.put("low_freq_factor", r.lowFreqFactor());
            s.put("high_freq_factor", r.highFreqFactor());
            s.put("original_max_position_embeddings", r.originalMaxPosition());
            m.put("rope_scaling", s);
        } else {
            m.put("rope_scaling", null);
        }
        m.put("hidden_act", "silu");
        m.put("tie_word_embeddings", c.tiedEmbeddings());
        if (arch != Architecture.QWEN2) {
            m.put("attention_bias", false);
        }
        if (arch == Architecture.LLAMA) {
            m.put("mlp_bias", false);
        } else {
            m.put("use_sliding_window", false);
        }
        if (bos >= 0) {
            m.put("bos_token_id", bos);
        }
        if (eos >= 0) {
            m.put("eos_token_id", eos);
        }
        m.put("torch_dtype", "float32");
        return pretty(m);
    }

    /** One field per line, indented by two spaces; nested values compact. */
    static String pretty(Map<String, Object> m) {
        StringBuilder sb = new StringBuilder("{\n");
        int i = 0;
        for (Map.Entry<String, Object> e : m.entrySet()) {
            sb.append("  ");
            Json.quote(sb, e.getKey());
            sb.append(": ").append(Json.write(e.getValue())).append(++i < m.size() ? ",\n" : "\n");
        }
        return sb.append("}\n").toString();
    }
}
