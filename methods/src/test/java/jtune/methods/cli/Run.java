package jtune.methods.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import jtune.engine.cli.Main;
import org.junit.jupiter.api.Assumptions;

/** What one in-process {@code jtune} command printed, for the command tests of this package. */
record Run(int status, String out, String err) {
    static final Path DATA = Path.of("../../shared/data");
    static final Path STORIES = DATA.resolve("models/stories260K/stories260K.bin");
    static final Path TEXT = DATA.resolve("corpora/tinystories/tinystories_validation_head.txt");

    /** Skips the test unless stories260K and the TinyStories text are in ../../shared/data. */
    static void assumeStories() {
        Assumptions.assumeTrue(Files.isRegularFile(STORIES) && Files.isRegularFile(TEXT),
                "stories260K.bin or the TinyStories text is not in ../../shared/data; skipped");
    }

    /** The first {@code bytes} bytes of the TinyStories text, written to {@code file}. */
    static Path textHead(Path file, int bytes) throws IOException {
        try (InputStream in = Files.newInputStream(TEXT)) {
            return Files.write(file, in.readNBytes(bytes));
        }
    }

    /** Runs {@code jtune --backend scalar args...} in this process. */
    static Run jtune(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        List<String> argv = new ArrayList<>(List.of("--backend", "scalar"));
        argv.addAll(List.of(args));
        int status = Main.run(argv, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** {@code jtune quantize --model model --out dir options...}, which must succeed; returns dir. */
    static Path quantize(Path dir, Path model, String... options) {
        List<String> argv = new ArrayList<>(List.of("quantize", "--model", model.toString(), "--out", dir.toString()));
        argv.addAll(List.of(options));
        Run r = jtune(argv.toArray(String[]::new));
        assertThat(r.status()).as(r.err()).isZero();
        return dir;
    }
}
