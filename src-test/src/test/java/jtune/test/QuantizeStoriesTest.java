package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.methods.quant.ModelQuantizer;
import jtune.methods.quant.ModelQuantizer.LayerResult;
import jtune.methods.quant.ModelQuantizer.Method;
import org.junit.jupiter.api.Test;

/**
 * Post-training quantization of the real stories260K (SIMD backend): GPTQ, calibrated on TinyStories validation
 * text, has a lower summed output-error proxy {@code tr(E H Eᵀ)} than RTN at 4, 3 and 2 bits, and LoRC lowers the
 * weight error; prints the table of those errors and the perplexity on held-out TinyStories text.
 */
class QuantizeStoriesTest {
    private static final Path DATA = Path.of("..", "..", "shared", "data");
    private static final Path MODEL = DATA.resolve("models/stories260K/stories260K.bin");
    private static final Path TEXT = DATA.resolve("corpora/tinystories/tinystories_validation_head.txt");
    private static final int SEQ = 64, CALIBRATION = 8, HELD_OUT = 16;

    @Test
    void gptqBeatsRtnOnStories260K() throws IOException {
        assumeTrue(Files.isRegularFile(MODEL) && Files.isRegularFile(TEXT),
                "stories260K or the TinyStories text is not in ../../shared/data; skipped");
        try (SimdBackend b = new SimdBackend(2); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(b, pool);
            try (LoadedModel loaded = ModelLoader.load(s, MODEL, null, false, WeightTransform.IDENTITY, false)) {
                String text = Files.readString(TEXT, StandardCharsets.UTF_8).substring(0, 40_000);
                int[] tokens = loaded.tokenizer().encode(text, true);
                assertThat(tokens.length).isGreaterThan((CALIBRATION + HELD_OUT) * SEQ);
                List<int[]> calibration = new ArrayList<>();
                for (int i = 0; i < CALIBRATION; i++) {
                    calibration.add(Arrays.copyOfRange(tokens, i * SEQ, (i + 1) * SEQ));
                }
                int[] heldOut = Arrays.copyOfRange(tokens, CALIBRATION * SEQ, (CALIBRATION + HELD_OUT) * SEQ);
                LlamaModel model = loaded.model();
                StringBuilder table = new StringBuilder(String.format(Locale.ROOT,
                        "stories260K, per channel, calibration %d x %d tokens, held-out %d x %d tokens:%n"
                                + "  %-16s %12s %12s %10s%n  %-16s %12s %12s %10.4f%n", CALIBRATION, SEQ, HELD_OUT, SEQ,
                        "method", "Σ tr(EHEᵀ)", "Σ‖E‖²/Σ‖W‖²", "ppl", "f32", "-", "-", ppl(s, model, heldOut)));
                for (int bits : new int[]{4, 3, 2}) {
                    double rtn = row(s, model, ModelQuantizer.Options.of(Method.RTN, bits, 0, 0), calibration, heldOut,
                            table)[0];
                    double[] gptq = row(s, model, ModelQuantizer.Options.of(Method.GPTQ, bits, 0, 0), calibration,
                            heldOut, table);
                    assertThat(gptq[0]).as("%d bits: GPTQ vs RTN output error", bits).isLessThan(rtn);
                    if (bits == 3) {
                        double[] lorc = row(s, model, ModelQuantizer.Options.of(Method.GPTQ, bits, 0, 8), calibration,
                                heldOut, table);
                        assertThat(lorc[1]).as("LoRC lowers the weight error").isLessThan(gptq[1]);
                        ModelQuantizer.Options f32 = ModelQuantizer.Options.of(Method.GPTQ, bits, 0, 8);
                        f32 = new ModelQuantizer.Options(f32.method(), f32.format(), false, f32.percdamp(), 8, 32, 0);
                        double[] lorc32 = row(s, model, f32, calibration, heldOut, table);
                        // Reference §4 (e) 3: 8-bit factors change the residual ‖W − Ŵ − ÛV̂‖ by less than 1 %.
                        assertThat(Math.sqrt(lorc[1])).as("8-bit vs f32 LoRC factors")
                                .isCloseTo(Math.sqrt(lorc32[1]), within(0.01 * Math.sqrt(lorc32[1])));
                    }
                }
                System.out.print(table);
            }
        }
    }

    /** Quantizes, scores, adds a table row; returns {Σ output error, relative weight error}. */
    private static double[] row(Session s, LlamaModel model, ModelQuantizer.Options o, List<int[]> calibration,
                                int[] heldOut, StringBuilder table) {
        ModelQuantizer.Result r = ModelQuantizer.quantize(s, model, o, calibration);
        try (LlamaModel q = r.model()) {
            double out = r.layers().stream().mapToDouble(LayerResult::outputError).sum();
            double err = r.layers().stream().mapToDouble(LayerResult::weightError).sum()
                    / r.layers().stream().mapToDouble(LayerResult::weightNorm).sum();
            String name = o.method() + (o.method() == Method.NF4 ? "" : " " + o.format().bits() + "b")
                    + (o.lorcRank() > 0 ? " +LoRC" + o.lorcRank() + (o.lorcBits() == 8 ? " i8" : "") : "");
            table.append(String.format(Locale.ROOT, "  %-16s %12.5f %12.5f %10.4f%n", name, out, err, ppl(s, q, heldOut)));
            return new double[]{out, err};
        }
    }

    private static double ppl(Session s, LlamaModel m, int[] tokens) {
        return Perplexity.evaluate(s, m, tokens, SEQ, 8, (d, t) -> { }).perplexity();
    }
}
