package jtune.methods.cli;

import static jtune.methods.cli.Run.jtune;
import static jtune.methods.cli.Run.DATA;
import static jtune.methods.cli.Run.STORIES;
import static jtune.methods.cli.Run.TEXT;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.HfExport;
import jtune.engine.io.Json;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.Generator;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.Perplexity;
import jtune.engine.model.Sampling;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.Tensor;
import jtune.engine.tokenizer.Llama2cTokenizer;
import jtune.engine.tokenizer.Tokenizer;
import jtune.methods.peft.LoraAdapters;
import jtune.methods.peft.LoraConfig;
import jtune.methods.peft.PeqaScales;
import jtune.methods.peft.PeqaWeight;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --scales DIR} and {@code --adapter DIR} of {@code jtune eval} and {@code jtune generate}, on stories260K: a
 * PEQA scale set and a LoRA adapter are trained here in memory (a few AdamW steps on TinyStories text), saved, and the
 * commands given them must print exactly the perplexity and the greedy text of the model that trained them (the scale
 * set over the f32 model, quantized again by RTN as in training; the adapter over a folder written by
 * {@code jtune quantize}), which differ from the base model's; a scale set or adapter of another model, format or
 * layer shape is refused in one sentence.
 */
class LoadOptionsTest {
    private static final Path TOKENIZER = DATA.resolve("models/stories260K/tok512.bin");
    private static final int SEQ = 128, STEPS = 4, NEW_TOKENS = 40;
    private static final String PROMPT = "Once upon a time";

    @TempDir
    Path tmp;
    private Path evalText;
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session s = new Session(new ScalarBackend(), pool);

    /** What the in-memory model gives: its perplexity on {@code evalText} in windows of SEQ, and its greedy text. */
    private record Expected(double perplexity, String text) {
    }

    @BeforeEach
    void needsData() throws IOException {
        Run.assumeStories();
        String all = Files.readString(TEXT);
        evalText = Files.writeString(tmp.resolve("eval.txt"), all.substring(100_000, 104_000));
    }

    @AfterEach
    void close() {
        pool.close();
    }

    private static double evalPerplexity(String... args) {
        Run r = jtune(args);
        assertThat(r.status()).as(r.err()).isZero();
        return ((Number) Json.parseObject(r.out().strip()).get("perplexity")).doubleValue();
    }

    private static String greedy(String... args) {
        List<String> argv = new ArrayList<>(List.of(args));
        argv.addAll(List.of("--prompt", PROMPT, "--steps", Integer.toString(NEW_TOKENS), "--temperature", "0"));
        Run r = jtune(argv.toArray(String[]::new));
        assertThat(r.status()).as(r.err()).isZero();
        return r.out();
    }

