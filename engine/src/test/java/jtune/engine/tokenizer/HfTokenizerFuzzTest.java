package jtune.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;
import jtune.engine.io.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Fuzzing of the {@code tokenizer.json} reader and of encoding. Every broken file, whatever the fault (truncation,
 * bit flips, wrong types, missing fields, huge or negative ids, merges naming unknown tokens, bad regexes, deep
 * nesting, invalid UTF-8), must end in a {@link TokenizerFormatException} naming the file, never another exception;
 * a mutated file that still reads must encode and decode without an exception. Random Unicode text must encode
 * without an exception, and round-trip through the byte-level tokenizers. Seeds are fixed.
 */
class HfTokenizerFuzzTest {
    private static final String NAME = "fuzz.json";
    private static final List<String> PROBES = List.of("", "a b", "the  the<|end|> <s>x</s>", "é😀\u3000\n", "<unk>");

    @TempDir
    Path dir;

    private static List<String> seeds() {
        return List.of(HfTokenizerTest.llamaLikeJson(true), HfTokenizerTest.llamaLikeJson(false),
                HfTokenizerTest.byteLevelJson(HfTokenizerTest.SPLIT_THEN_BYTE_LEVEL),
                HfTokenizerTest.byteLevelJson("{\"type\": \"ByteLevel\", \"add_prefix_space\": true}"));
    }

    /** Parses {@code json}: either a tokenizer that encodes and decodes the probes, or a TokenizerFormatException. */
    private static void check(String json, String what) {
        HfTokenizer t;
        try {
            t = HfTokenizer.parse(json, NAME);
        } catch (TokenizerFormatException e) {
            assertThat(e.getMessage()).as(what).startsWith(NAME);
            return;
        } catch (Throwable e) {
            throw new AssertionError(what + " threw " + e + " instead of a TokenizerFormatException", e);
        }
        probe(t, what);
    }

    private static void probe(HfTokenizer t, String what) {
        try {
            for (String p : PROBES) {
                int[] ids = t.encode(p, true);
                t.decodeBytes(ids, false);
                t.decodeBytes(ids, true);
            }
            t.decodeBytes(new int[] {-1, 0, 1, 7, 258, 259, Integer.MAX_VALUE}, false);
        } catch (Throwable e) {
            throw new AssertionError(what + ": the tokenizer read, but encoding or decoding threw " + e, e);
        }
    }

    private static void expectFailure(String json, String what, String inMessage) {
        try {
            HfTokenizer.parse(json, NAME);
            fail(what + " was accepted");
        } catch (TokenizerFormatException e) {
            assertThat(e.getMessage()).as(what).startsWith(NAME).contains(inMessage);
        } catch (Throwable e) {
            throw new AssertionError(what + " threw " + e + " instead of a TokenizerFormatException", e);
        }
    }

    @Test
    void seedsRead() {
        for (String seed : seeds()) {
            check(seed, "seed");
        }
    }

    @Test
    void everyTruncationFails() {
        for (String seed : seeds()) {
            for (int n = 0; n < seed.length(); n += 1 + n / 400) {
                expectFailure(seed.substring(0, n), "truncation to " + n, "");
            }
        }
    }

    @Test
    void bitFlipsFailCleanlyOrStillWork() throws IOException {
        Random random = new Random(11);
        Path file = dir.resolve(NAME);
        for (String seed : seeds()) {
            byte[] original = seed.getBytes(StandardCharsets.UTF_8);
            for (int k = 0; k < 300; k++) {
                byte[] b = original.clone();
                int flips = 1 + random.nextInt(3);
                for (int f = 0; f < flips; f++) {
                    b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
                }
                Files.write(file, b);
                String what = "bit flips #" + k;
                try {
                    probe(HfTokenizer.load(file), what);
                } catch (TokenizerFormatException e) {
                    assertThat(e.getMessage()).as(what).contains(file.toString());
                } catch (Throwable e) {
                    throw new AssertionError(what + " threw " + e + " instead of a TokenizerFormatException", e);
                }
            }
        }
    }

