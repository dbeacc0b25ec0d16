package jtune.methods.quant;

import java.io.IOException;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jtune.engine.io.HfExport;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import jtune.engine.tokenizer.Tokenizer;

/**
 * jtune's saved form of a quantized model ({@code jtune quantize} writes it, {@link QuantizedModelReader} reads it
 * back): a Hugging Face model folder as {@link HfExport} writes one (atomically; config.json, generation_config.json,
 * the tokenizer files copied, the weights in {@code model.safetensors} or shards with an index), where
 *
 * <p><b>config.json</b> holds, beside the architecture's fields, a {@code "quantization_config"} object that
 * describes the one format of every quantized layer:
 * <pre>
 * "quantization_config": {
 *   "quant_method": "jtune",      always; what selects this reader
 *   "format_version": 1,
 *   "method": "gptq",             the quantizer that made the codes: "rtn", "gptq" or "nf4"
 *   "kind": "int",                "int" (w = s · (q − z)) or "nf4" (w = NF4[q] · absmax)
 *   "bits": 4,                    int: 2, 3, 4 or 8; nf4: 4
 *   "group_size": 128,            int: elements per scale, 32, 64, 128 or 256, or 0 for one per row;
 *                                 nf4: the absmax block, a power of two from 32 to 4096
 *   "sym": false,                 int: no stored zero points, z = 2^(bits−1); nf4: false
 *   "scale_dtype": "F32",         int: "F32" or "BF16", the type of the scales and zero points; nf4: "F32"
 *   "double_quant": false,        nf4: absmax values stored as 8-bit codes (bitsandbytes' double quantization)
 *   "lorc_rank": 8,               rank of the LoRC correction of every quantized layer, 0 for none
 *   "lorc_bits": 8,               with lorc_rank &gt; 0: the factors' storage, 8 (int8 codes, one f32 scale per
 *                                 row) or 32 (f32); absent means 32, as folders written before it existed
 *   "act_order": false,           optional, gptq's settings and its calibration sample, for the record
 *   "damp_percent": 0.01,
 *   "calibration": {"file": "...", "windows": 128, "tokens": 2048, "seed": 0}
 * }</pre>
 * Any other key is refused, so is a format {@link QuantFormat} does not have.
 *
 * <p><b>model.safetensors</b> holds, for each quantized linear layer {@code L} (the Hugging Face name without
 * ".weight", e.g. {@code model.layers.0.self_attn.q_proj}) of an (out, in) weight, instead of {@code L.weight}:
 * <ul>
 *   <li>{@code L.qcodes} U8 (out, ceil(in / 8) · bits): the packed codes exactly as {@link QuantizedMatrix} stores
 *       them (every run of 8 codes of a row in {@code bits} bytes, little-endian, code j at bits [j·b, (j+1)·b));</li>
 *   <li>int: {@code L.scales} (out, groups) and, unless sym, {@code L.zeros} (out, groups) of scale_dtype, groups =
 *       ceil(in / group_size) (1 for group_size 0);</li>
 *   <li>nf4: {@code L.absmax} F32 (out, groups); with double_quant instead {@code L.absmax_codes} U8 (out, groups),
 *       {@code L.absmax_scales} F32 (ceil(out · groups / 256)) and {@code L.absmax_offset} F32 (1);</li>
 *   <li>lorc_rank r &gt; 0: the factors U (out, r') and V (r', in), r' = min(r, out, in); the layer computes
 *       {@code x · (dequant(W) + U V)ᵀ}. With lorc_bits 32 they are {@code L.lorc_u} and {@code L.lorc_v}, F32;
 *       with lorc_bits 8 they are stored as Uᵀ (r', out) and V, each matrix M as {@code M.qcodes} U8 (r', ceil(cols
 *       / 8) · 8) and {@code M.scales} F32 (r', 1) in the format {@link LorcWeight#FACTOR_FORMAT} (symmetric,
 *       M = s · (q − 128)), M being {@code L.lorc_ut} and {@code L.lorc_v}.</li>
 * </ul>
 * A layer is quantized exactly when {@code L.qcodes} is present (names holding ".lorc_" are LoRC's); everything else (embedding, norms, an untied
 * {@code lm_head}, any layer left dense) is F32 under its Hugging Face name as in an unquantized export. The writer
 * puts wider types first, so every tensor is aligned to its element size and is mapped without a copy.
 *
 * <p>transformers cannot load this folder (its {@code quant_method} is jtune's own); jtune's eval and generate can.
 */
