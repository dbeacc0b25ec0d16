package jtune.engine.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Predicate;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tokenizer.HfTokenizer;
import jtune.engine.tokenizer.Llama2cTokenizer;
import jtune.engine.tokenizer.Tokenizer;
import jtune.engine.train.Checkpoint;

/**
 * Reads a model and its tokenizer from disk, in whichever of the formats jtune knows it is:
 * <ul>
 * <li>a Hugging Face folder: {@code config.json} ({@link HfConfig}), the weights in {@code model.safetensors} or
 * sharded under {@code model.safetensors.index.json} ({@link SafeTensorsModel}; F32 tensors are mapped, not copied;
 * BF16 and F16 converted to f32), and {@code tokenizer.json} when there is one, else a llama2.c
 * {@code tokenizer.bin} (as {@link HfExport} writes beside a model converted from llama2.c);</li>
 * <li>a llama2.c checkpoint file, legacy or version 1 ({@link Llama2cCheckpoint}), with the llama2.c tokenizer
 * {@code tokenizer.bin} or {@code tok<vocab>.bin} from the same folder when there is one;</li>
 * <li>a quantized Hugging Face folder, whose config.json holds a {@code "quantization_config"}: its quantized
 * linear layers are read by the {@link QuantizedLayersProvider} of the config's {@code "quant_method"} (the
 * {@code jtune.methods} module reads jtune's own format, written by {@code jtune quantize}), the rest as above;</li>
 * <li>a {@code .safetensors} file stands for its folder when that holds config.json;</li>
 * <li>a jtune training checkpoint ({@code checkpoint.safetensors}, or the run folder holding it), whose metadata
 * holds the model config; its tokenizer is jtune's byte tokenizer. Its optimizer state is ignored.</li>
 * </ul>
 * Every tensor the model needs must be in the files with its exact shape, and every tensor in the files must
 * be used, except {@code *.rotary_emb.inv_freq} (a buffer older transformers saved; jtune computes RoPE itself)
 * and a stored {@code lm_head.weight} of a model with tied embeddings (transformers ignores it too, using the
 * embedding); anything else left over means the config does not describe the files, and is named. A tokenizer
 * with more ids than the model's vocabulary is refused as another model's.
 */
public final class ModelLoader {
    /** The file names of a Hugging Face folder. */
    static final String CONFIG = "config.json";
    static final String TOKENIZER_JSON = "tokenizer.json";
    static final String LLAMA2C_TOKENIZER = "tokenizer.bin";
    /** Tokenizer files of a Hugging Face folder besides tokenizer.json, copied along with it on export. */
    static final List<String> TOKENIZER_COMPANIONS = List.of("tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt");

    private ModelLoader() {
    }

