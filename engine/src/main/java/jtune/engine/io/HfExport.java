package jtune.engine.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.tensor.DType;
import jtune.engine.tokenizer.Tokenizer;

/**
 * Writes a model as a Hugging Face folder that transformers (and {@link ModelLoader}) load:
 * <ul>
 * <li>{@code config.json} ({@link HfConfig#write}: LlamaForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM);</li>
 * <li>the weights in f32 under their Hugging Face names, with metadata {@code {"format": "pt"}} as transformers
 * requires: {@code model.safetensors}, or above {@code maxShardBytes} of tensor data shards
 * {@code model-00001-of-0000N.safetensors} with {@code model.safetensors.index.json} (transformers'
 * {@code save_pretrained} layout);</li>
 * <li>{@code generation_config.json} with the bos and eos ids where the tokenizer has them;</li>
 * <li>the tokenizer: the files it was read from, copied (a Hugging Face tokenizer as {@code tokenizer.json} with
 * its companions such as {@code tokenizer_config.json}; a llama2.c tokenizer as {@code tokenizer.bin}, which jtune
 * reads back but transformers cannot),
 * or for jtune's byte tokenizer a generated {@code tokenizer.json} with the same ids ({@link ByteTokenizerJson})
 * and its {@code tokenizer_config.json}.</li>
 * </ul>
 * The model's parameters are written as they are, so they must be its Hugging Face tensors: a model built with a
 * {@link jtune.engine.nn.WeightTransform} that adds parameters (adapters) must have them merged first, and a
 * quantized model (non-f32 tensors) is refused. A Mistral
 * model is written as LlamaForCausalLM, the same computation within its positions (see {@link HfConfig}).
 * The folder appears whole or not at all: everything is written into a hidden temporary folder beside it and
 * forced to the device, then the folder is renamed to {@code dir}; on failure it is deleted. An existing {@code dir} must be an empty folder;
 * anything else is refused, never overwritten.
 */
public final class HfExport {
    /** transformers' default largest shard ("5GB"). */
    public static final long SHARD_BYTES = 5_000_000_000L;

    /** What was written: the folder, its files, and one line about the tokenizer. */
    public record Result(Path dir, List<String> files, String tokenizerNote) {
    }

    private HfExport() {
    }

    /** Exports a loaded model with its tokenizer, in shards of at most {@link #SHARD_BYTES}. */
    public static Result write(LoadedModel m, Path dir) throws IOException {
        return write(m.model(), m.tokenizer(), m.tokenizerFiles(), dir, SHARD_BYTES);
    }

    /**
     * Exports {@code model}; {@code tokenizerFiles} are copied when there are any, else a {@link ByteTokenizer}
     * gets a generated tokenizer.json, else no tokenizer is written. {@code tokenizer} (may be null) gives the bos
     * and eos ids.
     */
    public static Result write(LlamaModel model, Tokenizer tokenizer, List<Path> tokenizerFiles, Path dir,
                               long maxShardBytes) throws IOException {
        SafeTensorsWriter weights = new SafeTensorsWriter();
        for (Parameter p : model.parameters()) {
            if (p.value().dtype() != DType.F32) {
                throw new IllegalArgumentException("tensor '" + p.name() + "' of the model is " + p.value().dtype()
                        + ", not f32: a quantized model cannot be exported as an f32 Hugging Face folder (jtune "
                        + "quantize writes it in jtune's own quantized form)");
            }
            weights.add(p.name(), p.value());
        }
        return write(model.config(), Map.of(), weights, tokenizer, tokenizerFiles, dir, maxShardBytes);
    }