public final class QuantizedModelFile {
    /** The {@code "quant_method"} of this format. */
    public static final String QUANT_METHOD = "jtune";
    /** The {@code "format_version"} written and read. */
    public static final int VERSION = 1;

    static final String CODES = ".qcodes";
    static final String SCALES = ".scales";
    static final String ZEROS = ".zeros";
    static final String ABSMAX = ".absmax";
    static final String ABSMAX_CODES = ".absmax_codes";
    static final String ABSMAX_SCALES = ".absmax_scales";
    static final String ABSMAX_OFFSET = ".absmax_offset";
    static final String LORC_U = ".lorc_u";
    static final String LORC_V = ".lorc_v";
    static final String LORC_UT = ".lorc_ut";
    /** What the names of LoRC's tensors hold, and no layer's name does. */
    static final String LORC = ".lorc_";

    private static final Set<String> KEYS = Set.of("quant_method", "format_version", "method", "kind", "bits",
            "group_size", "sym", "scale_dtype", "double_quant", "lorc_rank", "lorc_bits", "act_order", "damp_percent",
            "calibration");

    /**
     * What a quantization_config declares.
     *
     * @param method     the quantizer that made the codes
     * @param format     the format of every quantized layer
     * @param lorcRank   the LoRC rank, 0 for none
     * @param lorcBits   the LoRC factors' storage, 8 or 32 (immaterial without LoRC)
     * @param provenance the optional record-keeping fields (act_order, damp_percent, calibration), written as given
     */
    public record Spec(ModelQuantizer.Method method, QuantFormat format, int lorcRank, int lorcBits,
                       Map<String, Object> provenance) {
        public Spec {
            LorcWeight.checkBits(lorcBits);
            provenance = Map.copyOf(provenance);
            for (String key : provenance.keySet()) {
                if (!KEYS.contains(key) || key.equals("quant_method") || key.equals("format_version")) {
                    throw new IllegalArgumentException("'" + key + "' is not a provenance field of a quantization_config;"
                            + " those are act_order, damp_percent and calibration");
                }
            }
        }

        /** "int4 g128 asym F32 by gptq, LoRC rank 8 (8-bit factors)". */
        public String describe() {
            return format + " by " + method + (lorcRank > 0 ? ", LoRC rank " + lorcRank + " (" + lorcBits
                    + "-bit factors)" : "");
        }
    }

    private QuantizedModelFile() {
    }

    /** The {@code "quantization_config"} object of {@code spec}, keys in the order of the class comment. */
    public static Map<String, Object> config(Spec spec) {
        QuantFormat f = spec.format();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("quant_method", QUANT_METHOD);
        m.put("format_version", VERSION);
        m.put("method", spec.method().toString());
        m.put("kind", f.kind().name().toLowerCase(Locale.ROOT));
        m.put("bits", f.bits());
        m.put("group_size", f.groupSize());
        m.put("sym", f.symmetric());
        m.put("scale_dtype", f.scaleType().name());
        m.put("double_quant", f.doubleQuant());
        m.put("lorc_rank", spec.lorcRank());
        if (spec.lorcRank() > 0) {
            m.put("lorc_bits", spec.lorcBits());
        }
        for (String key : List.of("act_order", "damp_percent", "calibration")) {
            if (spec.provenance().containsKey(key)) {
                m.put(key, spec.provenance().get(key));
            }
        }
        return m;
    }

