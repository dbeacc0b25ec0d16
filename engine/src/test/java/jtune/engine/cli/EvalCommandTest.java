package jtune.engine.cli;

import static jtune.engine.cli.GenerateCommandTest.STORIES;
import static jtune.engine.cli.GenerateCommandTest.assertUsageError;
import static jtune.engine.cli.GenerateCommandTest.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jtune.engine.io.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code jtune eval}: wrong usage, and the JSON report of stories260K on a slice of TinyStories validation text. */
class EvalCommandTest {
    private static final Path VALIDATION = STORIES.resolveSibling("corpora").resolve(
            "tinystories/tinystories_validation_head.txt");

    @TempDir
    Path dir;

    @Test
    void wrongUsageGetsOneSentenceAndExitCodeTwo() throws IOException {
        String model = Files.createDirectory(dir.resolve("model")).toString();
        String data = Files.writeString(dir.resolve("data.txt"), "Once upon a time.").toString();
        assertUsageError(run("eval"), "eval needs --model PATH");
        assertUsageError(run("eval", "--data", data), "eval needs --model PATH");
        assertUsageError(run("eval", "--model", dir.resolve("absent").toString(), "--data", data), "there is no file or folder");
        assertUsageError(run("eval", "--model", model), "eval needs --data FILE");
        assertUsageError(run("eval", "--model", model, "--data", dir.resolve("absent.txt").toString()),
                "--data: there is no file");
        assertUsageError(run("eval", "--model", model, "--data", data, "--seq", "1"), "option --seq must be at least 2");
        assertUsageError(run("eval", "--model", model, "--data", data, "--seq", "long"), "option --seq must be a whole number");
        assertUsageError(run("eval", "--model", model, "--data", data, "--stride", "4"), "unknown option --stride");
        assertUsageError(run("eval", "--model", model, "--data", data, "--json=yes"), "unknown option --json");
    }

    /**
     * {@code --scales} and {@code --adapter} are the methods module's (a {@link LoadOptionProvider}); without it, as in
     * this module's tests, each fails in one sentence saying so, after the usage checks.
     */
    @Test
    void scalesAndAdapterNeedTheMethodsModule() throws IOException {
        String model = Files.createDirectory(dir.resolve("model")).toString();
        String data = Files.writeString(dir.resolve("data.txt"), "Once upon a time.").toString();
        String set = Files.createDirectory(dir.resolve("set")).toString();
        for (String[] c : new String[][]{{"eval", "--data", data, "--scales", set}, {"generate", "--adapter", set}}) {
            List<String> argv = new ArrayList<>(List.of(c[0], "--model", model));
            argv.addAll(List.of(c).subList(1, c.length));
            GenerateCommandTest.Run r = run(argv.toArray(String[]::new));
            assertThat(r.status()).as(r.err()).isEqualTo(1);
            assertThat(r.err().lines().filter(l -> l.startsWith("jtune: ")).toList()).singleElement().asString()
                    .isEqualTo("jtune: " + c[c.length - 2] + " needs the jtune.methods module (PEQA and LoRA), "
                            + "which is not in this build");
        }
        assertUsageError(run("eval", "--model", model, "--data", data, "--scales", set, "--adapter", set),
                "give --scales or --adapter, not both");
        assertUsageError(run("generate", "--model", model, "--adapter", dir.resolve("absent").toString()),
                "--adapter: there is no folder");
    }

    /**
     * The JSON report of stories260K on the first 4 KB of TinyStories validation text in windows of 128 (small, since
     * the scalar backend runs it): the counts follow from the windows, the perplexity is exp of the NLL, and it lies in
     * the band that Stories260KGenerationTest (src-test) justifies from the model's published validation loss: from
     * exp(1.2968) = 3.66 to 1.25 times that.
     */
    @Test
    void stories260KPerplexityOnTinyStoriesValidation() throws IOException {
        assumeTrue(Files.isRegularFile(VALIDATION), "TinyStories validation text is absent at " + VALIDATION + "; skipping");
        String text = Files.readString(VALIDATION);
        Path slice = Files.writeString(dir.resolve("slice.txt"), text.substring(0, 4_000));
        GenerateCommandTest.Run r = run("eval", "--model", STORIES.resolve("stories260K/stories260K.bin").toString(), "--data",
                slice.toString(), "--seq", "128", "--json");
        assertThat(r.status()).as(r.err()).isZero();
        Map<String, Object> m = Json.parseObject(r.text().strip());
        long windows = ((Number) m.get("windows")).longValue();
        assertThat(((Number) m.get("text_tokens")).longValue() / 128).isEqualTo(windows);
        assertThat(((Number) m.get("predictions")).longValue()).isEqualTo(windows * 127);
        assertThat(((Number) m.get("tokens")).longValue()).isEqualTo(windows * 128);
        double ppl = ((Number) m.get("perplexity")).doubleValue();
        assertThat(Math.log(ppl)).isCloseTo(((Number) m.get("nll")).doubleValue(), within(1e-9));
        assertThat(ppl).isBetween(Math.exp(1.2968), 1.25 * Math.exp(1.2968));
    }
}