    /** Values put in place of each node of the seed in turn. */
    private static final List<Object> HOSTILE = List.of(-1L, 1L << 40, (long) HfTokenizerReader.MAX_ID + 1, 1.5, "",
            "Ġ", true, new ArrayList<>(), new LinkedHashMap<>(), List.of("a", "b", "c"), Map.of("type", "Sequence"),
            Map.of("Regex", "("));

    @Test
    void wrongTypesMissingFieldsAndHostileValues() {
        Random random = new Random(5);
        for (String seed : List.of(seeds().get(0), seeds().get(2))) {
            Object root = Json.parse(seed);
            List<List<Object>> paths = new ArrayList<>();
            collect(root, new ArrayList<>(), paths);
            for (List<Object> path : paths) {
                // A 260-entry vocabulary would make most cases alike: try a few of its entries only.
                if (path.size() == 3 && "vocab".equals(path.get(1)) && random.nextInt(20) != 0) {
                    continue;
                }
                for (Object v : HOSTILE) {
                    check(Json.write(replaced(root, path, 0, old -> v)), "set " + path + " to " + Json.write(v));
                }
                check(Json.write(replaced(root, path, 0, old -> null)), "set " + path + " to null");
                if (path.get(path.size() - 1) instanceof String) {
                    check(Json.write(replaced(root, path, 0, old -> REMOVE)), "remove " + path);
                }
            }
        }
    }

    private static final Object REMOVE = new Object();

    private static void collect(Object node, List<Object> path, List<List<Object>> out) {
        if (!path.isEmpty()) {
            out.add(List.copyOf(path));
        }
        if (node instanceof Map<?, ?> m) {
            for (Object k : m.keySet()) {
                path.add(k);
                collect(m.get(k), path, out);
                path.removeLast();
            }
        } else if (node instanceof List<?> l) {
            for (int i = 0; i < l.size(); i++) {
                path.add(i);
                collect(l.get(i), path, out);
                path.removeLast();
            }
        }
    }

    /** A copy of {@code node} with the value at {@code path} (from index {@code at}) changed by {@code f}. */
    private static Object replaced(Object node, List<Object> path, int at, UnaryOperator<Object> f) {
        if (at == path.size()) {
            return f.apply(node);
        }
        Object key = path.get(at);
        if (node instanceof Map<?, ?> m) {
            Map<Object, Object> copy = new LinkedHashMap<>(m);
            Object v = replaced(m.get(key), path, at + 1, f);
            if (v == REMOVE) {
                copy.remove(key);
            } else {
                copy.put(key, v);
            }
            return copy;
        }
        List<Object> copy = new ArrayList<>((List<?>) node);
        copy.set((Integer) key, replaced(copy.get((Integer) key), path, at + 1, f));
        return copy;
    }

    @Test
    void mergesNamingUnknownTokens() {
        String seed = HfTokenizerTest.llamaLikeJson(true);
        expectFailure(seed.replace("\"▁ a\"", "\"▁ q\""), "unknown right token", "\"q\", which is not in the vocabulary");
        expectFailure(seed.replace("\"▁ a\"", "\"q a\""), "unknown left token", "\"q\", which is not in the vocabulary");
        expectFailure(seed.replace("\"▁ a\"", "\"a b\""), "unknown merged token", "\"ab\", which is not in the vocabulary");
        expectFailure(seed.replace("\"▁ a\"", "\"▁a\""), "no space", "not two tokens separated by one space");
        expectFailure(seed.replace("\"▁ a\"", "\"▁ a b\""), "two spaces", "not two tokens separated by one space");
        expectFailure(seed.replace("\"▁ a\"", "[\"▁\"]"), "a one-token pair", "a merge is a pair");
        expectFailure(seed.replace("\"▁ a\"", "[\"▁\", 3]"), "a number in a pair", "must be a string");
    }

