package jtune.methods.cli;

import static jtune.methods.cli.Run.jtune;
import static jtune.methods.cli.Run.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jtune.engine.io.SafeTensorsReader;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code jtune quantize} through the command line, on stories260K: the folder it writes is one that {@code jtune eval}
 * and {@code jtune generate} run (and {@code jtune export} refuses to write as f32), GPTQ calibrates on a text file
 * and says when that is short, and mistakes in the options are usage errors (exit 2) named before any model is
 * loaded.
 */
class QuantizeCommandTest {

    @TempDir
    Path tmp;
    private Path text;

    @BeforeEach
    void needsData() throws IOException {
        Run.assumeStories();
        text = head(3000, "text.txt");
    }

    /** The first {@code bytes} bytes of the TinyStories text, as file {@code name}. */
    private Path head(int bytes, String name) throws IOException {
        return Run.textHead(tmp.resolve(name), bytes);
    }

    private static double perplexity(Run r) {
        Matcher m = Pattern.compile("perplexity  ([0-9.]+)").matcher(r.out());
        assertThat(m.find()).as(r.out() + r.err()).isTrue();
        return Double.parseDouble(m.group(1));
    }

    @Test
    void quantizedFolderEvaluatesAndGenerates() {
        Path dir = tmp.resolve("rtn4");
        Run q = jtune("quantize", "--model", STORIES.toString(), "--method", "rtn", "--bits", "4", "--group", "32",
                "--out", dir.toString());
        assertThat(q.status()).as(q.err()).isZero();
        assertThat(q.out()).contains("quantized   35 linear layers: int4 g32 asym", "by rtn", "wrote       ",
                "model.safetensors", "tokenizer.bin");
        assertThat(dir.resolve("config.json")).content().contains("\"quantization_config\"", "\"quant_method\":\"jtune\"");

        double dense = perplexity(jtune("eval", "--model", STORIES.toString(), "--data", text.toString(), "--seq", "128"));
        Run eval = jtune("eval", "--model", dir.toString(), "--data", text.toString(), "--seq", "128");
        assertThat(eval.status()).as(eval.err()).isZero();
        assertThat(eval.err()).contains("quantized int4 g32");
        assertThat(perplexity(eval)).isBetween(dense * 0.95, dense * 1.5);

        Run gen = jtune("generate", "--model", dir.toString(), "--prompt", "Once upon a time", "--steps", "12",
                "--temperature", "0");
        assertThat(gen.status()).as(gen.err()).isZero();
        assertThat(gen.out()).startsWith("Once upon a time").hasSizeGreaterThan("Once upon a time".length() + 5);

        Run export = jtune("export", "--model", dir.toString(), "--out", tmp.resolve("f32").toString());
        assertThat(export.status()).isEqualTo(1);
        assertThat(export.err()).contains(".qcodes' of the model is", "cannot be exported");
        assertThat(tmp.resolve("f32")).doesNotExist();
    }

    @Test
    void gptqCalibratesOnTheTextAndSaysWhenItIsShort() throws IOException {
        Path dir = tmp.resolve("gptq");
        Path calib = head(500, "calib.txt");
        Run q = jtune("quantize", "--model", STORIES.toString(), "--method", "gptq", "--bits", "3", "--group", "0",
                "--lorc-rank", "4", "--calib", calib.toString(), "--calib-seq", "64", "--out", dir.toString());
        assertThat(q.status()).as(q.err()).isZero();
        assertThat(q.err()).contains("fewer than 128 windows of 64").contains("calibrating on");
        assertThat(q.out()).contains("int3 per-channel asym", "by gptq, LoRC rank 4 (8-bit factors)", "calibration ");
        assertThat(dir.resolve("config.json")).content().contains("\"method\":\"gptq\"", "\"lorc_rank\":4",
                "\"lorc_bits\":8", "\"calibration\":{", "\"tokens\":64");
    }

