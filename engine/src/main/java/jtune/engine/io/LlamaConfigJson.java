package jtune.engine.io;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import jtune.engine.model.LlamaConfig;

/**
 * {@link LlamaConfig} as JSON, field for field under the record's own names ("dim", "hiddenDim", "layers",
 * "heads", "kvHeads", "headDim", "vocab", "maxSeq", "ropeTheta", "ropeScaling", "normEps", "tiedEmbeddings",
 * "qkvBias", "qkNorm"). Reading requires dim, hiddenDim, layers, heads and vocab; the rest default to kvHeads =
 * heads, headDim = dim / heads, maxSeq 2048, ropeTheta 10000, no rope scaling, normEps 1e-5, untied, no bias,
 * no q/k norm. An unknown field or a value of the wrong type fails with one sentence naming it.
 */
public final class LlamaConfigJson {
    private static final Set<String> FIELDS = Set.of("dim", "hiddenDim", "layers", "heads", "kvHeads", "headDim",
            "vocab", "maxSeq", "ropeTheta", "ropeScaling", "normEps", "tiedEmbeddings", "qkvBias", "qkNorm");
    private static final Set<String> SCALING_FIELDS = Set.of("factor", "lowFreqFactor", "highFreqFactor",
            "originalMaxPosition");

    private LlamaConfigJson() {
    }

    /** The JSON object of {@code c}; floats are written as their exact double value so they read back equal. */
    public static String write(LlamaConfig c) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("dim", c.dim());
        m.put("hiddenDim", c.hiddenDim());
        m.put("layers", c.layers());
        m.put("heads", c.heads());
        m.put("kvHeads", c.kvHeads());
        m.put("headDim", c.headDim());
        m.put("vocab", c.vocab());
        m.put("maxSeq", c.maxSeq());
        m.put("ropeTheta", c.ropeTheta());
        if (c.ropeScaling() != null) {
            LlamaConfig.RopeScaling r = c.ropeScaling();
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("factor", r.factor());
            s.put("lowFreqFactor", r.lowFreqFactor());
            s.put("highFreqFactor", r.highFreqFactor());
            s.put("originalMaxPosition", r.originalMaxPosition());
            m.put("ropeScaling", s);
        }
        m.put("normEps", (double) c.normEps());
        m.put("tiedEmbeddings", c.tiedEmbeddings());
        m.put("qkvBias", c.qkvBias());
        m.put("qkNorm", c.qkNorm());
        return Json.write(m);
    }

    /** Reads a config from JSON text; {@code source} names the file or field in error messages. */
    public static LlamaConfig read(String json, String source) {
        Map<String, Object> m;
        try {
            m = Json.parseObject(json);
        } catch (Json.JsonException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage());
        }
        for (String k : m.keySet()) {
            if (!FIELDS.contains(k)) {
                throw new IllegalArgumentException(source + ": unknown model config field \"" + k + "\"; the fields are "
                        + String.join(", ", new TreeSet<>(FIELDS)));
            }
        }
        int dim = integer(m, "dim", null, source);
        int heads = integer(m, "heads", null, source);
        LlamaConfig.RopeScaling scaling = null;
        if (m.get("ropeScaling") instanceof Map<?, ?> raw) {
            @SuppressWarnings("unchecked")
            Map<String, Object> s = (Map<String, Object>) raw;
            for (String k : s.keySet()) {
                if (!SCALING_FIELDS.contains(k)) {
                    throw new IllegalArgumentException(source + ": unknown ropeScaling field \"" + k + "\"; the fields are "
                            + String.join(", ", new TreeSet<>(SCALING_FIELDS)));
                }
            }
            scaling = new LlamaConfig.RopeScaling(number(s, "factor", null, source),
                    number(s, "lowFreqFactor", null, source), number(s, "highFreqFactor", null, source),
                    integer(s, "originalMaxPosition", null, source));
        } else if (m.containsKey("ropeScaling") && m.get("ropeScaling") != null) {
            throw new IllegalArgumentException(source + ": \"ropeScaling\" must be an object or null, got "
                    + Json.typeName(m.get("ropeScaling")));
        }
        int hiddenDim = integer(m, "hiddenDim", null, source), layers = integer(m, "layers", null, source);
        int kvHeads = integer(m, "kvHeads", heads, source);
        int headDim = integer(m, "headDim", heads > 0 ? dim / heads : 0, source);
        int vocab = integer(m, "vocab", null, source), maxSeq = integer(m, "maxSeq", 2048, source);
        double ropeTheta = number(m, "ropeTheta", 10000.0, source);
        float normEps = (float) number(m, "normEps", 1e-5, source);
        boolean tied = bool(m, "tiedEmbeddings", source), qkvBias = bool(m, "qkvBias", source);
        boolean qkNorm = bool(m, "qkNorm", source);
        try {
            return new LlamaConfig(dim, hiddenDim, layers, heads, kvHeads, headDim, vocab, maxSeq, ropeTheta, scaling,
                    normEps, tied, qkvBias, qkNorm);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(source + ": " + e.getMessage(), e);
        }
    }

    private static int integer(Map<String, Object> m, String key, Integer fallback, String source) {
        Object v = m.get(key);
        if (v == null) {
            if (fallback == null) {
                throw new IllegalArgumentException(source + ": the model config needs \"" + key + "\"");
            }
            return fallback;
        }
        if (!(v instanceof Long x) || x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(source + ": model config field \"" + key + "\" must be a whole number, got "
                    + Json.write(v));
        }
        return x.intValue();
    }

    private static double number(Map<String, Object> m, String key, Double fallback, String source) {
        Object v = m.get(key);
        if (v == null) {
            if (fallback == null) {
                throw new IllegalArgumentException(source + ": the model config needs \"" + key + "\"");
            }
            return fallback;
        }
        if (!(v instanceof Number n)) {
            throw new IllegalArgumentException(source + ": model config field \"" + key + "\" must be a number, got "
                    + Json.write(v));
        }
        return n.doubleValue();
    }

    private static boolean bool(Map<String, Object> m, String key, String source) {
        Object v = m.get(key);
        if (v == null) {
            return false;
        }
        if (!(v instanceof Boolean b)) {
            throw new IllegalArgumentException(source + ": model config field \"" + key + "\" must be true or false, got "
                    + Json.write(v));
        }
        return b;
    }
}