    /**
     * Exports a model given as its config and the tensors {@code weights} holds under the names the files are to
     * have (a quantized model's packed codes and scales, say), with the fields of {@code extraConfig} added to
     * config.json (a {@code "quantization_config"}); otherwise as {@link #write(LlamaModel, Tokenizer, List, Path,
     * long)}. The writer gets the metadata {@code {"format": "pt"}}.
     */
    public static Result write(LlamaConfig modelConfig, Map<String, Object> extraConfig, SafeTensorsWriter weights,
                               Tokenizer tokenizer, List<Path> tokenizerFiles, Path dir, long maxShardBytes)
            throws IOException {
        Path target = dir.toAbsolutePath().normalize();
        refuseExisting(target);
        int bos = tokenizer == null ? -1 : tokenizer.bos(), eos = tokenizer == null ? -1 : tokenizer.eos();
        String config = HfConfig.write(modelConfig, bos, eos);
        if (!extraConfig.isEmpty()) {
            Map<String, Object> fields = Json.parseObject(config);
            fields.putAll(extraConfig);
            config = HfConfig.pretty(fields);
        }
        Files.createDirectories(target.getParent());
        Path tmp = target.resolveSibling("." + target.getFileName() + ".export-" + ProcessHandle.current().pid() + "-"
                + System.nanoTime());
        Files.createDirectory(tmp);
        try {
            writeText(tmp.resolve("config.json"), config);
            writeText(tmp.resolve("generation_config.json"), generationConfig(bos, eos));
            weights.metadata("format", "pt").writeModel(tmp, maxShardBytes);
            String note = tokenizer(tokenizer, tokenizerFiles, modelConfig.maxSeq(), tmp);
            List<String> files;
            try (Stream<Path> list = Files.list(tmp)) {
                files = list.map(p -> p.getFileName().toString()).sorted().toList();
            }
            refuseExisting(target);
            Files.deleteIfExists(target);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            return new Result(target, files, note);
        } catch (IOException | RuntimeException e) {
            deleteTree(tmp);
            throw e;
        }
    }

    /** Writes or copies the tokenizer into {@code dir}; returns what it did, in words. */
    private static String tokenizer(Tokenizer tokenizer, List<Path> files, int maxSeq, Path dir) throws IOException {
        if (!files.isEmpty()) {
            String first = files.getFirst().getFileName().toString();
            if (!first.endsWith(".json")) {
                copy(files.getFirst(), dir.resolve("tokenizer.bin"));
                return "tokenizer: llama2.c's " + first + " copied as tokenizer.bin, which jtune reads but Hugging Face "
                        + "transformers cannot";
            }
            List<String> names = new ArrayList<>();
            for (Path f : files) {
                names.add(names.isEmpty() ? ModelLoader.TOKENIZER_JSON : f.getFileName().toString());
                copy(f, dir.resolve(names.getLast()));
            }
            return "tokenizer: " + String.join(", ", names) + " copied";
        }
        if (tokenizer instanceof ByteTokenizer) {
            writeText(dir.resolve(ModelLoader.TOKENIZER_JSON), ByteTokenizerJson.tokenizer());
            writeText(dir.resolve("tokenizer_config.json"), ByteTokenizerJson.config(maxSeq));
            return "tokenizer: jtune's byte tokenizer written as a byte-level tokenizer.json with the same ids";
        }
        return tokenizer == null ? "no tokenizer: the model was loaded without one"
                : "no tokenizer: this tokenizer came from no file that could be copied";
    }

    /** A copy with the permissions of a new file (not the source's, which may be read-only), forced to the device. */
    private static void copy(Path from, Path to) throws IOException {
        try (InputStream in = Files.newInputStream(from)) {
            Files.copy(in, to);
        }
        force(to);
    }

    /** Writes {@code text} as UTF-8 and forces it to the device, so that the renamed folder holds it whole. */
    private static void writeText(Path file, String text) throws IOException {
        Files.writeString(file, text, StandardCharsets.UTF_8);
        force(file);
    }

    private static void force(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }

    private static String generationConfig(int bos, int eos) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("_from_model_config", true);
        if (bos >= 0) {
            m.put("bos_token_id", bos);
        }
        if (eos >= 0) {
            m.put("eos_token_id", eos);
        }
        return HfConfig.pretty(m);
    }

    private static void refuseExisting(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        if (!Files.isDirectory(dir)) {
            throw new FileAlreadyExistsException(dir.toString(), null, "exists and is not a folder; choose a new "
                    + "folder to export to");
        }
        try (Stream<Path> list = Files.list(dir)) {
            if (list.findAny().isPresent()) {
                    throw new FileAlreadyExistsException(dir.toString(), null, "is not empty; jtune exports only into a "
                        + "new or empty folder, never over files");
            }
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
