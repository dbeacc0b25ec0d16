package jtune.engine.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jtune.engine.io.Json;

/**
 * The reference of {@code /fixtures/tokenizer_reference.json}, written by
 * {@code src-test/src/test/node/make_tokenizer_fixture.mjs} with Hugging Face's own JavaScript tokenizers
 * (npm {@code @huggingface/transformers}): per tokenizer ("llama2", "llama3", "qwen3", "gpt2", and "tok512", the
 * llama2.c tokenizer of stories260K converted to a Hugging Face BPE) and text, the ids without and with the added
 * special tokens and the decode of the former. Also locates the real data of ../shared/data.
 */
final class TokenizerFixture {
    /** One text's reference: ids (no special tokens added), idsSpecial (added), decoded (decode of ids). */
    record Case(String text, int[] ids, int[] idsSpecial, String decoded) {}

    private static final Path DATA = Path.of("..", "..", "shared", "data");

    private TokenizerFixture() {}

    /** The cases of one tokenizer of the fixture, in text order. */
    @SuppressWarnings("unchecked")
    static List<Case> cases(String tokenizer) {
        Map<String, Object> root = Json.parseObject(read());
        Map<String, Object> entry = "tok512".equals(tokenizer)
                ? (Map<String, Object>) root.get("tok512")
                : (Map<String, Object>) ((Map<String, Object>) root.get("tokenizers")).get(tokenizer);
        List<Object> texts = (List<Object>) ("tok512".equals(tokenizer) ? entry : root).get("texts");
        List<Object> cases = (List<Object>) entry.get("cases");
        List<Case> out = new ArrayList<>();
        for (int i = 0; i < cases.size(); i++) {
            Map<String, Object> c = (Map<String, Object>) cases.get(i);
            out.add(new Case((String) texts.get(i), ints(c.get("ids")), ints(c.get("idsSpecial")),
                    (String) c.get("decoded")));
        }
        return out;
    }

    /** The file {@code relative} under ../shared/data; skips the calling test with a message where it is absent. */
    static Path data(String relative) {
        Path file = DATA.resolve(relative).toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(file), file + " is absent; skipping the real-tokenizer test");
        return file;
    }

    private static String read() {
        try (InputStream in = TokenizerFixture.class.getResourceAsStream("/fixtures/tokenizer_reference.json")) {
            if (in == null) {
                throw new IllegalStateException("/fixtures/tokenizer_reference.json is not on the test classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static int[] ints(Object list) {
        return ((List<?>) list).stream().mapToInt(v -> ((Long) v).intValue()).toArray();
    }
}
