package jtune.methods.peft;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Tensor;
import jtune.methods.quant.LorcWeight;
import jtune.methods.quant.QuantizedWeight;

/**
 * The LoRA adapters of one model: {@link #over} makes the {@link WeightTransform} that puts a {@link LoraWeight} on
 * every targeted layer while the model is built, and the adapters are then saved and read in Hugging Face PEFT's
 * format, a folder holding:
 * <ul>
 *   <li>{@value #CONFIG}: PEFT's {@code LoraConfig} fields ({@code peft_type "LORA"}, {@code task_type "CAUSAL_LM"},
 *       {@code r}, {@code lora_alpha}, {@code lora_dropout}, {@code target_modules}, {@code use_rslora},
 *       {@code bias "none"}, {@code base_model_name_or_path}, ...);</li>
 *   <li>{@value #WEIGHTS}: for each adapted layer, {@code base_model.model.<layer>.lora_A.weight} (r, in) and
 *       {@code base_model.model.<layer>.lora_B.weight} (out, r), f32, metadata {@code format = "pt"}; the
 *       keys {@code PeftModel.from_pretrained} reads for a {@code LlamaForCausalLM}.</li>
 * </ul>
 */
public final class LoraAdapters {
    /** The adapter's settings file. */
    public static final String CONFIG = "adapter_config.json";
    /** The adapter's tensors. */
    public static final String WEIGHTS = "adapter_model.safetensors";
    /** The metadata key of {@link #bases} in {@value #WEIGHTS}. */
    static final String BASES = "jtune_trained_over";
    /** PEFT's prefix of a causal LM's module names. */
    static final String PREFIX = "base_model.model.";

    private final LoraConfig config;
    private final Dropout dropout;
    private final Map<String, LoraWeight> weights = new LinkedHashMap<>();

    /** Adapters with {@code config}; {@code seed} keys the dropout masks. */
    public LoraAdapters(LoraConfig config, long seed) {
        this.config = config;
        this.dropout = new Dropout(config.dropout(), seed);
    }

    public LoraConfig config() {
        return config;
    }

    /** The dropout the adapters share (off until a {@link TrainingMode} switches it on). */
    public Dropout dropout() {
        return dropout;
    }

    /** The adapters made so far, by layer ("model.layers.0.self_attn.q_proj"), in model order. */
    public Map<String, LoraWeight> weights() {
        return Collections.unmodifiableMap(weights);
    }

    /**
     * The transform that applies {@code inner} to every layer (the identity, or a quantizer for QLoRA) and then puts
     * an adapter on each targeted decoder-block layer, its A drawn from {@code SplittableRandom(seed)} in model order.
     * A layer the model file stores quantized goes through {@code inner}'s {@link WeightTransform#applyQuantized}
     * (the identity and QLoRA's quantizer keep it as stored) and gets its adapter over that frozen base.
     */
    public WeightTransform over(WeightTransform inner, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        return new WeightTransform() {
            @Override
            public LinearWeight apply(Session s, String layer, DenseWeight dense) {
                return adapt(s, layer, inner.apply(s, layer, dense), rng);
            }

            @Override
            public LinearWeight applyQuantized(Session s, String layer, LinearWeight stored) {
                return adapt(s, layer, inner.applyQuantized(s, layer, stored), rng);
            }
        };
    }

    /** An adapter over {@code base} when {@code layer} is targeted, else {@code base}; closes base on a failure. */
    private LinearWeight adapt(Session s, String layer, LinearWeight base, SplittableRandom rng) {
        if (!config.targets(layer)) {
            return base;
        }
        LoraWeight w;
        try {
            w = LoraWeight.create(s, layer, base, config, rng, dropout, weights.size());
        } catch (RuntimeException e) {
            base.close();
            throw e;
        }
        weights.put(layer, w);
        return w;
    }

    /** Merges every adapter into its (dense) base; see {@link LoraWeight#merge}. */
    public void merge(Session s) {
        weights.values().forEach(w -> w.merge(s));
    }

    /** Undoes {@link #merge}. */
    public void unmerge(Session s) {
        weights.values().forEach(w -> w.unmerge(s));
    }

    /**
     * The kinds of frozen layer the adapters sit over, sorted and joined: "dense", "nf4 b64 dq", "int4 g64 asym f32 +
     * LoRC r 2".
     */
    public String bases() {
        Set<String> kinds = new TreeSet<>();
        weights.values().forEach(w -> kinds.add(kind(w.base())));
        return String.join(", ", kinds);
    }