    @Test
    void hugeNegativeAndDuplicateIds() {
        String seed = HfTokenizerTest.llamaLikeJson(true);
        for (String id : List.of("-1", "4194304", "2147483648", "9223372036854775808", "1e9", "0.5", "\"1\"")) {
            expectFailure(seed.replace("\"b\": 5", "\"b\": " + id), "vocab id " + id, "model.vocab[\"b\"]");
            expectFailure(seed.replace("\"id\": 2,", "\"id\": " + id + ","), "added id " + id, "added_tokens[2].id");
            expectFailure(seed.replace("\"ids\": [1]", "\"ids\": [" + id + "]"), "template id " + id, "ids[0]");
        }
        expectFailure(seed.replace("\"ids\": [1]", "\"ids\": [4000]"), "template id of no token", "no token");
        expectFailure(seed.replace("\"b\": 5", "\"b\": 4"), "duplicate id", "gives id 4 to both");
        // The largest accepted id reads (and makes a sparse id table).
        check(seed.replace("\"id\": 2,", "\"id\": " + HfTokenizerReader.MAX_ID + ","), "largest id");
    }

    @Test
    void brokenRegexes() {
        String seed = HfTokenizerTest.byteLevelJson(HfTokenizerTest.SPLIT_THEN_BYTE_LEVEL);
        String regex = "\\\\s+(?!\\\\S)|\\\\s+|\\\\S+";
        assertThat(seed).contains(regex);
        for (String bad : List.of("(", ")", "[a-", "a{2,1}", "\\\\", "*a", "(?<name", "\\\\K", "^a", "a$", "(?m:x)",
                "[[:alpha:]]", "\\\\1", "\\\\p{NoSuchProperty}", "(".repeat(500) + ")".repeat(500),
                "[".repeat(300) + "]".repeat(300))) {
            expectFailure(seed.replace(regex, bad), "regex " + bad, "pre_tokenizer.pretokenizers[0].pattern");
        }
    }

    @Test
    void deepNesting() {
        String nested = "{\"type\": \"NFC\"}";
        for (int i = 0; i < 120; i++) {
            nested = "{\"type\": \"Sequence\", \"normalizers\": [" + nested + "]}";
        }
        check(HfTokenizerTest.json("{\"a\": 0}", "[]", "", "\"normalizer\": " + nested), "120 nested sequences");
        String deeper = nested;
        for (int i = 0; i < 200; i++) {
            deeper = "{\"type\": \"Sequence\", \"normalizers\": [" + deeper + "]}";
        }
        expectFailure(HfTokenizerTest.json("{\"a\": 0}", "[]", "", "\"normalizer\": " + deeper), "deep", "nesting");
        expectFailure("[".repeat(100_000), "100000 brackets", "not valid JSON");
    }

    @Test
    void otherTopLevelFaults() throws IOException {
        expectFailure("", "empty", "not valid JSON");
        expectFailure("[]", "an array", "the top level must be an object");
        expectFailure("{}", "no model", "lacks \"model\"");
        expectFailure("{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}", "unigram", "\"Unigram\"");
        Path file = dir.resolve("bad-utf8.json");
        Files.write(file, new byte[] {'{', '"', (byte) 0xC3, '"', '}'});
        try {
            HfTokenizer.load(file);
            fail("invalid UTF-8 was accepted");
        } catch (TokenizerFormatException e) {
            assertThat(e.getMessage()).contains(file.toString()).contains("UTF-8");
        }
    }

    @Test
    void brokenGpt2Files() throws IOException {
        Path encoder = dir.resolve("encoder.json");
        Path merges = dir.resolve("vocab.bpe");
        Files.writeString(encoder, "{\"a\": 0, \"b\": 1, \"ab\": 2, \"<|endoftext|>\": 3}");
        Files.writeString(merges, "#version: 0.2\na b\n");
        assertThat(HfTokenizer.gpt2(encoder, merges).encode("ab<|endoftext|>", false)).containsExactly(2, 3);
        for (String[] c : List.of(new String[] {"#version: 0.2\na c\n", "line 2 needs the token \"c\""},
                new String[] {"#version: 0.2\na b c\n", "line 2"}, new String[] {"a b\n\na b\n", "line 2"})) {
            Files.writeString(merges, c[0]);
            try {
                HfTokenizer.gpt2(encoder, merges);
                fail(c[0] + " was accepted");
            } catch (TokenizerFormatException e) {
                assertThat(e.getMessage()).startsWith(merges.toString()).contains(c[1]);
            }
        }
        Files.writeString(merges, "a b\n");
        for (String[] c : List.of(new String[] {"{\"a\": 0, \"b\": 1, \"ab\": 2}", "<|endoftext|>"},
                new String[] {"[1, 2]", "must be an object"}, new String[] {"{\"a\": -4}", "token id"})) {
            Files.writeString(encoder, c[0]);
            try {
                HfTokenizer.gpt2(encoder, merges);
                fail(c[0] + " was accepted");
            } catch (TokenizerFormatException e) {
                assertThat(e.getMessage()).startsWith(encoder.toString()).contains(c[1]);
            }
        }
    }