    /**
     * Validates the {@code "quantization_config"} object {@code q} of {@code file}: every field of the class comment
     * present with its type (the provenance ones optional), no other, and a format that exists. Fails with one
     * sentence naming the file and the field.
     */
    public static Spec parse(Path file, Map<String, Object> q) throws FormatException {
        String where = file + ": \"quantization_config\"";
        for (String key : q.keySet()) {
            if (!KEYS.contains(key)) {
                throw new FormatException(where + " has the unknown field \"" + key + "\"; jtune's format "
                        + VERSION + " has " + String.join(", ", KEYS.stream().sorted().toList()));
            }
        }
        if (!QUANT_METHOD.equals(q.get("quant_method"))) {
            throw new FormatException(where + " has \"quant_method\": " + Json.write(q.get("quant_method"))
                    + "; this reader reads \"" + QUANT_METHOD + "\"");
        }
        if (integer(where, q, "format_version") != VERSION) {
            throw new FormatException(where + " has \"format_version\": " + q.get("format_version")
                    + ", which this jtune does not read; it reads version " + VERSION);
        }
        ModelQuantizer.Method method;
        try {
            method = ModelQuantizer.Method.parse(string(where, q, "method"));
        } catch (IllegalArgumentException e) {
            throw new FormatException(where + ": \"method\" is " + Json.write(q.get("method")) + "; it must be \"rtn\", "
                    + "\"gptq\" or \"nf4\"");
        }
        String kind = string(where, q, "kind");
        if (!kind.equals("int") && !kind.equals("nf4")) {
            throw new FormatException(where + ": \"kind\" is \"" + kind + "\"; it must be \"int\" or \"nf4\"");
        }
        String scaleType = string(where, q, "scale_dtype");
        if (!scaleType.equals("F32") && !scaleType.equals("BF16")) {
            throw new FormatException(where + ": \"scale_dtype\" is \"" + scaleType + "\"; it must be \"F32\" or \"BF16\"");
        }
        QuantFormat format;
        try {
            format = new QuantFormat(kind.equals("int") ? QuantFormat.Kind.INT : QuantFormat.Kind.NF4,
                    integer(where, q, "bits"), integer(where, q, "group_size"), bool(where, q, "sym"),
                    DType.valueOf(scaleType), bool(where, q, "double_quant"));
        } catch (IllegalArgumentException e) {
            throw new FormatException(where + " declares a format jtune does not have: " + e.getMessage());
        }
        if ((format.kind() == QuantFormat.Kind.NF4) != (method == ModelQuantizer.Method.NF4)) {
            throw new FormatException(where + ": \"method\" " + method + " does not make \"kind\" \"" + kind
                    + "\" codes; rtn and gptq make int, nf4 makes nf4");
        }
        int lorcRank = integer(where, q, "lorc_rank");
        if (lorcRank < 0) {
            throw new FormatException(where + ": \"lorc_rank\" is " + lorcRank + "; it must be 0 (none) or more");
        }
        Object bits = q.getOrDefault("lorc_bits", 32L);
        if (!(bits instanceof Long b) || b != 8 && b != 32) {
            throw new FormatException(where + ": \"lorc_bits\" is " + Json.write(bits) + "; it must be 8 (int8 factors)"
                    + " or 32 (f32)");
        }
        int lorcBits = ((Long) bits).intValue();
        Map<String, Object> provenance = new LinkedHashMap<>();
        if (q.containsKey("act_order") && !(q.get("act_order") instanceof Boolean)) {
            throw new FormatException(where + ": \"act_order\" must be true or false");
        }
        if (q.containsKey("damp_percent") && !(q.get("damp_percent") instanceof Number)) {
            throw new FormatException(where + ": \"damp_percent\" must be a number");
        }
        if (q.containsKey("calibration") && !(q.get("calibration") instanceof Map)) {
            throw new FormatException(where + ": \"calibration\" must be an object");
        }
        for (String key : List.of("act_order", "damp_percent", "calibration")) {
            if (q.get(key) != null) {
                provenance.put(key, q.get(key));
            }
        }
        return new Spec(method, format, lorcRank, lorcBits, provenance);
    }

    /**
     * Writes {@code model}, whose quantized layers are {@code layers} (as {@link ModelQuantizer.Result#weights()}
     * gives them), as a new folder {@code dir} in this format, with the tokenizer files copied
     * ({@link HfExport#write(jtune.engine.model.LlamaConfig, Map, SafeTensorsWriter, Tokenizer, List, Path, long)}).
     * Every quantized layer must have {@code spec}'s format and LoRC rank.
     */
    public static HfExport.Result write(LlamaModel model, Map<String, LinearWeight> layers, Spec spec,
                                       Tokenizer tokenizer, List<Path> tokenizerFiles, Path dir) throws IOException {
        Map<Tensor, String> owner = new IdentityHashMap<>();
        layers.forEach((layer, w) -> w.parameters().forEach(p -> owner.put(p.value(), layer)));
        SafeTensorsWriter weights = new SafeTensorsWriter();
        Set<String> written = new LinkedHashSet<>();
        for (Parameter p : model.parameters()) {
            String layer = owner.get(p.value());
            if (layer == null) {
                weights.add(p.name(), p.value());
            } else if (written.add(layer)) {
                addLayer(weights, layer, layers.get(layer), spec);
            }
        }
        if (!written.equals(layers.keySet())) {
            throw new IllegalArgumentException("the quantized layers given are not all the model's: the model has "
                    + written.size() + " of the " + layers.size() + " given");
        }
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("quantization_config", config(spec));
        return HfExport.write(model.config(), extra, weights, tokenizer, tokenizerFiles, dir, HfExport.SHARD_BYTES);
    }