    @Test
    void lorcFactorsAreStoredInEightBitsUnlessAskedForF32() throws IOException {
        long[] size = new long[2];
        for (String bits : new String[]{"8", "32"}) {
            Path dir = tmp.resolve("lorc" + bits);
            Run q = jtune("quantize", "--model", STORIES.toString(), "--method", "rtn", "--lorc-rank", "4",
                    "--lorc-bits", bits, "--out", dir.toString());
            assertThat(q.status()).as(q.err()).isZero();
            assertThat(q.out()).contains("LoRC rank 4 (" + bits + "-bit factors)");
            assertThat(dir.resolve("config.json")).content().contains("\"lorc_bits\":" + bits);
            try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve("model.safetensors"))) {
                size[bits.length() - 1] = r.entries().stream().filter(e -> e.name().contains(".lorc_"))
                        .mapToLong(e -> e.end() - e.begin()).sum();
            }
            Run eval = jtune("eval", "--model", dir.toString(), "--data", text.toString(), "--seq", "128");
            assertThat(eval.status()).as(eval.err()).isZero();
            assertThat(eval.err()).contains("LoRC rank 4 (" + bits + "-bit factors)");
        }
        // Factors of the 35 layers (64 or 172 wide): f32 4 · 4 · (out + in); 8-bit Ûᵀ and V̂, 4 rows each of a byte per
        // code in runs of 8 and an f32 scale.
        long f32 = 0, int8 = 0;
        for (int[] shape : new int[][]{{64, 64}, {32, 64}, {32, 64}, {64, 64}, {172, 64}, {172, 64}, {64, 172}}) {
            int out = shape[0], in = shape[1];
            f32 += 16L * (out + in);
            int8 += 4L * ((out + 7) / 8 * 8 + 4) + 4L * ((in + 7) / 8 * 8 + 4);
        }
        assertThat(size).as("bytes of the factors, 8-bit and f32").containsExactly(5 * int8, 5 * f32);
    }

    @Test
    void mistakesAreUsageErrors() throws IOException {
        String model = STORIES.toString(), out = tmp.resolve("o").toString();
        Path full = Files.createDirectory(tmp.resolve("full"));
        Files.writeString(full.resolve("x"), "x");
        String[][] cases = {
            {"needs --method", "quantize", "--model", model, "--out", out},
            {"--method must be rtn, gptq or nf4, got 'awq'", "quantize", "--model", model, "--method", "awq", "--out", out},
            {"2, 3, 4 or 8 bits, not 5", "quantize", "--model", model, "--method", "rtn", "--bits", "5", "--out", out},
            {"groups must be 32, 64, 128 or 256", "quantize", "--model", model, "--method", "rtn", "--group", "100",
                "--out", out},
            {"nf4 is a 4-bit format", "quantize", "--model", model, "--method", "nf4", "--bits", "3", "--out", out},
            {"needs --calib", "quantize", "--model", model, "--method", "gptq", "--out", out},
            {"--calib applies to gptq only", "quantize", "--model", model, "--method", "rtn", "--calib", model,
                "--out", out},
            {"--double-quant applies to nf4 only", "quantize", "--model", model, "--method", "rtn", "--double-quant",
                "--out", out},
            {"needs --out", "quantize", "--model", model, "--method", "rtn"},
            {"is not an empty folder", "quantize", "--model", model, "--method", "rtn", "--out", full.toString()},
            {"there is no file or folder", "quantize", "--model", tmp.resolve("none").toString(), "--method", "rtn",
                "--out", out},
            {"--lorc-bits must be 8 (int8 factors, a scale per singular direction) or 32 (f32), not 16", "quantize",
                "--model", model, "--method", "rtn", "--lorc-rank", "2", "--lorc-bits", "16", "--out", out},
            {"--lorc-bits sets how LoRC's factors are stored; it needs --lorc-rank R", "quantize", "--model", model,
                "--method", "rtn", "--lorc-bits", "32", "--out", out},
            {"unknown option --bit", "quantize", "--model", model, "--method", "rtn", "--bit", "4", "--out", out},
        };
        for (String[] c : cases) {
            Run r = jtune(Arrays.copyOfRange(c, 1, c.length));
            assertThat(r.status()).as(String.join(" ", c)).isEqualTo(2);
            assertThat(r.err()).as(String.join(" ", c)).contains(c[0]);
        }
        assertThat(tmp.resolve("o")).doesNotExist();
        assertThat(jtune("--help").out()).contains("  quantize  ", "--lorc-rank R", "--lorc-bits 8|32",
                "--calib FILE");
    }
}