    /**
     * Loads {@code path}: a Hugging Face folder, a llama2.c checkpoint file, or a jtune training checkpoint (see the
     * class comment). {@code tokenizer}: null, or a {@code tokenizer.json} or llama2.c {@code .bin} tokenizer that
     * replaces the one found. With {@code trainable} the parameters can be trained; {@code transform} is applied to
     * every linear layer ({@link LlamaModel#create}), to a layer stored quantized as the frozen weight read from the
     * file ({@link WeightTransform#applyQuantized}).
     */
    public static LoadedModel load(Session s, Path path, Path tokenizer, boolean trainable, WeightTransform transform,
                                   boolean checkpointing) throws IOException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "no such model file or folder");
        }
        if (tokenizer != null && !Files.isRegularFile(tokenizer)) {
            throw new NoSuchFileException(tokenizer.toString(), null, "no such tokenizer file");
        }
        Path runCheckpoint = path.resolve(Checkpoint.FILE);
        if (Files.isDirectory(path) && Files.isRegularFile(path.resolve(CONFIG))) {
            return huggingFace(s, path, tokenizer, trainable, transform, checkpointing);
        }
        if (Files.isDirectory(path) && Files.isRegularFile(runCheckpoint)) {
            return jtuneCheckpoint(s, runCheckpoint, tokenizer, trainable, transform, checkpointing);
        }
        if (Files.isDirectory(path)) {
            throw new FormatException(path + " is not a model folder: it holds neither " + CONFIG + " (Hugging Face) "
                    + "nor " + Checkpoint.FILE + " (a jtune run)");
        }
        if (path.getFileName().toString().endsWith(".safetensors")) {
            Path folder = path.toAbsolutePath().getParent();
            return Files.isRegularFile(folder.resolve(CONFIG))
                    ? huggingFace(s, folder, tokenizer, trainable, transform, checkpointing)
                    : jtuneCheckpoint(s, path, tokenizer, trainable, transform, checkpointing);
        }
        return llama2c(s, path, tokenizer, trainable, transform, checkpointing);
    }

    private static LoadedModel huggingFace(Session s, Path dir, Path tokenizer, boolean trainable,
                                           WeightTransform transform, boolean checkpointing) throws IOException {
        QuantizedFolder.Config config = QuantizedFolder.read(dir.resolve(CONFIG));
        LlamaConfig c = config.model();
        Path tokFile = tokenizer != null ? tokenizer
                : Files.isRegularFile(dir.resolve(TOKENIZER_JSON)) ? dir.resolve(TOKENIZER_JSON)
                : Files.isRegularFile(dir.resolve(LLAMA2C_TOKENIZER)) ? dir.resolve(LLAMA2C_TOKENIZER) : null;
        List<Path> tokenizerFiles = tokenizerFiles(tokFile);
        Tokenizer tok = tokenizerFiles.isEmpty() ? null : readTokenizer(tokenizerFiles.getFirst(), c.vocab());
        SafeTensorsModel files = SafeTensorsModel.open(dir);
        try {
            QuantizedLayersProvider.Layers quantized = config.quantization() == null ? null
                    : QuantizedFolder.open(dir.resolve(CONFIG), config.quantization(), files);
            Predicate<String> ignored = n -> n.endsWith(".rotary_emb.inv_freq")
                    || (c.tiedEmbeddings() && n.equals("lm_head.weight"))
                    || (quantized != null && quantized.used().contains(n));
            LlamaModel model = build(s, c, files, ignored, trainable, transform, checkpointing, quantized);
            String what = dir + ": Hugging Face model" + (quantized == null ? "" : " quantized " + quantized.description())
                    + ", " + shape(model);
            return new LoadedModel(model, tok, what + tokenizerNote(tokenizerFiles), tokenizerFiles, files);
        } catch (IOException | RuntimeException e) {
            files.close();
            throw e;
        }
    }

    private static LoadedModel jtuneCheckpoint(Session s, Path file, Path tokenizer, boolean trainable,
                                               WeightTransform transform, boolean checkpointing) throws IOException {
        Map<String, String> meta = Checkpoint.metadata(file);
        if (!meta.getOrDefault(Checkpoint.FROZEN, "0").equals("0")) {
            throw new SafeTensors.FormatException(file + " holds only the trained part of a model, not its frozen "
                    + "weights; load the model it was trained over"
                    + (meta.containsKey("base_model") ? " (" + meta.get("base_model") + ")" : "")
                    + " with what the run saved beside it (--adapter or --scales " + file.toAbsolutePath().getParent()
                    + ")");
        }
        LlamaConfig c = Checkpoint.config(meta, file);
        Tokenizer tok = tokenizer != null ? readTokenizer(tokenizer, c.vocab()) : new ByteTokenizer();
        List<Path> tokenizerFiles = tokenizerFiles(tokenizer);
        SafeTensorsModel files = SafeTensorsModel.open(file);
        try {
            LlamaModel model = build(s, c, files, n -> n.startsWith("optimizer."), trainable, transform, checkpointing,
                    null);
            String what = file + ": jtune checkpoint of step " + meta.get("step") + ", " + shape(model);
            return new LoadedModel(model, tok, what + (tokenizer != null ? tokenizerNote(tokenizerFiles)
                    : "; byte tokenizer"), tokenizerFiles, files);
        } catch (IOException | RuntimeException e) {
            files.close();
            throw e;
        }
    }

    private static LoadedModel llama2c(Session s, Path file, Path tokenizer, boolean trainable,
                                       WeightTransform transform, boolean checkpointing) throws IOException {
        LlamaModel model;
        String format;
        try (Llama2cCheckpoint ck = Llama2cCheckpoint.open(file)) {
            model = LlamaModel.create(s, ck.config(), ck, trainable, transform, checkpointing);
            format = ck.format();
        }
        try {
            Path tokFile = tokenizer != null ? tokenizer : siblingTokenizer(file, model.config().vocab());
            List<Path> tokenizerFiles = tokenizerFiles(tokFile);
            Tokenizer tok = tokFile == null ? null : readTokenizer(tokFile, model.config().vocab());
            return new LoadedModel(model, tok, file + ": " + format + ", " + shape(model) + tokenizerNote(tokenizerFiles),
                    tokenizerFiles, null);
        } catch (IOException | RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /**
     * The files of the tokenizer {@code file} (none for null): a tokenizer.json with the companions beside it
     * ({@link #TOKENIZER_COMPANIONS}), or a llama2.c tokenizer alone.
     */
    private static List<Path> tokenizerFiles(Path file) {
        List<Path> files = new ArrayList<>();
        if (file != null) {
            files.add(file);
            Path dir = file.toAbsolutePath().getParent();
            if (isJson(file)) {
                TOKENIZER_COMPANIONS.stream().map(dir::resolve).filter(Files::isRegularFile).forEach(files::add);
            }
        }
        return files;
    }

    private static boolean isJson(Path file) {
        return file.getFileName().toString().endsWith(".json");
    }

    /** tokenizer.bin, else tok&lt;vocab&gt;.bin, beside a llama2.c checkpoint; null when neither is there. */
    private static Path siblingTokenizer(Path checkpoint, int vocab) {
        Path dir = checkpoint.toAbsolutePath().getParent();
        for (String name : new String[]{LLAMA2C_TOKENIZER, "tok" + vocab + ".bin"}) {
            if (Files.isRegularFile(dir.resolve(name))) {
                return dir.resolve(name);
            }
        }
        return null;
    }

    /**
     * A tokenizer.json (by its extension) or else a llama2.c tokenizer of {@code vocab} pieces; fails if it has ids
     * beyond the model's {@code vocab} rows.
     */
    private static Tokenizer readTokenizer(Path file, int vocab) throws IOException {
        Tokenizer t = isJson(file) ? HfTokenizer.load(file) : Llama2cTokenizer.load(file, vocab);
        if (t.vocabSize() > vocab) {
            throw new FormatException(file + " has " + t.vocabSize() + " tokens but the model's vocabulary has only "
                    + vocab + "; it is not this model's tokenizer");
        }
        return t;
    }

    /**
     * The model whose tensors come from {@code files}, its {@code quantized} layers (null: none) from their provider;
     * fails, naming it, on a tensor of the files that the model did not use and {@code ignored} does not excuse.
     */
    private static LlamaModel build(Session s, LlamaConfig c, SafeTensorsModel files, Predicate<String> ignored,
                                    boolean trainable, WeightTransform transform, boolean checkpointing,
                                    QuantizedLayersProvider.Layers quantized) throws IOException {
        SafeTensorsWeights weights = new SafeTensorsWeights(files);
        LlamaModel model;
        try {
            model = quantized == null ? LlamaModel.create(s, c, weights, trainable, transform, checkpointing)
                    : QuantizedFolder.create(s, c, weights, quantized, trainable, transform, checkpointing);
        } catch (UncheckedIOException e) {
            weights.closeAll();
            throw e.getCause();
        } catch (RuntimeException e) {
            weights.closeAll();
            throw e;
        }
        List<String> extra = files.names().stream().filter(n -> !weights.used().contains(n) && !ignored.test(n)).toList();
        if (!extra.isEmpty()) {
            model.close();
            throw new FormatException(files.file(extra.getFirst()) + " holds tensor '" + extra.getFirst() + "'"
                    + (extra.size() > 1 ? " and " + (extra.size() - 1) + " more" : "")
                    + " that the model its config describes does not have");
        }
        return model;
    }

    /** "260,032 parameters (dim 64, 5 layers, 8 heads, 4 kv heads, ...)". */
    static String shape(LlamaModel model) {
        LlamaConfig c = model.config();
        long n = c.parameterCount();
        return String.format(Locale.ROOT, "%,d parameters (dim %d, %d layers, %d heads, %d kv heads, head dim %d, "
                        + "hidden %d, vocab %d, %d positions%s%s%s%s)", n, c.dim(), c.layers(), c.heads(), c.kvHeads(),
                c.headDim(), c.hiddenDim(), c.vocab(), c.maxSeq(), c.tiedEmbeddings() ? ", tied" : "",
                c.qkvBias() ? ", q/k/v bias" : "", c.qkNorm() ? ", q/k norm" : "",
                c.ropeScaling() != null ? ", llama3 rope scaling" : "");
    }

    private static String tokenizerNote(List<Path> tokenizerFiles) {
        return tokenizerFiles.isEmpty() ? "; no tokenizer found" : "; tokenizer " + tokenizerFiles.getFirst();
    }
}