    /** Adds the file tensors of one quantized layer (see the class comment). */
    private static void addLayer(SafeTensorsWriter weights, String layer, LinearWeight w, Spec spec) {
        QuantizedWeight q;
        LorcWeight lorc = null;
        if (w instanceof LorcWeight l && l.base() instanceof QuantizedWeight base) {
            lorc = l;
            q = base;
        } else if (w instanceof QuantizedWeight base) {
            q = base;
        } else {
            throw new IllegalArgumentException("layer '" + layer + "' is a " + w.getClass().getSimpleName()
                    + ", not a quantized weight (with or without LoRC); only those are written in this format");
        }
        QuantizedMatrix m = q.matrix();
        int rank = lorc == null ? 0 : Math.toIntExact(lorc.rank());
        int expectedRank = Math.min(spec.lorcRank(), Math.min(m.rows(), m.cols()));
        int bits = lorc == null ? spec.lorcBits() : lorc.bits();
        if (!m.format().equals(spec.format()) || rank != expectedRank || bits != spec.lorcBits()) {
            throw new IllegalArgumentException("layer '" + layer + "' is " + m.format() + " with LoRC rank " + rank
                    + (rank > 0 ? " (" + bits + "-bit)" : "") + ", but the model is being written as " + spec.format()
                    + " with LoRC rank " + expectedRank + (expectedRank > 0 ? " (" + spec.lorcBits() + "-bit)" : ""));
        }
        weights.add(layer + CODES, m.codes());
        if (m.format().kind() == QuantFormat.Kind.INT) {
            weights.add(layer + SCALES, m.scales());
            if (m.zeros() != null) {
                weights.add(layer + ZEROS, m.zeros());
            }
        } else if (!m.format().doubleQuant()) {
            weights.add(layer + ABSMAX, m.scales());
        } else {
            weights.add(layer + ABSMAX_CODES, m.absmaxCodes());
            weights.add(layer + ABSMAX_SCALES, m.absmaxScales());
            weights.add(layer + ABSMAX_OFFSET, m.absmaxOffset());
        }
        if (lorc != null) {
            addFactor(weights, layer + (lorc.u().transposed() ? LORC_UT : LORC_U), lorc.u());
            addFactor(weights, layer + LORC_V, lorc.v());
        }
    }

    /** A LoRC factor under {@code name}: one F32 tensor, or the codes and scales as stored (see the class comment). */
    private static void addFactor(SafeTensorsWriter weights, String name, LorcWeight.Factor f) {
        if (f.dense() != null) {
            weights.add(name, f.dense().value());
        } else {
            weights.add(name + CODES, f.quantized().codes());
            weights.add(name + SCALES, f.quantized().scales());
        }
    }

    private static Object field(String where, Map<String, Object> q, String key) throws FormatException {
        Object v = q.get(key);
        if (v == null) {
            throw new FormatException(where + " lacks \"" + key + "\", which jtune's format needs");
        }
        return v;
    }

    private static int integer(String where, Map<String, Object> q, String key) throws FormatException {
        if (!(field(where, q, key) instanceof Long x) || x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
            throw new FormatException(where + ": \"" + key + "\" must be a whole number, got " + Json.write(q.get(key)));
        }
        return x.intValue();
    }

    private static boolean bool(String where, Map<String, Object> q, String key) throws FormatException {
        if (!(field(where, q, key) instanceof Boolean b)) {
            throw new FormatException(where + ": \"" + key + "\" must be true or false, got " + Json.write(q.get(key)));
        }
        return b;
    }

    private static String string(String where, Map<String, Object> q, String key) throws FormatException {
        if (!(field(where, q, key) instanceof String s)) {
            throw new FormatException(where + ": \"" + key + "\" must be a string, got " + Json.write(q.get(key)));
        }
        return s;
    }
}