    /** A few AdamW steps at {@code lr} on one batch of 4 x 64 tokens from the start of the text. */
    private void train(LoadedModel m, float lr) throws IOException {
        int[] ids = m.tokenizer().encode(Files.readString(TEXT).substring(0, 20_000), true);
        float[] x = new float[4 * 64], y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            x[i] = ids[i];
            y[i] = ids[i + 1];
        }
        try (Tensor tokens = s.i32("tokens", Category.WORKSPACE, 4, 64).copyFrom(x);
             Tensor targets = s.i32("targets", Category.WORKSPACE, 4, 64).copyFrom(y);
             AdamW opt = new AdamW(s, m.model().parameters(), 0.9f, 0.999f, 1e-8f, 0f)) {
            for (int i = 0; i < STEPS; i++) {
                opt.zeroGrad();
                m.model().forwardBackward(tokens, targets, 1f);
                opt.step(lr);
            }
        }
    }

    /** The model's perplexity on evalText as {@code jtune eval} measures it, and its greedy continuation of PROMPT. */
    private Expected expected(LoadedModel m) throws IOException {
        Tokenizer tok = m.tokenizer();
        int[] tokens = tok.encode(Files.readString(evalText, StandardCharsets.UTF_8), true);
        double ppl = Perplexity.evaluate(s, m.model(), tokens, SEQ, 1, (d, n) -> { }).perplexity();
        int[] prompt = tok.encode(PROMPT, true);
        try (Generator g = new Generator(s, m.model())) {
            int[] made = g.generate(prompt, NEW_TOKENS, new Sampling(0f, 0.9f, 0), new SplittableRandom(0),
                    new int[]{tok.eos(), tok.bos()}, id -> { }).tokens();
            int[] all = new int[prompt.length + made.length];
            System.arraycopy(prompt, 0, all, 0, prompt.length);
            System.arraycopy(made, 0, all, prompt.length, made.length);
            return new Expected(ppl, new String(tok.decodeBytes(all, true), StandardCharsets.UTF_8) + "\n");
        }
    }

    private Path quantize(String name, String... options) {
        return Run.quantize(tmp.resolve(name), STORIES, options);
    }

    private static void assertRefused(Run r, String... sentence) {
        assertThat(r.status()).as(r.err()).isEqualTo(1);
        assertThat(r.err().lines().filter(l -> l.startsWith("jtune: ") && !l.contains("backend")).toList())
                .as(r.err()).singleElement().asString().contains(sentence);
        assertThat(r.err()).doesNotContain("Exception");
    }

    @Test
    void scalesGiveTheTrainedModelsPerplexityAndText() throws IOException {
        Path scales = tmp.resolve("scales");
        Map<String, PeqaWeight> peqa = new LinkedHashMap<>();
        QuantFormat int4 = QuantFormat.integer(4, 32, false, DType.F32);
        Expected trained;
        try (LoadedModel m = ModelLoader.load(s, STORIES, null, false,
                PeqaWeight.rtn(int4, l -> !l.endsWith("k_proj"), peqa), false)) {
            train(m, 1e-3f);
            trained = expected(m);
            PeqaScales.save(scales, peqa, STORIES.toString(), "rtn " + int4);
        }
        String model = STORIES.toString(), data = evalText.toString();
        double base = evalPerplexity("eval", "--model", model, "--data", data, "--seq", "" + SEQ, "--json");
        double withScales = evalPerplexity("eval", "--model", model, "--scales", scales.toString(), "--data", data,
                "--seq", "" + SEQ, "--json");
        assertThat(withScales).isEqualTo(trained.perplexity()).isNotEqualTo(base);
        Run r = jtune("generate", "--model", model, "--scales", scales.toString(), "--prompt", PROMPT, "--steps",
                "" + NEW_TOKENS, "--temperature", "0");
        assertThat(r.status()).as(r.err()).isZero();
        assertThat(r.err()).contains("; with the PEQA scale set " + scales + " (30 layers, int4 g32 asym f32)");
        assertThat(r.out()).isEqualTo(trained.text()).isNotEqualTo(greedy("generate", "--model", model));

        // The same codes stored by jtune quantize take the set too; another format or another model does not.
        Path rtn = quantize("rtn", "--method", "rtn", "--bits", "4", "--group", "32");
        assertThat(evalPerplexity("eval", "--model", rtn.toString(), "--scales", scales.toString(), "--data", data,
                "--seq", "" + SEQ, "--json")).isEqualTo(trained.perplexity());
        Path int3 = quantize("int3", "--method", "rtn", "--bits", "3", "--group", "32");
        assertRefused(jtune("eval", "--model", int3.toString(), "--scales", scales.toString(), "--data", data),
                "the scales were trained on a 4-bit, group 32, asymmetric base, but this model is quantized 3-bit, "
                        + "group 32, asymmetric");
        assertRefused(jtune("generate", "--model", otherModel().toString(), "--scales", scales.toString()),
                scales.resolve("peqa_config.json") + " holds scales for the layers");
        Path nf4 = quantize("nf4", "--method", "nf4");
        assertRefused(jtune("eval", "--model", nf4.toString(), "--scales", scales.toString(), "--data", data),
                "PEQA trains the scales of integer codes, but layer 'model.layers.0.self_attn.q_proj' is stored as "
                        + "nf4 b64");
    }

    @Test
    void anAdapterOverAQuantizedFolderGivesTheTrainedModelsPerplexityAndText() throws IOException {
        Path folder = quantize("rtn", "--method", "rtn", "--bits", "4", "--group", "64", "--lorc-rank", "2");
        Path adapter = tmp.resolve("adapter");
        LoraAdapters lora = new LoraAdapters(new LoraConfig(4, 8, 0.05, false, List.of("q_proj", "v_proj", "up_proj")),
                3);
        Expected trained;
        try (LoadedModel m = ModelLoader.load(s, folder, null, false, lora.over(WeightTransform.IDENTITY, 3), false)) {
            train(m, 1e-2f);
            trained = expected(m);
            lora.save(adapter, folder.toString());
        }
        String model = folder.toString(), data = evalText.toString();
        double base = evalPerplexity("eval", "--model", model, "--data", data, "--seq", "" + SEQ, "--json");
        Run json = jtune("eval", "--model", model, "--adapter", adapter.toString(), "--data", data, "--seq", "" + SEQ,
                "--json");
        assertThat(json.status()).as(json.err()).isZero();
        Map<String, Object> m = Json.parseObject(json.out().strip());
        assertThat(m).containsEntry("adapter", adapter.toString());
        assertThat(((Number) m.get("perplexity")).doubleValue()).isEqualTo(trained.perplexity()).isNotEqualTo(base);
        assertThat(json.err()).contains("quantized int4 g64 asym f32 by rtn, LoRC rank 2 (8-bit factors)",
                "; with the LoRA adapter " + adapter + " (r 4 on 15 layers)");
        assertThat(greedy("generate", "--model", model, "--adapter", adapter.toString())).isEqualTo(trained.text())
                .isNotEqualTo(greedy("generate", "--model", model));
        assertThat(json.err()).doesNotContain("note:");
        Run overF32 = jtune("eval", "--model", STORIES.toString(), "--adapter", adapter.toString(), "--data", data,
                "--seq", "" + SEQ);
        assertThat(overF32.status()).as(overF32.err()).isZero();
        assertThat(overF32.err()).contains("(r 4 on 15 layers; note: it was trained over int4 g64 asym f32 + LoRC r 2 "
                + "int8 layers and is applied here over dense ones, so its outputs differ from the fine-tuned model's)");

        assertRefused(jtune("eval", "--model", otherModel().toString(), "--adapter", adapter.toString(), "--data",
                data), "adapter_model.safetensors: tensor "
                + "'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' is [4, 64], but this model's "
                + "layer 'model.layers.0.self_attn.q_proj' needs [4, 32]; the adapter was made for a model with other "
                + "layer shapes");
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        assertRefused(jtune("eval", "--model", STORIES.toString(), "--adapter", empty.toString(), "--data", data),
                empty.resolve("adapter_config.json").toString(), "no LoRA adapter config here");
    }

    @Test
    void optionMistakesAreNamed() throws IOException {
        String model = STORIES.toString(), data = evalText.toString();
        Run both = jtune("eval", "--model", model, "--scales", tmp.toString(), "--adapter", tmp.toString(), "--data",
                data);
        assertThat(both.status()).isEqualTo(2);
        assertThat(both.err()).contains("give --scales or --adapter, not both");
        Run absent = jtune("generate", "--model", model, "--adapter", tmp.resolve("none").toString());
        assertThat(absent.status()).isEqualTo(2);
        assertThat(absent.err()).contains("--adapter: there is no folder " + tmp.resolve("none"));
        assertRefused(jtune("eval", "--model", model, "--scales", tmp.toString(), "--data", data),
                tmp.resolve("peqa_config.json").toString(), "no PEQA scale set here");
        assertThat(jtune("--help").out()).contains("--scales DIR", "--adapter DIR");
    }

    /**
     * A random model with stories260K's tokenizer and layer names but dimension 32 and two layers, as a Hugging Face
     * folder.
     */
    private Path otherModel() throws IOException {
        LlamaConfig c = LlamaConfig.llama(32, 48, 2, 4, 2, 512, 256, true);
        try (LlamaModel m = LlamaModel.create(s, c, 3, WeightTransform.IDENTITY, false)) {
            return HfExport.write(m, Llama2cTokenizer.load(TOKENIZER, 512), List.of(TOKENIZER), tmp.resolve("other"),
                    HfExport.SHARD_BYTES).dir();
        }
    }
}