    private static String kind(LinearWeight w) {
        return switch (w) {
            case LorcWeight l -> kind(l.base()) + " + LoRC r " + l.rank() + (l.bits() == 8 ? " int8" : "");
            case QuantizedWeight q -> q.matrix().format().toString();
            default -> "dense";
        };
    }

    /**
     * What {@link #bases} said when the adapter in {@code dir} was saved by jtune (its {@value #WEIGHTS} metadata),
     * or null for an adapter saved by other tools.
     */
    public static String savedBases(Path dir) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve(WEIGHTS))) {
            return r.metadata().get(BASES);
        }
    }

    /**
     * Writes {@value #CONFIG} and {@value #WEIGHTS} into {@code dir} (created if needed); each file is atomic. The
     * weights' metadata records {@link #bases} under {@value #BASES} (PEFT reads only "format").
     */
    public void save(Path dir, String baseModel) throws IOException {
        if (weights.isEmpty()) {
            throw new IllegalStateException("no LoRA adapter was made: the model has none of the target modules "
                    + config.targets());
        }
        Files.createDirectories(dir);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt").metadata(BASES, bases());
        weights.forEach((layer, lw) -> {
            w.add(PREFIX + layer + ".lora_A.weight", lw.a().value());
            w.add(PREFIX + layer + ".lora_B.weight", lw.b().value());
        });
        w.write(dir.resolve(WEIGHTS));
        Set<String> modules = new HashSet<>();
        weights.keySet().forEach(l -> modules.add(l.substring(l.lastIndexOf('.') + 1)));
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("alpha_pattern", Map.of());
        c.put("base_model_name_or_path", baseModel);
        c.put("bias", "none");
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        c.put("init_lora_weights", true);
        c.put("layers_pattern", null);
        c.put("layers_to_transform", null);
        double alpha = config.alpha();
        c.put("lora_alpha", alpha == Math.rint(alpha) ? (Object) (long) alpha : alpha);
        c.put("lora_dropout", config.dropout());
        c.put("modules_to_save", null);
        c.put("peft_type", "LORA");
        c.put("r", config.rank());
        c.put("rank_pattern", Map.of());
        c.put("revision", null);
        c.put("target_modules", LoraConfig.MODULES.stream().filter(modules::contains).toList());
        c.put("task_type", "CAUSAL_LM");
        c.put("use_dora", false);
        c.put("use_rslora", config.rslora());
        TextFiles.writeAtomically(dir.resolve(CONFIG), Json.write(c) + "\n");
    }

    /**
     * The settings in {@code dir}'s {@value #CONFIG}. Fails, naming the file and the field, on an adapter that is
     * not a plain LoRA of this kind (another peft_type, per-layer rank or alpha patterns, DoRA, a trained bias,
     * fan_in_fan_out weights, extra saved modules, adapters on some layers only, target modules other than the
     * decoder blocks' linear layers), or whose use_rslora is not true, false or absent.
     */
    public static LoraConfig readConfig(Path dir) throws IOException {
        Path file = dir.resolve(CONFIG);
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no LoRA adapter config here");
        }
        Map<String, Object> c;
        try {
            c = Json.parseObject(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            throw new SafeTensors.FormatException(file + " is not valid JSON: " + e.getMessage());
        }
        expect(file, c, "peft_type", "LORA", true);
        expect(file, c, "bias", "none", false);
        expect(file, c, "fan_in_fan_out", false, false);
        expect(file, c, "use_dora", false, false);
        expect(file, c, "modules_to_save", null, false);
        expect(file, c, "layers_to_transform", null, false);
        expect(file, c, "layers_pattern", null, false);
        expect(file, c, "exclude_modules", null, false);
        expect(file, c, "layer_replication", null, false);
        if (c.containsKey("use_rslora") && !(c.get("use_rslora") instanceof Boolean)) {
            throw new SafeTensors.FormatException(file + ": \"use_rslora\" must be true or false, got "
                    + Json.write(c.get("use_rslora")));
        }
        for (String pattern : new String[]{"rank_pattern", "alpha_pattern"}) {
            if (c.get(pattern) instanceof Map<?, ?> m && !m.isEmpty()) {
                throw new SafeTensors.FormatException(file + ": \"" + pattern + "\" gives layers their own settings, "
                        + "which jtune does not support; it must be {} or absent");
            }
        }
        List<String> targets = new ArrayList<>();
        if (!(c.get("target_modules") instanceof List<?> list)) {
            throw new SafeTensors.FormatException(file + ": \"target_modules\" must be a list of module names, such as "
                    + "[\"q_proj\", \"v_proj\"]");
        }
        for (Object t : list) {
            if (!(t instanceof String name) || !LoraConfig.MODULES.contains(name)) {
                throw new SafeTensors.FormatException(file + ": \"target_modules\" names " + Json.write(t) + "; jtune "
                        + "adapts only the decoder blocks' linear layers, " + String.join(", ", LoraConfig.MODULES));
            }
            targets.add(name);
        }
        double r = number(file, c, "r", null).doubleValue();
        if (r != Math.rint(r) || r < 1 || r > Integer.MAX_VALUE) {
            throw new SafeTensors.FormatException(file + ": \"r\" must be a whole number from 1 to " + Integer.MAX_VALUE
                    + ", got " + Json.write(c.get("r")));
        }
        try {
            return new LoraConfig((int) r,
                    number(file, c, "lora_alpha", null).doubleValue(),
                    number(file, c, "lora_dropout", 0.0).doubleValue(), Boolean.TRUE.equals(c.get("use_rslora")),
                    LoraConfig.MODULES.stream().filter(targets::contains).toList());
        } catch (IllegalArgumentException e) {
            throw new SafeTensors.FormatException(file + ": " + e.getMessage());
        }
    }

    /**
     * Reads {@code dir}'s {@value #WEIGHTS} into these adapters, which must have been made with the settings of its
     * {@value #CONFIG} for the same model: every adapter's A and B must be in the file with their shapes, and the
     * file must hold nothing else.
     */
    public void load(Path dir) throws IOException {
        LoraConfig saved = readConfig(dir);
        if (saved.rank() != config.rank() || saved.alpha() != config.alpha() || saved.rslora() != config.rslora()) {
            throw new SafeTensors.FormatException(dir.resolve(CONFIG) + " describes r " + saved.rank() + ", alpha "
                    + saved.alpha() + ", rslora " + saved.rslora() + ", but these adapters have r " + config.rank()
                    + ", alpha " + config.alpha() + ", rslora " + config.rslora());
        }
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve(WEIGHTS))) {
            Set<String> expected = new HashSet<>();
            for (Map.Entry<String, LoraWeight> e : weights.entrySet()) {
                String a = PREFIX + e.getKey() + ".lora_A.weight", b = PREFIX + e.getKey() + ".lora_B.weight";
                read(r, a, e.getKey(), e.getValue().a().value());
                read(r, b, e.getKey(), e.getValue().b().value());
                expected.add(a);
                expected.add(b);
            }
            for (SafeTensors.Entry e : r.entries()) {
                if (!expected.contains(e.name())) {
                    throw new SafeTensors.FormatException(r.file() + " holds tensor '" + e.name() + "', which matches "
                            + "no adapted layer of this model (its adapters are on " + config.targets() + ")");
                }
            }
        }
    }

    /** Reads factor {@code name} of {@code layer}'s adapter into {@code dst}, saying so when it is not this model's. */
    private static void read(SafeTensorsReader r, String name, String layer, Tensor dst) throws IOException {
        if (!r.contains(name)) {
            throw new SafeTensors.FormatException(r.file() + " has no tensor '" + name + "', which this model's layer '"
                    + layer + "' needs; the adapter was made for a model with other layers");
        }
        SafeTensors.Entry e = r.entry(name);
        if (!e.shape().equals(dst.shape())) {
            throw new SafeTensors.FormatException(r.file() + ": tensor '" + name + "' is " + e.shape() + ", but this "
                    + "model's layer '" + layer + "' needs " + dst.shape() + "; the adapter was made for a model with "
                    + "other layer shapes");
        }
        r.read(name, dst);
    }

    private static void expect(Path file, Map<String, Object> c, String key, Object value, boolean required)
            throws SafeTensors.FormatException {
        if (!c.containsKey(key) && !required) {
            return;
        }
        Object v = c.get(key);
        if (value == null ? v != null : !value.equals(v)) {
            throw new SafeTensors.FormatException(file + ": \"" + key + "\" is " + Json.write(v) + "; jtune reads LoRA "
                    + "adapters with " + key + " " + Json.write(value) + " only");
        }
    }

    private static Number number(Path file, Map<String, Object> c, String key, Number fallback)
            throws SafeTensors.FormatException {
        Object v = c.get(key);
        if (v == null && fallback != null) {
            return fallback;
        }
        if (!(v instanceof Number n)) {
            throw new SafeTensors.FormatException(file + ": \"" + key + "\" must be a number, got " + Json.write(v));
        }
        return n;
    }
}
