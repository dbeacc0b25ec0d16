package jtune.engine.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Shape;
import jtune.engine.tensor.Tensor;

/**
 * The engine's side of a quantized Hugging Face folder: splits the {@code "quantization_config"} off
 * {@code config.json}, finds the {@link QuantizedLayersProvider} of its {@code "quant_method"}, and builds the model
 * with the provider's weights in place of the quantized layers.
 *
 * <p>{@link LlamaModel#create} asks its {@link WeightSource} for every linear layer's dense (out, in) weight before
 * handing it to the {@link WeightTransform}. For a quantized layer there is no such tensor, so the source gives a
 * stand-in that holds no memory (one f32 zero seen through zero strides, counted nowhere) and the transform, which
 * always replaces it, reads the provider's weight instead and hands it to the caller's transform as the base of
 * {@link WeightTransform#applyQuantized} (the identity keeps it; an adapter wraps it; PEQA trains its scales); a
 * stand-in that no transform replaced (a file quantizing a tensor that is not a linear layer's, such as the
 * embedding) is refused. Every other layer goes to the caller's {@link WeightTransform#apply} as usual.
 */
final class QuantizedFolder {
    /** Largest config.json read, as {@link HfConfig} has it. */
    private static final long MAX_CONFIG_BYTES = 1 << 20;
    private static final String KEY = "quantization_config";
    private static final MemorySegment ZERO = Arena.global().allocate(Float.BYTES);

    /** A config.json: the model's config, and its "quantization_config" object or null when it has none. */
    record Config(LlamaConfig model, Map<String, Object> quantization) {
    }

    private QuantizedFolder() {
    }

    /**
     * Reads {@code file}. Without a non-null "quantization_config" (or when the file is not readable JSON, for
     * {@link HfConfig} to say why) it is exactly {@link HfConfig#read}; with one, the rest of the file is converted by
     * {@link HfConfig#parse} and the object is returned beside it.
     */
    @SuppressWarnings("unchecked")
    static Config read(Path file) throws IOException {
        Map<String, Object> root = null;
        if (Files.size(file) <= MAX_CONFIG_BYTES) {
            try {
                root = Json.parseObject(Files.readString(file, StandardCharsets.UTF_8));
            } catch (CharacterCodingException | Json.JsonException e) {
                root = null;
            }
        }
        if (root == null || root.get(KEY) == null) {
            return new Config(HfConfig.read(file), null);
        }
        Object q = root.remove(KEY);
        if (!(q instanceof Map)) {
            throw new FormatException(file + ": \"" + KEY + "\" must be an object, got " + Json.typeName(q));
        }
        return new Config(HfConfig.parse(Json.write(root), file.toString()), (Map<String, Object>) q);
    }

    /** The layers of {@code files} per the provider of {@code quantization}'s "quant_method". */
    static QuantizedLayersProvider.Layers open(Path configFile, Map<String, Object> quantization,
                                               SafeTensorsModel files) throws IOException {
        if (!(quantization.get("quant_method") instanceof String method)) {
            throw new FormatException(configFile + ": \"" + KEY + "\" needs \"quant_method\", a string such as \"jtune\"");
        }
        List<String> known = new ArrayList<>();
        for (QuantizedLayersProvider p : ServiceLoader.load(QuantizedLayersProvider.class,
                QuantizedFolder.class.getClassLoader())) {
            if (p.quantMethod().equals(method)) {
                return p.open(configFile, quantization, files);
            }
            known.add("\"" + p.quantMethod() + "\"");
        }
        throw new FormatException(configFile + ": \"" + KEY + "\" has \"quant_method\": \"" + method + "\", which jtune "
                + "does not read; " + (known.isEmpty() ? "quantized models need the jtune.methods module, which is not "
                + "in this build" : "it reads " + String.join(", ", known) + " (written by jtune quantize)"));
    }

    /**
     * The model whose quantized layers come from {@code layers} and every other tensor from {@code dense}, built with
     * {@code transform} (see the class comment); on a failure the weights built over the provider's are closed (the
     * dense tensors are the caller's to close).
     */
    static LlamaModel create(Session s, LlamaConfig c, WeightSource dense, QuantizedLayersProvider.Layers layers,
                             boolean trainable, WeightTransform transform, boolean checkpointing) {
        Set<String> standIns = new LinkedHashSet<>();
        List<LinearWeight> built = new ArrayList<>();
        WeightSource source = (s2, name, init, category, dims) -> {
            if (dims.length == 2 && name.endsWith(".weight") && layers.isQuantized(layer(name))) {
                standIns.add(layer(name));
                return Tensor.wrap(ZERO, name, DType.F32, Shape.of(1)).view(dims, new long[]{0, 0}, 0);
            }
            return dense.tensor(s2, name, init, category, dims);
        };
        WeightTransform composed = (s2, layer, base) -> {
            if (!standIns.remove(layer)) {
                return transform.apply(s2, layer, base);
            }
            LinearWeight stored;
            try {
                stored = layers.weight(s2, layer, base.outFeatures(), base.inFeatures());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            LinearWeight w;
            try {
                w = transform.applyQuantized(s2, layer, stored);
            } catch (RuntimeException e) {
                stored.close();
                throw e;
            }
            built.add(w);
            return w;
        };
        try {
            LlamaModel model = LlamaModel.create(s, c, source, trainable, composed, checkpointing);
            if (!standIns.isEmpty()) {
                model.close();
                throw new IllegalArgumentException("the quantized model stores '" + standIns.iterator().next()
                        + "' quantized, but only linear layers can be; it must be stored as f32 '"
                        + standIns.iterator().next() + ".weight'");
            }
            return model;
        } catch (RuntimeException e) {
            built.forEach(LinearWeight::close);
            throw e;
        }
    }

    private static String layer(String weightName) {
        return weightName.substring(0, weightName.length() - ".weight".length());
    }
}
