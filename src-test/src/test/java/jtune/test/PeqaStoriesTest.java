package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import jtune.cpu.SimdBackend;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.Perplexity;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.methods.peft.Finetune;
import jtune.methods.peft.LoraConfig;
import jtune.methods.quant.ModelQuantizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real-data check of PEQA: a 4-bit (g32) PEQA fine-tune of stories260K on TinyStories text lowers its
 * perplexity on held-out TinyStories text below the RTN-quantized model's (skipped where ../shared/data is absent).
 *
 * <p>Text: the first 200,000 characters (whole lines) of the TinyStories validation head, in normal case as the
 * model was trained (the lower-cased train head would also teach the model lower case, so a gain there would mix
 * adaptation to casing with recovery from quantization). Its tokens are cut once: the first 90% train, the last
 * 10% are held out; the held-out tokens are never trained on. The RTN baseline is measured independently here: the f32 model quantized by
 * {@link ModelQuantizer} (RTN, 4 bits, groups of 32), which must be the PEQA model before training; then the trained
 * scale set, saved apart, is swapped into a freshly quantized model, which must score what the trained one did.
 */
class PeqaStoriesTest {
    private static final Path DATA = Path.of("..", "..", "shared", "data").toAbsolutePath().normalize();
    private static final Path MODEL = DATA.resolve("models/stories260K/stories260K.bin");
    private static final Path TEXT = DATA.resolve("corpora/tinystories/tinystories_validation_head.txt");
    private static final int HEAD_CHARS = 200_000, SEQ = 128, BITS = 4, GROUP = 32;

    @TempDir
    Path dir;

    @Test
    void peqaBeatsRtnOnHeldOutStories() throws IOException {
        assumeTrue(Files.isRegularFile(MODEL) && Files.isRegularFile(TEXT), "stories260K or the TinyStories text is "
                + "absent under " + DATA + "; skipping the PEQA real-data run");
        String all = Files.readString(TEXT, StandardCharsets.UTF_8);
        String head = all.substring(0, all.lastIndexOf('\n', HEAD_CHARS) + 1);
        Path text = Files.writeString(dir.resolve("head.txt"), head);
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        LoraConfig targets = new LoraConfig(1, 1, 0, false, LoraConfig.MODULES);
        Finetune.Options o = new Finetune.Options(MODEL, null, text, Finetune.Method.PEQA, targets, BITS, GROUP, 60,
                3e-4, 2, 1.0, 0, SEQ, 8, 0.1, 0, false, dir.resolve("scales"), null, 0, false, 0, 0);
        try (SimdBackend b = new SimdBackend(2)) {
            long t0 = System.nanoTime();
            Finetune.Result r = Finetune.run(b, o, quiet);
            double seconds = (System.nanoTime() - t0) * 1e-9;
            double[] baseline = baseline(b, head);
            Finetune.Result swapped = Finetune.run(b, new Finetune.Options(MODEL, null, text, Finetune.Method.PEQA,
                    targets, BITS, GROUP, 0, 3e-4, 0, 1.0, 0, SEQ, 8, 0.1, 0, false, null, dir.resolve("scales"), 0, false, 0, 0),
                    quiet);
            System.out.printf(Locale.ROOT, "stories260K on %d held-out TinyStories tokens (%d windows of %d): "
                            + "f32 %.4f, RTN int%d g%d %.4f, PEQA after %d steps %.4f (loss %.3f -> %.3f, %.1f s, "
                            + "%,d trainable scales); swapped-in scale set %.4f%n", r.heldOutTokens(), r.after().windows(),
                    SEQ, baseline[0], BITS, GROUP, baseline[1], r.losses().length, r.after().perplexity(),
                    r.losses()[0], r.losses()[r.losses().length - 1], seconds, r.trainable(), swapped.before().perplexity());
            System.out.println("peak memory by category: " + r.peak());
            assertThat(r.before().perplexity()).as("PEQA before training is the RTN model")
                    .isCloseTo(baseline[1], within(1e-6 * baseline[1]));
            assertThat(r.after().perplexity()).as("PEQA after training vs RTN").isLessThan(0.97 * baseline[1]);
            assertThat(swapped.before().perplexity()).as("the saved scales swapped into a new RTN model")
                    .isEqualTo(r.after().perplexity());
            assertThat(r.peak().get(Category.TRAINABLE_PARAMETERS)).isEqualTo(4 * r.trainable());
        }
    }

    /** Held-out perplexity of the f32 model and of its RTN quantization, on Finetune's split of the same text. */
    private static double[] baseline(SimdBackend b, String head) throws IOException {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(b, pool);
            try (LoadedModel m = ModelLoader.load(s, MODEL, null, false, WeightTransform.IDENTITY, false)) {
                int[] tokens = m.tokenizer().encode(head, true);
                int[] heldOut = Arrays.copyOfRange(tokens, tokens.length - (int) Math.floor(tokens.length * 0.1),
                        tokens.length);
                double f32 = Perplexity.evaluate(s, m.model(), heldOut, SEQ, 16, (d, n) -> { }).perplexity();
                try (LlamaModel rtn = ModelQuantizer.quantize(s, m.model(), ModelQuantizer.Options.of(
                        ModelQuantizer.Method.RTN, BITS, GROUP, 0), List.of()).model()) {
                    return new double[]{f32, Perplexity.evaluate(s, rtn, heldOut, SEQ, 16, (d, n) -> { }).perplexity()};
                }
            }
        }
    }
}
