package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code jtune generate}: wrong usage, and llama2.c's known greedy output of stories260K (from ../shared/data, skipped
 * where absent): {@code run stories260K.bin -z tok512.bin -t 0.0 -n 200} prints exactly expected_greedy_n200.txt plus
 * a newline, from the llama2.c file and from its Hugging Face safetensors copy alike.
 */
class GenerateCommandTest {
    static final Path STORIES = Path.of("..", "..", "shared", "data", "models").toAbsolutePath().normalize();

    record Run(int status, byte[] out, String err) {
        String text() {
            return new String(out, StandardCharsets.UTF_8);
        }
    }

    @TempDir
    Path dir;

    static Run run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(List.of(args), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toByteArray(), err.toString(StandardCharsets.UTF_8));
    }

    /** Exit 2, one "jtune:" line naming {@code what}, no stack trace, nothing on stdout. */
    static void assertUsageError(Run r, String what) {
        assertThat(r.status()).as(r.err()).isEqualTo(2);
        assertThat(r.err().lines().filter(l -> l.startsWith("jtune: ")).toList()).singleElement().asString()
                .contains(what);
        assertThat(r.err()).doesNotContain("Exception", "\tat ");
        assertThat(r.out()).isEmpty();
    }

    @Test
    void wrongUsageGetsOneSentenceAndExitCodeTwo() throws IOException {
        String model = Files.createDirectory(dir.resolve("model")).toString();
        assertUsageError(run("generate"), "generate needs --model PATH");
        assertUsageError(run("generate", "--model", dir.resolve("absent").toString()), "there is no file or folder");
        assertUsageError(run("generate", "--model", model, "--tokenizer", dir.resolve("absent.bin").toString()),
                "--tokenizer: there is no file");
        assertUsageError(run("generate", "--model", model, "--temperature", "-1"), "option --temperature must be");
        assertUsageError(run("generate", "--model", model, "--temperature", "hot"), "option --temperature must be a number");
        assertUsageError(run("generate", "--model", model, "--top-p", "0"), "option --top-p must be");
        assertUsageError(run("generate", "--model", model, "--top-p", "1.5"), "option --top-p must be");
        assertUsageError(run("generate", "--model", model, "--top-k", "-1"), "option --top-k must be at least 0");
        assertUsageError(run("generate", "--model", model, "--steps", "0"), "option --steps must be at least 1");
        assertUsageError(run("generate", "--model", model, "--seed", "x"), "option --seed must be a whole number");
        assertUsageError(run("generate", "--model", model, "--top_p", "0.5"), "unknown option --top_p");
        assertUsageError(run("generate", "now", "--model", model), "unexpected argument 'now'");
    }

    @Test
    void stories260KGreedyIsLlama2csOutputByteForByte() throws IOException {
        Path expected = STORIES.resolve("stories260K/expected_greedy_n200.txt");
        assumeTrue(Files.isRegularFile(expected), "stories260K is absent at " + expected + "; skipping");
        byte[] want = (Files.readString(expected) + "\n").getBytes(StandardCharsets.UTF_8);
        String tok = STORIES.resolve("stories260K/tok512.bin").toString();
        for (String model : new String[]{STORIES.resolve("stories260K/stories260K.bin").toString(),
                STORIES.resolve("stories260K-hf-derived").toString()}) {
            Run r = run("generate", "--model", model, "--tokenizer", tok, "--temperature", "0", "--steps", "200");
            assertThat(r.status()).as(r.err()).isZero();
            assertThat(r.text()).as(model).isEqualTo(new String(want, StandardCharsets.UTF_8));
            assertThat(r.out()).isEqualTo(want);
            assertThat(r.err()).contains("decode 200 tokens", "stopped: 200 steps");
        }
    }
}
