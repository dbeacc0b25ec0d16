package jtune.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * {@link HfTokenizer} on tiny hand-made tokenizer.json texts. Every expected id list is worked out by hand in the
 * comment above it from the rules of the Hugging Face library: BPE applies the merge listed first (the leftmost on
 * a tie) until none applies; added tokens are cut out before BPE; and so on.
 */
class HfTokenizerTest {
    /** A tokenizer.json with a BPE model of {@code vocab} and {@code merges} (JSON texts) and extra top-level fields. */
    static String json(String vocab, String merges, String modelExtra, String extra) {
        return "{\"version\": \"1.0\", " + extra + (extra.isEmpty() ? "" : ", ")
                + "\"model\": {\"type\": \"BPE\", \"vocab\": " + vocab + ", \"merges\": " + merges
                + (modelExtra.isEmpty() ? "" : ", " + modelExtra) + "}}";
    }

    static HfTokenizer tok(String vocab, String merges, String modelExtra, String extra) throws Exception {
        return HfTokenizer.parse(json(vocab, merges, modelExtra, extra), "test.json");
    }

    private static final String ABC = "{\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4, \"abc\": 5}";

    @Test
    void theMergeListedFirstAppliesFirst() throws Exception {
        // "abc": pairs (a,b) rank 1 and (b,c) rank 0 -> b+c first -> [a, bc]; no merge "a bc" -> ids 0, 4.
        assertThat(tok(ABC, "[\"b c\", \"a b\", \"ab c\"]", "", "").encode("abc", false)).containsExactly(0, 4);
        // Listed the other way: a+b first -> [ab, c] -> "ab c" -> [abc] = 5.
        assertThat(tok(ABC, "[\"a b\", \"b c\", \"ab c\"]", "", "").encode("abc", false)).containsExactly(5);
    }

    @Test
    void mergesMayBePairsInsteadOfStrings() throws Exception {
        assertThat(tok(ABC, "[[\"b\", \"c\"], [\"a\", \"b\"], [\"ab\", \"c\"]]", "", "").encode("abc", false))
                .containsExactly(0, 4);
        // A pair can name a token with a space, which the "a b" form cannot: "a" + " " -> "a " = 2.
        assertThat(tok("{\"a\": 0, \" \": 1, \"a \": 2}", "[[\"a\", \" \"]]", "", "").encode("a a ", false))
                .containsExactly(2, 2);
    }

    @Test
    void aTieGoesToTheLeftmostPair() throws Exception {
        HfTokenizer t = tok("{\"a\": 0, \"aa\": 1, \"aaaa\": 2}", "[\"a a\", \"aa aa\"]", "", "");
        // "aaa": both pairs are "a a" (rank 0); the left one merges -> [aa, a].
        assertThat(t.encode("aaa", false)).containsExactly(1, 0);
        // "aaaaa": a+a at 0, then at 2 -> [aa, aa, a]; then "aa aa" -> [aaaa, a].
        assertThat(t.encode("aaaaa", false)).containsExactly(2, 0);
        // Without a decoder the library joins the tokens with spaces.
        assertThat(t.decode(new int[] {2, 0}, false)).isEqualTo("aaaa a");
    }

    @Test
    void ignoreMergesTakesAWholeWordFromTheVocabulary() throws Exception {
        String vocab = "{\"a\": 0, \"b\": 1, \"c\": 2, \"bc\": 3, \"abc\": 4, \"ab\": 5}";
        String merges = "[\"b c\", \"a b\"]";
        // No merge makes "abc": BPE gives [a, bc]; with ignore_merges the word itself is in the vocabulary.
        assertThat(tok(vocab, merges, "\"ignore_merges\": false", "").encode("abc", false)).containsExactly(0, 3);
        assertThat(tok(vocab, merges, "\"ignore_merges\": true", "").encode("abc", false)).containsExactly(4);
    }

    /** The 256 byte tokens {@code <0x00>..<0xFF>} as ids 0..255, then {@code more}. */
    private static String byteVocab(String more) {
        StringBuilder sb = new StringBuilder("{");
        for (int b = 0; b < 256; b++) {
            sb.append(String.format("\"<0x%02X>\": %d, ", b, b));
        }
        return sb.append(more).append('}').toString();
    }

