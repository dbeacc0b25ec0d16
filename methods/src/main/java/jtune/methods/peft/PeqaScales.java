package jtune.methods.peft;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;

/**
 * A task's PEQA scale set, kept apart from the model: the quantized base (codes and zero points) is shared by every
 * task and only the scales differ, so a task costs {@code 4 · rows · groups} bytes per layer. A folder holding:
 * <ul>
 *   <li>{@value #SCALES}: {@code <layer>.scales} f32 (out, groups) for each PEQA layer ("model.layers.0.mlp.up_proj
 *       .scales"), metadata {@code format = "jtune-peqa-scales-1"};</li>
 *   <li>{@value #CONFIG}: {@code {"format": "jtune-peqa-scales-1", "base_model": the model the base was quantized from,
 *       "quantizer": how, "bits", "group_size" (0: per channel), "symmetric", "codes_crc32": CRC-32 of the codes and
 *       zero points the scales were trained with, "layers": [names]}}.</li>
 * </ul>
 * {@link #load} swaps a set into a model quantized the same way, and refuses one trained over other codes.
 */
public final class PeqaScales {
    /** The scale set's description. */
    public static final String CONFIG = "peqa_config.json";
    /** The scales. */
    public static final String SCALES = "peqa_scales.safetensors";
    static final String FORMAT = "jtune-peqa-scales-1";

    private PeqaScales() {
    }

    /** Writes the scales of {@code weights} (by layer, in model order) into {@code dir}; each file is atomic. */
    public static void save(Path dir, Map<String, PeqaWeight> weights, String baseModel, String quantizer)
            throws IOException {
        if (weights.isEmpty()) {
            throw new IllegalArgumentException("no PEQA layer to save scales of");
        }
        Files.createDirectories(dir);
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", FORMAT);
        weights.forEach((layer, p) -> w.add(layer + ".scales", p.scales().value()));
        w.write(dir.resolve(SCALES));
        QuantFormat f = format(weights);
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("format", FORMAT);
        c.put("base_model", baseModel);
        c.put("quantizer", quantizer);
        c.put("bits", f.bits());
        c.put("group_size", f.groupSize());
        c.put("symmetric", f.symmetric());
        c.put("codes_crc32", codesCrc(weights));
        c.put("layers", List.copyOf(weights.keySet()));
        TextFiles.writeAtomically(dir.resolve(CONFIG), Json.write(c) + "\n");
    }

    /**
     * What a scale set's {@value #CONFIG} says.
     *
     * @param format    the integer format of the base its scales were trained on, with f32 scales
     * @param layers    the layers it holds scales for, in model order
     * @param baseModel the model the base was quantized from, as saved
     * @param quantizer how, as saved
     */
    public record Settings(QuantFormat format, List<String> layers, String baseModel, String quantizer) {
        public Settings {
            layers = List.copyOf(layers);
        }
    }

    /**
     * Reads {@code dir}'s {@value #CONFIG}: a jtune scale set with a format that exists and a list of layers; fails
     * with one sentence naming the file and the field otherwise.
     */
    public static Settings readConfig(Path dir) throws IOException {
        Path file = dir.resolve(CONFIG);
        Map<String, Object> c = config(file);
        if (!(c.get("bits") instanceof Long bits) || !(c.get("group_size") instanceof Long group)
                || !(c.get("symmetric") instanceof Boolean symmetric) || bits != bits.intValue()
                || group != group.intValue()) {
            throw new SafeTensors.FormatException(file + " must give \"bits\", \"group_size\" (whole numbers, such as "
                    + "4 and 32) and \"symmetric\" (true or false), not " + Json.write(c.get("bits")) + ", "
                    + Json.write(c.get("group_size")) + " and " + Json.write(c.get("symmetric")));
        }
        QuantFormat f;
        try {
            f = QuantFormat.integer(bits.intValue(), group.intValue(), symmetric, DType.F32);
        } catch (IllegalArgumentException e) {
            throw new SafeTensors.FormatException(file + " declares a format jtune does not have: " + e.getMessage());
        }
        if (!(c.get("layers") instanceof List<?> l) || l.isEmpty()) {
            throw new SafeTensors.FormatException(file + ": \"layers\" must be the non-empty list of the layers "
                    + "whose scales the set holds");
        }
        List<String> layers = new ArrayList<>();
        l.forEach(x -> layers.add(String.valueOf(x)));
        return new Settings(f, layers, String.valueOf(c.get("base_model")), String.valueOf(c.get("quantizer")));
    }

