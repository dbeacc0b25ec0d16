package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.LlamaConfig;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.tokenizer.Llama2cTokenizer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * stories260K (Karpathy's llama2.c model, from ../shared/data; skipped where absent) loaded three ways: the legacy
 * llama2.c file, the version 1 file and the Hugging Face safetensors folder derived from it. The oracle is
 * reference_greedy_n200.json, written by an independent float64 numpy re-implementation of run.c: the 512 logits
 * at positions 0..3 for the tokens BOS=1 and the first three greedy tokens, to 6 significant digits.
 */
class ModelLoaderStoriesTest {
    static final Path MODELS = Path.of("..", "..", "shared", "data", "models").toAbsolutePath().normalize();
    static final Path LEGACY = MODELS.resolve("stories260K/stories260K.bin");
    static final Path V1 = MODELS.resolve("stories260K/stories260K_v1.bin");
    static final Path HF = MODELS.resolve("stories260K-hf-derived");
    static final Path TOK512 = MODELS.resolve("stories260K/tok512.bin");
    static final Path REFERENCE = MODELS.resolve("stories260K/reference_greedy_n200.json");

    private final ScalarBackend backend = new ScalarBackend();
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session session = new Session(backend, pool);

    @AfterEach
    void close() {
        pool.close();
        backend.close();
    }

    static void assumeData() {
        for (Path p : List.of(LEGACY, V1, HF.resolve("model.safetensors"), TOK512, REFERENCE)) {
            assumeTrue(Files.exists(p), p + " is absent; skipping the stories260K loading test");
        }
    }

    private LoadedModel load(Path path, Path tokenizer) throws IOException {
        return ModelLoader.load(session, path, tokenizer, false, WeightTransform.IDENTITY, false);
    }

    @Test
    void threeFormatsGiveTheReferenceLogitsAndTheSameWeights() throws IOException {
        assumeData();
        Map<String, Object> ref = Json.parseObject(Files.readString(REFERENCE));
        List<?> generated = (List<?>) ref.get("generated_token_ids");
        List<?> logitsPos = (List<?>) ref.get("logits_pos");
        float[] ids = {1, ((Long) generated.get(0)).floatValue(), ((Long) generated.get(1)).floatValue(),
                ((Long) generated.get(2)).floatValue()};
        LlamaConfig expected = new LlamaConfig(64, 172, 5, 8, 4, 8, 512, 512, 10000.0, null, 1e-5f, true, false, false);

        List<List<float[]>> weights = new ArrayList<>();
        for (Path[] source : new Path[][]{{LEGACY, null}, {V1, null}, {HF, TOK512}}) {
            try (LoadedModel m = load(source[0], source[1])) {
                assertThat(m.model().config()).as(m.description()).isEqualTo(expected);
                assertThat(m.tokenizer()).as(m.description()).isInstanceOf(Llama2cTokenizer.class);
                assertThat(m.tokenizerFiles()).containsExactly(TOK512);
                assertThat(m.description()).contains("260,032 parameters");
                Tensor tokens = session.i32("tokens", Category.WORKSPACE, 1, 4).copyFrom(ids);
                Tensor logits = session.f32("logits", Category.WORKSPACE, 4, 512);
                m.model().logits(tokens, logits);
                double worst = 0;
                for (int p = 0; p < 4; p++) {
                    List<?> want = (List<?>) logitsPos.get(p);
                    for (int v = 0; v < 512; v++) {
                        worst = Math.max(worst, Math.abs(logits.get(p, v) - ((Number) want.get(v)).doubleValue()));
                    }
                }
                System.out.printf("%s: max |logit - reference| = %.2e%n", source[0].getFileName(), worst);
                assertThat(worst).as("%s: largest logit error", m.description()).isLessThanOrEqualTo(1e-4);
                weights.add(m.model().parameters().stream().map(p -> p.value().toFloatArray()).toList());
                tokens.close();
                logits.close();
            }
        }
        for (int i = 1; i < weights.size(); i++) {
            assertThat(weights.get(i)).hasSameSizeAs(weights.get(0));
            for (int p = 0; p < weights.get(0).size(); p++) {
                assertThat(weights.get(i).get(p)).as("load %d, parameter %d", i, p).isEqualTo(weights.get(0).get(p));
            }
        }
    }

    @Test
    void mappedSafetensorsCostNoCopyAndAreReleasedOnClose() throws IOException {
        assumeData();
        long before = pool.ledger().current(Category.FROZEN_WEIGHTS);
        try (LoadedModel m = load(HF, null)) {
            assertThat(m.tokenizer()).isNull();
            assertThat(m.description()).contains("no tokenizer found");
            long params = m.model().parameters().stream().mapToLong(p -> p.value().size()).sum();
            assertThat(pool.reservedBytes()).as("pool memory: the f32 weights are views of the mapped file").isZero();
            assertThat(pool.ledger().current(Category.FROZEN_WEIGHTS) - before).isEqualTo(4 * params);
            assertThat(m.model().parameters()).allMatch(p -> !p.trainable());
        }
        assertThat(pool.ledger().current(Category.FROZEN_WEIGHTS)).isEqualTo(before);
    }

    @Test
    void aTrainableLoadCopiesTheWeightsAndLeavesTheFileAlone() throws IOException {
        assumeData();
        try (LoadedModel m = ModelLoader.load(session, HF, TOK512, true, WeightTransform.IDENTITY, false)) {
            assertThat(m.model().parameters()).allMatch(Parameter::trainable);
            Parameter p = m.model().parameters().getFirst();
            float before = p.value().get(0, 0);
            p.value().set(before + 1, 0, 0);
            assertThat(p.value().get(0, 0)).isEqualTo(before + 1);
        }
        try (LoadedModel m = load(HF, TOK512)) {
            assertThat(m.model().parameters().getFirst().value().get(0, 0)).as("the file is unchanged")
                    .isEqualTo(firstWeight());
        }
    }

    @Test
    void aSafetensorsFileStandsForItsFolderAndAForeignTokenizerIsRefused() throws IOException {
        assumeData();
        try (LoadedModel m = load(HF.resolve("model.safetensors"), TOK512)) {
            assertThat(m.description()).startsWith(HF + ": Hugging Face model");
        }
        Path llama2 = MODELS.resolve("../tokenizers/llama2/tokenizer.json").normalize();
        assumeTrue(Files.exists(llama2), llama2 + " is absent");
        assertThatThrownBy(() -> load(HF, llama2)).isInstanceOf(SafeTensors.FormatException.class)
                .hasMessage(llama2 + " has 32000 tokens but the model's vocabulary has only 512; it is not this "
                        + "model's tokenizer");
        assertThat(pool.ledger().currentTotal()).isZero();
    }

    private static float firstWeight() throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(HF.resolve("model.safetensors"))) {
            try (MemoryPool p = new MemoryPool(new MemoryLedger());
                 Tensor t = r.tensor("model.embed_tokens.weight", p, Category.WORKSPACE)) {
                return t.get(0, 0);
            }
        }
    }
}