    @Test
    void byteFallbackWritesUnknownCharactersAsTheirUtf8Bytes() throws Exception {
        HfTokenizer t = tok(byteVocab("\"h\": 256, \"i\": 257, \"hi\": 258"), "[\"h i\"]", "\"byte_fallback\": true",
                "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]}");
        // "hi" merges to 258; "é" (U+00E9) is not in the vocabulary: its UTF-8 bytes C3 A9 -> <0xC3> <0xA9>.
        int[] ids = t.encode("hié", false);
        assertThat(ids).containsExactly(258, 0xC3, 0xA9);
        assertThat(t.decode(ids, false)).isEqualTo("hié");
        // Half a character decodes to its raw byte.
        assertThat(t.decodeBytes(new int[] {258, 0xC3}, false)).containsExactly('h', 'i', 0xC3);
    }

    @Test
    void byteFallbackNeedsAllByteTokens() {
        assertThatThrownBy(() -> tok("{\"<0x00>\": 0, \"a\": 1}", "[]", "\"byte_fallback\": true", ""))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("test.json").hasMessageContaining("<0x01>");
    }

    @Test
    void unknownCharactersBecomeUnkFusedOrNotOrAreDropped() throws Exception {
        String vocab = "{\"<unk>\": 0, \"a\": 1}";
        HfTokenizer fused = tok(vocab, "[]", "\"unk_token\": \"<unk>\", \"fuse_unk\": true", "");
        // x, y unknown: one <unk> for the run; a known; z unknown.
        assertThat(fused.encode("xyaz", false)).containsExactly(0, 1, 0);
        HfTokenizer apart = tok(vocab, "[]", "\"unk_token\": \"<unk>\", \"fuse_unk\": false", "");
        assertThat(apart.encode("xyaz", false)).containsExactly(0, 0, 1, 0);
        // Without unk_token and byte fallback an unknown character is left out, as the library does.
        assertThat(tok(vocab, "[]", "", "").encode("xyaz", false)).containsExactly(1);
    }

    /** SentencePiece-style, shaped like Llama 2's file. */
    private static final String LLAMA_LIKE_VOCAB = "{\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"▁\": 3, \"a\": 4,"
            + " \"b\": 5, \"▁a\": 6, \"▁b\": 7, \"<\": 8, \">\": 9, \"s\": 10, \"/\": 11}";
    private static final String LLAMA_LIKE_MERGES = "[\"▁ a\", \"▁ b\"]";
    private static final String LLAMA_LIKE_NORMALIZER = "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
            + "{\"type\": \"Prepend\", \"prepend\": \"▁\"},"
            + " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]}";
    private static final String LLAMA_LIKE_DECODER = "\"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
            + "{\"type\": \"Replace\", \"pattern\": {\"String\": \"▁\"}, \"content\": \" \"},"
            + " {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
            + " {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}";
    private static final String LLAMA_LIKE_TEMPLATE = "\"post_processor\": {\"type\": \"TemplateProcessing\","
            + " \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
            + " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
            + " \"pair\": [], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}}";

    private static String added(int id, String content, boolean special, boolean normalized) {
        return "{\"id\": " + id + ", \"content\": \"" + content + "\", \"single_word\": false, \"lstrip\": false,"
                + " \"rstrip\": false, \"normalized\": " + normalized + ", \"special\": " + special + "}";
    }

    /** A miniature of Llama 2's tokenizer.json: every component it uses, over a 12-token vocabulary. */
    static String llamaLikeJson(boolean normalizedAddedTokens) {
        String addedTokens = "\"added_tokens\": [" + added(0, "<unk>", true, normalizedAddedTokens) + ", "
                + added(1, "<s>", true, normalizedAddedTokens) + ", " + added(2, "</s>", true, normalizedAddedTokens)
                + "]";
        return json(LLAMA_LIKE_VOCAB, LLAMA_LIKE_MERGES, "\"unk_token\": \"<unk>\"", addedTokens + ", "
                + LLAMA_LIKE_NORMALIZER + ", " + LLAMA_LIKE_DECODER + ", " + LLAMA_LIKE_TEMPLATE);
    }

    private static HfTokenizer llamaLike(boolean normalizedAddedTokens) throws Exception {
        return HfTokenizer.parse(llamaLikeJson(normalizedAddedTokens), "test.json");
    }