    /** {@code file} parsed, checked to be a jtune PEQA scale set's config. */
    private static Map<String, Object> config(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "no PEQA scale set here");
        }
        Map<String, Object> c;
        try {
            c = Json.parseObject(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            throw new SafeTensors.FormatException(file + " is not valid JSON: " + e.getMessage());
        }
        if (!FORMAT.equals(c.get("format"))) {
            throw new SafeTensors.FormatException(file + " is not a jtune PEQA scale set (its \"format\" is "
                    + Json.write(c.get("format")) + ", not \"" + FORMAT + "\")");
        }
        return c;
    }

    /**
     * Reads the scale set in {@code dir} into {@code weights}: the same layers, the same format, and the same codes and
     * zero points (by their CRC-32) as when the set was saved; otherwise fails saying what differs.
     */
    public static void load(Path dir, Map<String, PeqaWeight> weights) throws IOException {
        Path file = dir.resolve(CONFIG);
        Map<String, Object> c = config(file);
        QuantFormat f = format(weights);
        String have = f.bits() + "-bit, group " + f.groupSize() + (f.symmetric() ? ", symmetric" : ", asymmetric");
        String saved = c.get("bits") + "-bit, group " + c.get("group_size")
                + (Boolean.TRUE.equals(c.get("symmetric")) ? ", symmetric" : ", asymmetric");
        if (!have.equals(saved)) {
            throw new SafeTensors.FormatException(file + ": the scales were trained on a " + saved + " base, but this "
                    + "model is quantized " + have + "; quantize it as the scales' base was");
        }
        List<String> layers = new ArrayList<>();
        if (c.get("layers") instanceof List<?> l) {
            l.forEach(x -> layers.add(String.valueOf(x)));
        }
        if (!layers.equals(List.copyOf(weights.keySet()))) {
            throw new SafeTensors.FormatException(file + " holds scales for the layers " + layers + ", but this "
                    + "model's PEQA layers are " + weights.keySet());
        }
        String crc = codesCrc(weights);
        if (!crc.equals(c.get("codes_crc32"))) {
            throw new SafeTensors.FormatException(file + ": the scales were trained over other integer codes (CRC-32 "
                    + c.get("codes_crc32") + ", this model's " + crc + "); they fit only the base quantized from "
                    + Json.write(c.get("base_model")) + " with " + Json.write(c.get("quantizer")));
        }
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve(SCALES))) {
            for (Map.Entry<String, PeqaWeight> e : weights.entrySet()) {
                r.read(e.getKey() + ".scales", e.getValue().scales().value());
            }
            if (r.entries().size() != weights.size()) {
                throw new SafeTensors.FormatException(r.file() + " holds " + r.entries().size() + " tensors, not the "
                        + weights.size() + " scales that " + file + " lists");
            }
        }
    }

    /** The format shared by the weights' matrices (their trained scales are f32). */
    private static QuantFormat format(Map<String, PeqaWeight> weights) {
        QuantFormat f = null;
        for (Map.Entry<String, PeqaWeight> e : weights.entrySet()) {
            QuantFormat g = e.getValue().matrix().format();
            if (f != null && !f.equals(g)) {
                throw new IllegalArgumentException("PEQA layers of one model must share a format; " + e.getKey()
                        + " is " + g + ", the others " + f);
            }
            f = g;
        }
        if (f == null) {
            throw new IllegalArgumentException("the model has no PEQA layer");
        }
        return f;
    }

    /** CRC-32, 8 hex digits, over each layer's name, packed codes and zero points (f32 bits), in order. */
    static String codesCrc(Map<String, PeqaWeight> weights) {
        CRC32 crc = new CRC32();
        for (Map.Entry<String, PeqaWeight> e : weights.entrySet()) {
            QuantizedMatrix m = e.getValue().matrix();
            crc.update(e.getKey().getBytes(StandardCharsets.UTF_8));
            MemorySegment codes = m.codes().segment();
            crc.update(codes.asSlice(m.codes().byteOffset(), m.rows() * m.rowBytes()).asByteBuffer());
            float[] zeros = new float[m.groups()];
            MemorySegment z = MemorySegment.ofArray(new byte[zeros.length * Float.BYTES]);
            for (int i = 0; i < m.rows(); i++) {
                m.rowZeros(i, zeros);
                MemorySegment.copy(zeros, 0, z, ValueLayout.JAVA_FLOAT_UNALIGNED, 0, zeros.length);
                crc.update(z.asByteBuffer());
            }
        }
        return String.format("%08x", crc.getValue());
    }
}
