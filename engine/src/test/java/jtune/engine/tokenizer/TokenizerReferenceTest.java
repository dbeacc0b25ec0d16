package jtune.engine.tokenizer;

import java.io.IOException;
import java.util.List;
import jtune.engine.io.Json;
import jtune.engine.tokenizer.TokenizerFixture.Case;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;

/**
 * jtune's Hugging Face tokenizers against Hugging Face's own JavaScript tokenizer code: for Llama 2, Llama 3, Qwen3
 * and GPT-2, every text of the fixture (prose, code, numbers, whitespace runs, emoji, CJK, Arabic, Hindi, composed
 * and decomposed accents, contractions, URLs, special tokens written in the text, the empty string) encodes to the
 * reference ids without and with the added special tokens, and those ids decode to the reference text. The
 * fixture is written by {@code src-test/src/test/node/make_tokenizer_fixture.mjs}; the tokenizers come from
 * ../shared/data/tokenizers (skipped with a message where absent).
 */
class TokenizerReferenceTest {

    @Test
    void llama2() throws IOException {
        check("llama2", HfTokenizer.load(TokenizerFixture.data("tokenizers/llama2/tokenizer.json")));
    }

    @Test
    void llama3() throws IOException {
        check("llama3", HfTokenizer.load(TokenizerFixture.data("tokenizers/llama3/tokenizer.json")));
    }

    @Test
    void qwen3() throws IOException {
        check("qwen3", HfTokenizer.load(TokenizerFixture.data("tokenizers/qwen3/tokenizer.json")));
    }

    @Test
    void gpt2() throws IOException {
        check("gpt2", HfTokenizer.gpt2(TokenizerFixture.data("tokenizers/gpt2/encoder.json"),
                TokenizerFixture.data("tokenizers/gpt2/vocab.bpe")));
    }

    private static void check(String name, Tokenizer tokenizer) {
        List<Case> cases = TokenizerFixture.cases(name);
        SoftAssertions soft = new SoftAssertions();
        for (Case c : cases) {
            String text = Json.write(c.text());
            soft.assertThat(tokenizer.encode(c.text(), false)).as("%s ids of %s", name, text).containsExactly(c.ids());
            soft.assertThat(tokenizer.encode(c.text(), true)).as("%s ids with special tokens of %s", name, text)
                    .containsExactly(c.idsSpecial());
            soft.assertThat(tokenizer.decode(c.ids(), false)).as("%s decode of the ids of %s", name, text)
                    .isEqualTo(c.decoded());
        }
        soft.assertThat(cases).as("texts in the fixture").hasSizeGreaterThanOrEqualTo(40);
        soft.assertAll();
    }
}
