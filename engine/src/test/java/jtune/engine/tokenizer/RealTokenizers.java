package jtune.engine.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The real tokenizers of ../shared/data/tokenizers ("llama2", "llama3", "qwen3", "gpt2"), each loaded once per test
 * JVM and shared by the test classes; a test asking for one whose files are absent is skipped with a message.
 */
final class RealTokenizers {
    static final List<String> NAMES = List.of("llama2", "llama3", "qwen3", "gpt2");
    private static final Path DATA = Path.of("..", "..", "shared", "data");
    private static final Map<String, HfTokenizer> LOADED = new ConcurrentHashMap<>();
    private static final Map<String, Long> LOAD_NANOS = new ConcurrentHashMap<>();

    private RealTokenizers() {
    }

    /** The file {@code relative} under ../shared/data; skips the calling test where it is absent. */
    static Path data(String relative) {
        Path file = DATA.resolve(relative).toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(file), file + " is absent; skipping this real-data test");
        return file;
    }

    static HfTokenizer get(String name) {
        Path first = data("tokenizers/" + name + (name.equals("gpt2") ? "/encoder.json" : "/tokenizer.json"));
        Path second = name.equals("gpt2") ? data("tokenizers/gpt2/vocab.bpe") : null;
        return LOADED.computeIfAbsent(name, n -> {
            long t0 = System.nanoTime();
            try {
                HfTokenizer t = second != null ? HfTokenizer.gpt2(first, second) : HfTokenizer.load(first);
                LOAD_NANOS.put(n, System.nanoTime() - t0);
                return t;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /** Milliseconds the first {@link #get} of {@code name} took to load it. */
    static double loadMillis(String name) {
        get(name);
        return LOAD_NANOS.get(name) / 1e6;
    }
}