    @Test
    void sentencePieceStyleNormalizesAndDecodes() throws Exception {
        HfTokenizer t = llamaLike(true);
        // "a b" -> normalized "▁a▁b" -> ▁+a (rank 0), ▁+b (rank 1) -> [▁a, ▁b].
        assertThat(t.encode("a b", false)).containsExactly(6, 7);
        // Two spaces: "▁a▁▁b" -> ▁+a first, then the ▁+b on the right -> [▁a, ▁, ▁b].
        assertThat(t.encode("a  b", false)).containsExactly(6, 3, 7);
        // The template puts <s> in front.
        assertThat(t.encode("a b", true)).containsExactly(1, 6, 7);
        // Decoding: "▁a▁▁b" -> " a  b" -> one leading space stripped.
        assertThat(t.decode(new int[] {6, 3, 7}, false)).isEqualTo("a  b");
        // After <s> the leading space is not the first character, so it stays; skipping <s> it goes.
        assertThat(t.decode(new int[] {1, 6, 7}, false)).isEqualTo("<s> a b");
        assertThat(t.decode(new int[] {1, 6, 7}, true)).isEqualTo("a b");
        assertThat(t.bos()).isEqualTo(1);
        assertThat(t.eos()).isEqualTo(2);
        assertThat(t.vocabSize()).isEqualTo(12);
        assertThat(t.token(6)).isEqualTo("▁a");
    }

    @Test
    void normalizedAddedTokensAreFoundInTheNormalizedText() throws Exception {
        HfTokenizer t = llamaLike(true);
        // "a <s>b" -> "▁a▁<s>b"; <s> is looked for as its normalized form "▁<s>" -> "▁a" | "▁<s>" | "b".
        assertThat(t.encode("a <s>b", false)).containsExactly(6, 1, 5);
        // "<s>a" -> "▁<s>a" -> "▁<s>" | "a".
        assertThat(t.encode("<s>a", false)).containsExactly(1, 4);
        // "a<s>" -> "▁a<s>": no "▁<s>" in it, so BPE sees "▁a<s>" -> [▁a, <, s, >].
        assertThat(t.encode("a<s>", false)).containsExactly(6, 8, 10, 9);
    }

    @Test
    void unnormalizedAddedTokensAreFoundInTheRawText() throws Exception {
        HfTokenizer t = llamaLike(false);
        // Raw split: "a " | <s> | "b"; each piece normalized alone: "▁a▁" -> [▁a, ▁], "b" -> "▁b".
        assertThat(t.encode("a <s>b", false)).containsExactly(6, 3, 1, 7);
        assertThat(t.encode("a<s>", false)).containsExactly(6, 1);
    }

    private static HfTokenizer flags(String tokenFlags) throws Exception {
        String vocab = "{\"a\": 0, \" \": 1, \"<m>\": 2, \"x\": 3, \"<\": 4, \"m\": 5, \">\": 6}";
        return tok(vocab, "[]", "", "\"added_tokens\": [{\"id\": 2, \"content\": \"<m>\", \"special\": false, "
                + tokenFlags + "}]");
    }

    @Test
    void addedTokenFlagsLstripRstripSingleWord() throws Exception {
        // Plain: "a  <m> a" -> "a  " | <m> | " a".
        assertThat(flags("\"lstrip\": false").encode("a  <m> a", false)).containsExactly(0, 1, 1, 2, 1, 0);
        // lstrip: the match takes the spaces before it -> "a" | "  <m>" | " a".
        assertThat(flags("\"lstrip\": true").encode("a  <m> a", false)).containsExactly(0, 2, 1, 0);
        // rstrip: the spaces after it -> "a " | "<m>  " | "a".
        assertThat(flags("\"rstrip\": true").encode("a <m>  a", false)).containsExactly(0, 1, 2, 0);
        // single_word: touching "x" it is no match and BPE sees "<", "m", ">"; apart from words it is.
        assertThat(flags("\"single_word\": true").encode("x<m> a", false)).containsExactly(3, 4, 5, 6, 1, 0);
        assertThat(flags("\"single_word\": true").encode("x <m> a", false)).containsExactly(3, 1, 2, 1, 0);
        // The longest added token wins where two start at one place.
        HfTokenizer two = tok("{\"a\": 0}", "[]", "", "\"added_tokens\": [" + added(1, "<m", false, false) + ", "
                + added(2, "<m>", true, false) + "]");
        assertThat(two.encode("<m><ma", false)).containsExactly(2, 1, 0);
        // skipSpecial drops the special one only.
        assertThat(two.decode(new int[] {2, 1, 0}, true)).isEqualTo("<m a");
    }

