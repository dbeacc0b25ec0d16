package jtune.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.text.Normalizer;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The four real tokenizers of ../shared/data (skipped where absent): decode(encode(x)) gives x back on varied text
 * (and, for Llama 2 and 3, on WikiText-2's test split, whose encoding speed is printed), bos/eos are the files'
 * tokens, and byte tokens decode to raw bytes. The ids themselves are checked against Hugging Face's JavaScript tokenizers in
 * {@link TokenizerReferenceTest}.
 */
class HfTokenizerRealFilesTest {
    static final List<String> TEXTS = List.of(
            "Hello world",
            "The quick brown fox jumps over the lazy dog. THE END!",
            "public static int f(int[] a) {\n\treturn a.length > 0 ? a[0] : -1; // done\n}\n",
            "def g(x):\n    return {'k': [1, 2.5, -3e-4]}\n",
            "3.14159 2718281828 1,000,000 0x1F 42nd 1/3 ½ ²",
            "  two leading, trailing three   ",
            "tabs\t\tand\nnew\n\nlines\r\nwindows\r\n\r\n",
            "                                        forty spaces before",
            "nbsp\u00A0ideographic\u3000nel\u0085line sep\u2028end",
            "emoji 😀👍🏽 ❤️ family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 🤗",
            "中文测试：你好，世界！日本語のテキスト。한국어",
            "Ça, naïve café résumé Ångström Œuvre São Paulo Kraków",
            "decomposed cafe\u0301 e\u0300 a\u030A",
            "Ελληνικά Русский текст עברית العربية हिन्दी ไทย",
            "control\u0000chars\u0007\u001B[0m and \uFEFF bom",
            "I'm, you'll, DON'T, she's, we've, they'd, Y'ALL'D",
            "https://example.com/a?b=c&d=e#f user@example.org $1,234.56 (50% off!)",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝐀𝐁𝐂 and old italic 𐌀𐌁",
            "x",
            " ",
            "");

    /** What decode(encode(x)) must give: Qwen3 normalizes to NFC first; the others keep the text. */
    private static String expected(String name, String text) {
        return name.equals("qwen3") ? Normalizer.normalize(text, Normalizer.Form.NFC) : text;
    }

    @Test
    void roundTripsVariedText() {
        for (String name : RealTokenizers.NAMES) {
            HfTokenizer t = RealTokenizers.get(name);
            for (String text : TEXTS) {
                int[] ids = t.encode(text, false);
                assertThat(t.decode(ids, false)).as(name + ": " + text).isEqualTo(expected(name, text));
                assertThat(t.decode(t.encode(text, true), true)).as(name + " with specials: " + text)
                        .isEqualTo(expected(name, text));
            }
        }
    }

    @Test
    void specialTokensInTheText() {
        HfTokenizer llama3 = RealTokenizers.get("llama3");
        int[] ids = llama3.encode("<|begin_of_text|>Hi<|end_of_text|>", false);
        assertThat(ids[0]).isEqualTo(llama3.bos());
        assertThat(ids[ids.length - 1]).isEqualTo(llama3.eos());
        assertThat(llama3.decode(ids, false)).isEqualTo("<|begin_of_text|>Hi<|end_of_text|>");
        assertThat(llama3.decode(ids, true)).isEqualTo("Hi");
        HfTokenizer qwen = RealTokenizers.get("qwen3");
        // <think> is an added token that is not special: skipSpecial keeps it.
        int[] q = qwen.encode("<|im_start|>user\n<think>x</think><|im_end|>", false);
        assertThat(qwen.decode(q, true)).isEqualTo("user\n<think>x</think>");
        HfTokenizer gpt2 = RealTokenizers.get("gpt2");
        assertThat(gpt2.encode("a<|endoftext|>b", false)).contains(50256);
    }

    @Test
    void bosAndEos() {
        // Llama 2: the template's <s> and the added </s>.
        assertThat(RealTokenizers.get("llama2").bos()).isEqualTo(1);
        assertThat(RealTokenizers.get("llama2").eos()).isEqualTo(2);
        assertThat(RealTokenizers.get("llama2").encode("Hi", true)[0]).isEqualTo(1);
        // Llama 3 and Qwen3: tokenizer_config.json's bos_token / eos_token.
        HfTokenizer llama3 = RealTokenizers.get("llama3");
        assertThat(llama3.token(llama3.bos())).isEqualTo("<|begin_of_text|>");
        assertThat(llama3.token(llama3.eos())).isEqualTo("<|end_of_text|>");
        // This Llama 3 file's post-processor is ByteLevel, which adds no token.
        assertThat(llama3.encode("Hi", true)).isEqualTo(llama3.encode("Hi", false));
        HfTokenizer qwen = RealTokenizers.get("qwen3");
        assertThat(qwen.bos()).isEqualTo(-1);
        assertThat(qwen.token(qwen.eos())).isEqualTo("<|im_end|>");
        HfTokenizer gpt2 = RealTokenizers.get("gpt2");
        assertThat(gpt2.bos()).isEqualTo(50256);
        assertThat(gpt2.eos()).isEqualTo(50256);
        assertThat(RealTokenizers.get("llama2").vocabSize()).isEqualTo(32000);
        assertThat(llama3.vocabSize()).isEqualTo(128256);
        assertThat(qwen.vocabSize()).isEqualTo(151669);
        assertThat(gpt2.vocabSize()).isEqualTo(50257);
    }

    @Test
    void aPrefixOfTheIdsMayEndInsideACharacter() {
        // Private-use characters (U+E000, U+F0000), which no vocabulary has whole.
        String text = "ok \uE000 \uDB80\uDC00";
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        for (String name : RealTokenizers.NAMES) {
            HfTokenizer t = RealTokenizers.get(name);
            int[] ids = t.encode(text, false);
            boolean inside = false;
            for (int n = 0; n <= ids.length; n++) {
                byte[] prefix = t.decodeBytes(Arrays.copyOf(ids, n), false);
                assertThat(Arrays.copyOf(utf8, Math.min(prefix.length, utf8.length))).as(name + " prefix " + n)
                        .isEqualTo(prefix);
                inside |= prefix.length > 0 && !Arrays.equals(
                        new String(prefix, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8), prefix);
            }
            assertThat(inside).as(name + " has a prefix that ends inside a character").isTrue();
        }
    }

    /** Llama 2 (one 1.3 MB word: no pre-tokenizer) and Llama 3 (byte-level); the speed is printed, not checked. */
    @Test
    void wikiText2RoundTripsAndEncodingSpeed() throws IOException {
        byte[] wiki = Files.readAllBytes(RealTokenizers.data("corpora/wikitext-2-raw/wiki.test.raw"));
        String text = new String(wiki, StandardCharsets.UTF_8);
        for (String name : List.of("llama2", "llama3")) {
            HfTokenizer t = RealTokenizers.get(name);
            long start = System.nanoTime();
            int[] ids = t.encode(text, false);
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("%s: loaded in %.0f ms; WikiText-2 test (%.2f MB) -> %d tokens in %.2f s = %.1f MB/s"
                            + " (first encode, word cache cold)%n", name, RealTokenizers.loadMillis(name),
                    wiki.length / 1e6, ids.length, seconds, wiki.length / 1e6 / seconds);
            assertThat(t.decodeBytes(ids, false)).as(name).isEqualTo(wiki);
            // About 4 bytes per token on English text.
            assertThat(ids.length).as(name).isBetween(wiki.length / 6, wiki.length / 3);
        }
    }
}