    /** A random string mixing ASCII, whitespace of all kinds, accents and combining marks, CJK, emoji, any plane. */
    static String randomText(Random r, int maxLength, boolean loneSurrogates) {
        StringBuilder sb = new StringBuilder();
        int n = r.nextInt(maxLength + 1);
        String spaces = " \t\n\r\u000B\u000C\u0085\u00A0\u1680\u2000\u2028\u2029\u202F\u3000\u200B\uFEFF";
        for (int i = 0; i < n; i++) {
            int kind = r.nextInt(20);
            int cp = switch (kind) {
                case 0, 1, 2, 3, 4, 5, 6 -> 0x20 + r.nextInt(0x5F);
                case 7, 8, 9 -> spaces.charAt(r.nextInt(spaces.length()));
                case 10 -> 0xC0 + r.nextInt(0x180);
                case 11 -> 0x300 + r.nextInt(0x70);
                case 12 -> 0x4E00 + r.nextInt(0x5200);
                case 13 -> 0x1F300 + r.nextInt(0x800);
                case 14 -> r.nextBoolean() ? 0x200D : 0xFE0F;
                case 15 -> r.nextInt(0x20);
                case 16 -> 0x10000 + r.nextInt(0x100000);
                case 17 -> loneSurrogates ? 0xD800 + r.nextInt(0x800) : 0xAC00 + r.nextInt(0x2BA4);
                default -> {
                    int c = r.nextInt(0x10000);
                    yield Character.isSurrogate((char) c) ? 'x' : c;
                }
            };
            sb.appendCodePoint(cp);
        }
        return sb.toString();
    }

    @Test
    void randomTextEncodesAndRoundTripsOnTheRealTokenizers() {
        for (String name : RealTokenizers.NAMES) {
            HfTokenizer t = RealTokenizers.get(name);
            Random r = new Random(name.hashCode());
            for (int k = 0; k < 400; k++) {
                String text = randomText(r, 60, false);
                if (name.equals("llama2")) {
                    // Its normalizer writes spaces as "▁" and the decoder turns every "▁" into a space.
                    text = text.replace('\u2581', '_');
                }
                int[] ids = t.encode(text, k % 2 == 0);
                String back = t.decode(ids, true);
                String want = name.equals("qwen3") ? Normalizer.normalize(text, Normalizer.Form.NFC) : text;
                assertThat(back).as(name + " " + Json.write(text)).isEqualTo(want);
            }
            for (int k = 0; k < 100; k++) {
                String text = randomText(r, 30, true);
                int[] ids = t.encode(text, false);
                t.decodeBytes(ids, false);
            }
        }
    }

    @Test
    void randomTextOnTheMiniatures() throws TokenizerFormatException {
        Random r = new Random(3);
        for (String seed : seeds()) {
            HfTokenizer t = HfTokenizer.parse(seed, NAME);
            for (int k = 0; k < 300; k++) {
                String text = randomText(r, 40, true);
                int[] ids = t.encode(text, true);
                assertThat(Arrays.stream(ids).allMatch(id -> id >= 0 && id < t.vocabSize())).isTrue();
                t.decodeBytes(ids, false);
            }
        }
        HfTokenizer byteLevel = HfTokenizer.parse(seeds().get(2), NAME);
        for (int k = 0; k < 300; k++) {
            String text = randomText(r, 40, false).replace("<|end|>", "");
            assertThat(byteLevel.decode(byteLevel.encode(text, false), false)).isEqualTo(text);
        }
    }
}