    /** GPT-2's byte-to-character table, written out from its definition (independently of {@link ByteLevel}). */
    static char byteChar(int b) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
            return (char) b;
        }
        int n = 0;
        for (int x = 0; x < b; x++) {
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) {
                n++;
            }
        }
        return (char) (256 + n);
    }

    /** A byte-level vocabulary: the character of byte b is id b; then Ġt, he, Ġthe (Ġ is the space, U+0120). */
    private static String byteLevelVocab() {
        StringBuilder sb = new StringBuilder("{");
        for (int b = 0; b < 256; b++) {
            String c = String.valueOf(byteChar(b));
            sb.append('"').append(c.equals("\"") ? "\\\"" : c.equals("\\") ? "\\\\" : c).append("\": ").append(b)
                    .append(", ");
        }
        return sb.append("\"Ġt\": 256, \"he\": 257, \"Ġthe\": 258}").toString();
    }

    /** A miniature byte-level tokenizer.json with the given pre-tokenizer (JSON) and an added token 259. */
    static String byteLevelJson(String preTokenizer) {
        return json(byteLevelVocab(), "[\"Ġ t\", \"h e\", \"Ġt he\"]", "",
                "\"added_tokens\": [" + added(259, "<|end|>", true, false) + "], \"pre_tokenizer\": " + preTokenizer
                        + ", \"decoder\": {\"type\": \"ByteLevel\"}");
    }

    private static HfTokenizer byteLevel(String preTokenizer) throws Exception {
        return HfTokenizer.parse(byteLevelJson(preTokenizer), "test.json");
    }

    @Test
    void byteLevelBpe() throws Exception {
        assertThat(byteChar(' ')).isEqualTo('Ġ');
        assertThat(byteChar('\n')).isEqualTo('Ċ');
        HfTokenizer t = byteLevel("{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}");
        // GPT-2 regex: "the" | " the". "the": h+e (rank 1) -> [t, he]; no "t he". " the" = "Ġthe": Ġ+t (rank 0),
        // h+e, Ġt+he -> [Ġthe].
        int[] ids = t.encode("the the", false);
        assertThat(ids).containsExactly('t', 257, 258);
        assertThat(t.decode(ids, false)).isEqualTo("the the");
        // "é" = C3 A9: the characters of those two bytes, no merge; half of it decodes to the raw byte.
        assertThat(t.encode("é", false)).containsExactly(0xC3, 0xA9);
        assertThat(t.decodeBytes(new int[] {0xC3}, false)).containsExactly(0xC3);
        // Added token, decoded as written, skipped when asked.
        assertThat(t.encode("the<|end|>", false)).containsExactly('t', 257, 259);
        assertThat(t.decode(new int[] {258, 259}, false)).isEqualTo(" the<|end|>");
        assertThat(t.decode(new int[] {258, 259}, true)).isEqualTo(" the");
        // add_prefix_space: "the" is read as " the".
        HfTokenizer prefixed = byteLevel("{\"type\": \"ByteLevel\", \"add_prefix_space\": true}");
        assertThat(prefixed.encode("the", false)).containsExactly(258);
    }

    /** Llama 3's pre-tokenizer shape: Split by a regex, then ByteLevel without its own regex. */
    static final String SPLIT_THEN_BYTE_LEVEL = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\","
            + " \"pattern\": {\"Regex\": \"\\\\s+(?!\\\\S)|\\\\s+|\\\\S+\"}, \"behavior\": \"Isolated\", \"invert\": false},"
            + " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]}";

    @Test
    void splitThenByteLevelAsLlama3Does() throws Exception {
        HfTokenizer t = byteLevel(SPLIT_THEN_BYTE_LEVEL);
        // "the  the": \S+ takes "the"; at the spaces \s+(?!\S) cannot end before "t", so it backs off to one
        // space; the second space is taken by \s+ -> "the" | " " | " " | "the", then bytes: [t, he] [Ġ] [Ġ] [t, he]
        // (the space byte is id 32).
        assertThat(t.encode("the  the", false)).containsExactly('t', 257, ' ', ' ', 't', 257);
    }

    @Test
    void templateAndBosEos() throws Exception {
        String template = "\"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"},"
                + " {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
                + " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}],"
                + " \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]},"
                + " \"</s>\": {\"id\": \"</s>\", \"ids\": [2], \"tokens\": [\"</s>\"]}}}]}";
        HfTokenizer t = tok(LLAMA_LIKE_VOCAB, LLAMA_LIKE_MERGES, "", "\"added_tokens\": [" + added(1, "<s>", true, false)
                + ", " + added(2, "</s>", true, false) + "], " + LLAMA_LIKE_NORMALIZER + ", " + template);
        assertThat(t.encode("a", true)).containsExactly(1, 6, 2);
        assertThat(t.encode("a", false)).containsExactly(6);
        assertThat(t.bos()).isEqualTo(1);
        assertThat(t.eos()).isEqualTo(2);
        HfTokenizer none = tok("{\"a\": 0}", "[]", "", "");
        assertThat(none.bos()).isEqualTo(-1);
        assertThat(none.eos()).isEqualTo(-1);
    }

    @Test
    void decodeSkipsIdsThatNameNoToken() throws Exception {
        HfTokenizer t = tok("{\"a\": 0, \"b\": 2}", "[]", "", "\"decoder\": {\"type\": \"Fuse\"}");
        assertThat(t.vocabSize()).isEqualTo(3);
        assertThat(t.decode(new int[] {0, 1, -5, 2, 99}, false)).isEqualTo("ab");
    }

    @Test
    void unpairedSurrogatesAreReadAsReplacementCharacters() throws Exception {
        HfTokenizer t = tok("{\"a\": 0, \"\uFFFD\": 1}", "[]", "", "");
        assertThat(t.encode("a\uD800a\uDC00", false)).containsExactly(0, 1, 0, 1);
    }

    @Test
    void errorsNameTheFileAndThePlace() {
        assertThatThrownBy(() -> tok(ABC, "[\"a q\"]", "", ""))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessage("test.json: model.merges[0] needs the token \"q\", which is not in the vocabulary.");
        assertThatThrownBy(() -> tok(ABC, "[]", "", "\"normalizer\": {\"type\": \"Lowercase\"}"))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageStartingWith("test.json: normalizer is type \"Lowercase\", which jtune does not support");
        assertThatThrownBy(() -> tok("{\"a\": 0, \"b\": 0}", "[]", "", ""))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessage("test.json: model.vocab gives id 0 to both \"a\" and \"b\".");
        assertThatThrownBy(() -> tok(ABC, "[]", "\"dropout\": 0.1", ""))
                .isInstanceOf(TokenizerFormatException.class).hasMessageContaining("model.dropout");
        assertThatThrownBy(() -> HfTokenizer.parse("{\"model\": ", "broken.json"))
                .isInstanceOf(TokenizerFormatException.class).hasMessageStartingWith("broken.json is not valid JSON");
        assertThatThrownBy(() -> tok(ABC, "[]", "", "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\":"
                + " \"a\\\\Kb\"}, \"behavior\": \"Isolated\"}"))
                .isInstanceOf(TokenizerFormatException.class)
                .hasMessageContaining("test.json: pre_tokenizer.pattern.Regex").hasMessageContaining("\\K");
    }

    @Test
    void decodeBytesIsRawUtf8() throws Exception {
        HfTokenizer t = tok(byteVocab("\"x\": 256"), "[]", "\"byte_fallback\": true",
                "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]}");
        String text = "x😀x";
        int[] ids = t.encode(text, false);
        // 😀 = F0 9F 98 80.
        assertThat(ids).containsExactly(256, 0xF0, 0x9F, 0x98, 0x80, 256);
        assertThat(t.decodeBytes(ids, false)).isEqualTo(text.getBytes(StandardCharsets.UTF_8));
        assertThat(t.decode(new int[] {256, 0xF0, 0x9F}, false)).isEqualTo("x\uFFFD");
    }
}
