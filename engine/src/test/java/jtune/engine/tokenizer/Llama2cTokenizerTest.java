package jtune.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import jtune.engine.io.Json;
import jtune.engine.tokenizer.TokenizerFixture.Case;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama2.c's tokenizer. Oracles: (1) a small vocabulary written here, whose encodings follow by hand from the rule
 * (merge the adjacent pair whose piece scores highest, leftmost first; never into a piece scoring -1e10 or less);
 * (2) for Llama 2's {@code tokenizer.bin}, the ids that Hugging Face's JavaScript tokenizer gives with Llama 2's
 * {@code tokenizer.json} (the fixture); (3) for stories260K's {@code tok512.bin}, Hugging Face's BPE run on tok512
 * converted the way Hugging Face converts a SentencePiece model (the fixture's "tok512": merges derived from the
 * scores by the node script, applied by Hugging Face's code, which shares nothing with ours), and llama2.c's own
 * published stories260K output, which our decode must reproduce byte for byte.
 */
class Llama2cTokenizerTest {
    @TempDir
    Path dir;

    // ---- a vocabulary small enough to encode by hand: ids 0..258 as in every llama2.c tokenizer, then these
    private static final Map<String, Float> SMALL = new LinkedHashMap<>();

    static {
        SMALL.put(" ", -100f);  // 259
        SMALL.put("a", -100f);  // 260
        SMALL.put("b", -100f);  // 261
        SMALL.put("c", -100f);  // 262
        SMALL.put("aa", -1f);   // 263
        SMALL.put(" b", -2f);   // 264
        SMALL.put("ab", -3f);   // 265
        SMALL.put("aab", -0.5f); // 266
        SMALL.put("cc", -1e10f); // 267: at run.c's threshold, never merged into
        SMALL.put(" a", -4f);   // 268
    }

    @Test
    void encodesASmallVocabularyAsWorkedOutByHand() throws IOException {
        Llama2cTokenizer t = Llama2cTokenizer.load(writeSmall(dir.resolve("small.bin")), 269);
        // " aaa": pairs " a"(-4), "aa"(-1), "aa"(-1): the leftmost "aa" wins; then neither " aa" nor "aaa" is a
        // piece: [" ", "aa", "a"].
        assertThat(t.encode("aaa", false)).containsExactly(259, 263, 260);
        // " aab": "aa"(-1) beats "ab"(-3) and " a"(-4); then "aa"+"b" = "aab"(-0.5): [" ", "aab"].
        assertThat(t.encode("aab", false)).containsExactly(259, 266);
        // " ab": " a"(-4) and "ab"(-3): "ab" wins; " "+"ab" is no piece.
        assertThat(t.encode("ab", true)).containsExactly(1, 259, 265);
        assertThat(t.encode("b", false)).containsExactly(264);
        // "cc" scores -1e10: run.c's search starts there and needs a strictly higher score.
        assertThat(t.encode("cc", false)).containsExactly(259, 262, 262);
        // é (no piece) falls back to its UTF-8 bytes C3 A9 at id byte + 3.
        assertThat(t.encode("é", false)).containsExactly(259, 0xC3 + 3, 0xA9 + 3);
        assertThat(t.encode("", false)).isEmpty();
        assertThat(t.encode("", true)).containsExactly(1);
        assertThat(t.bos()).isEqualTo(1);
        assertThat(t.eos()).isEqualTo(2);
        assertThat(t.vocabSize()).isEqualTo(269);
    }

    @Test
    void decodesPiecesBytesAndTheSpaceAfterBos() throws IOException {
        Llama2cTokenizer t = Llama2cTokenizer.load(writeSmall(dir.resolve("small.bin")), 269);
        assertThat(t.decode(new int[] {1, 264, 259, 263}, true)).isEqualTo("b aa");
        assertThat(t.decode(new int[] {264, 259, 263}, true)).isEqualTo(" b aa");
        assertThat(t.decode(new int[] {1, 264, 2}, false)).isEqualTo("\n<s>\nb\n</s>\n");
        assertThat(t.decodeBytes(new int[] {0xC3 + 3}, false)).containsExactly((byte) 0xC3);
        assertThat(t.decode(new int[] {259, 0xC3 + 3, 0xA9 + 3}, false)).isEqualTo(" é");
        assertThatThrownBy(() -> t.decode(new int[] {269}, false)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token id 269 is outside");
    }

    @Test
    void rejectsBrokenFilesWithOneSentenceNamingTheFile() throws IOException {
        byte[] good = Files.readAllBytes(writeSmall(dir.resolve("small.bin")));
        for (int cut = 0; cut < good.length; cut++) {
            if (cut < 64 || cut % 11 == 0 || cut > good.length - 48) { // every kind of place, a few hundred files
                expectRejected(Arrays.copyOf(good, cut), 269, "broken.bin");
            }
        }
        int firstLength = 4 + 4; // after max_token_length and token 0's score
        expectRejected(withInt(good, firstLength, -1), 269, "token 0 declares length -1");
        expectRejected(withInt(good, firstLength, Integer.MAX_VALUE), 269, "token 0 declares length 2147483647");
        expectRejected(withInt(good, firstLength, 8), 269, "valid lengths are 0..7");
        expectRejected(withInt(good, 0, -5), 269, "max_token_length 4294967291");
        expectRejected(good, 268, "holds 269 tokens but the model's vocabulary has 268");
        expectRejected(good, 270, "holds 269 tokens but the model's vocabulary has 270");
        byte[] badByte = good.clone();
        badByte[4 + (8 + 5) + (8 + 5) + (8 + 6) + 8 + 3] = 'X'; // token 3's "<0x00>" becomes "<0xX0>"
        expectRejected(badByte, 269, "token 3 is \"<0xX0>\" where llama2.c's byte fallback needs <0x00>");
        Path noSpace = dir.resolve("nospace.bin");
        Map<String, Float> withoutSpace = new LinkedHashMap<>(SMALL);
        withoutSpace.remove(" ");
        write(noSpace, withoutSpace);
        assertThatThrownBy(() -> Llama2cTokenizer.load(noSpace, 268)).isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("nospace.bin has no \" \" piece");
        assertThatThrownBy(() -> Llama2cTokenizer.load(noSpace, 100)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("below 259");
    }

    @Test
    void llama2TokenizerBinGivesHuggingFacesIdsForPlainText() throws IOException {
        Llama2cTokenizer t = Llama2cTokenizer.load(TokenizerFixture.data("tokenizers/llama2/tokenizer.bin"), 32000);
        int agreed = 0;
        for (Case c : TokenizerFixture.cases("llama2")) {
            int[] hf = IntStream.concat(IntStream.of(1), Arrays.stream(c.ids())).toArray();
            int[] ours = t.encode(c.text(), true);
            if (divergesOnPurpose(c.text())) {
                assertThat(ours).as("known divergence for %s", Json.write(c.text())).isNotEqualTo(hf);
            } else {
                assertThat(ours).as("ids of %s", Json.write(c.text())).containsExactly(hf);
                agreed++;
            }
        }
        assertThat(agreed).isEqualTo(36);
    }

    /**
     * The texts where run.c's encoding is not Hugging Face's, and why. Not the merging (it agrees on every other
     * text: prose, code, digits, whitespace runs, emoji, CJK, Arabic, Devanagari, accents, URLs): (a) Hugging Face
     * treats {@code <unk>}, {@code <s>}, {@code </s>} written in the text as the special tokens (its added tokens
     * are matched in the normalized text, so "▁&lt;s&gt;" is one token), while llama2.c knows no special tokens in
     * text and stores BOS/EOS as "\n&lt;s&gt;\n", "\n&lt;/s&gt;\n"; (b) SentencePiece's own "▁" (U+2581) written in
     * the text is a space to Hugging Face, but tokenizer.bin stores spaces as ' ', so run.c has no piece for U+2581
     * and falls back to its three UTF-8 bytes.
     */
    private static boolean divergesOnPurpose(String text) {
        return text.contains("<s>") || text.contains("</s>") || text.contains("<unk>") || text.contains("\u2581");
    }

    @Test
    void llama2TokenizerBinRoundTripsEveryText() throws IOException {
        Llama2cTokenizer t = Llama2cTokenizer.load(TokenizerFixture.data("tokenizers/llama2/tokenizer.bin"), 32000);
        for (Case c : TokenizerFixture.cases("llama2")) {
            assertThat(t.decode(t.encode(c.text(), true), true)).as("round trip of %s", Json.write(c.text()))
                    .isEqualTo(c.text());
            if (!c.text().isEmpty()) {
                assertThat(t.decode(t.encode(c.text(), false), true)).isEqualTo(" " + c.text());
            }
        }
    }

    @Test
    void tok512GivesTheIdsOfHuggingFacesBpeOverTheSameScores() throws IOException {
        Llama2cTokenizer t = Llama2cTokenizer.load(TokenizerFixture.data("models/stories260K/tok512.bin"), 512);
        List<Case> cases = TokenizerFixture.cases("tok512");
        assertThat(cases).hasSize(5);
        for (Case c : cases) {
            assertThat(t.encode(c.text(), true)).as("ids of %s", c.text()).containsExactly(c.idsSpecial());
            assertThat(t.encode(c.text(), false)).containsExactly(c.ids());
            assertThat(t.decode(c.idsSpecial(), true)).isEqualTo(c.text());
        }
        for (Case c : TokenizerFixture.cases("llama2")) {
            assertThat(t.decode(t.encode(c.text(), true), true)).as("round trip of %s", Json.write(c.text()))
                    .isEqualTo(c.text());
        }
    }

    @Test
    void tok512DecodesStories260KsGenerationAsLlama2cPrintsIt() throws IOException {
        Llama2cTokenizer t = Llama2cTokenizer.load(TokenizerFixture.data("models/stories260K/tok512.bin"), 512);
        Map<String, Object> reference = Json.parseObject(
                Files.readString(TokenizerFixture.data("models/stories260K/reference_greedy_n200.json")));
        int[] generated = ((List<?>) reference.get("generated_token_ids")).stream()
                .mapToInt(v -> ((Long) v).intValue()).toArray();
        byte[] expected = Files.readAllBytes(TokenizerFixture.data("models/stories260K/expected_greedy_n200.txt"));
        int[] withBos = IntStream.concat(IntStream.of(1), Arrays.stream(generated)).toArray();
        assertThat(t.decodeBytes(withBos, true)).isEqualTo(expected);
    }

    private void expectRejected(byte[] content, int vocabSize, String message) throws IOException {
        Path file = dir.resolve("broken.bin");
        Files.write(file, content);
        assertThatThrownBy(() -> Llama2cTokenizer.load(file, vocabSize)).as("%d bytes", content.length)
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining(file.toString()).hasMessageContaining(message);
    }

    private static byte[] withInt(byte[] content, int offset, int value) {
        byte[] out = content.clone();
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putInt(offset, value);
        return out;
    }

    private static Path writeSmall(Path file) throws IOException {
        write(file, SMALL);
        return file;
    }

    /** ids 0..258 as llama2.c writes them, then {@code extra} in order; max_token_length 7. */
    private static void write(Path file, Map<String, Float> extra) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(le(7));
        piece(out, "<unk>", 0f);
        piece(out, "\n<s>\n", 0f);
        piece(out, "\n</s>\n", 0f);
        for (int b = 0; b < 256; b++) {
            piece(out, String.format("<0x%02X>", b), 0f);
        }
        extra.forEach((p, s) -> piece(out, p, s));
        Files.write(file, out.toByteArray());
    }

    private static void piece(ByteArrayOutputStream out, String piece, float score) {
        byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(le(Float.floatToIntBits(score)));
        out.writeBytes(le(bytes.length));
        out.writeBytes(bytes);
    }

    private static byte[] le(int v) {
        return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array();
    }
}
