package jtune.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@link OnigurumaRegex}: the word regexes of GPT-2 and Llama 3 split text as Oniguruma does. Each expected split is
 * worked out by hand from the alternatives, tried left to right with backtracking, in the comment above it.
 */
class OnigurumaRegexTest {
    static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private static List<String> matches(String regex, String text) {
        Matcher m = OnigurumaRegex.compile(regex).matcher(text);
        List<String> out = new ArrayList<>();
        while (m.find()) {
            out.add(m.group());
        }
        return out;
    }

    @Test
    void gpt2Words() {
        // "  world": \s+(?!\S) backs off from two spaces to one (the next is a space, not \S); then " world".
        assertThat(matches(GPT2, "Hello  world's 123\n\n"))
                .containsExactly("Hello", " ", " world", "'s", " 123", "\n\n");
    }

    @Test
    void whitespaceIsUnicodeWhiteSpace() {
        // U+3000 is \s for Oniguruma: "a" | "\u3000" (\s+(?!\S) backs off before b) | "\u3000" (\s+) | "b". With
        // Java's ASCII \s, ?[^\s\p{L}\p{N}]+ would take both as one word.
        assertThat(matches(GPT2, "a\u3000\u3000b")).containsExactly("a", "\u3000", "\u3000", "b");
        // Likewise U+0085 (NEL) and U+00A0 (no-break space), and U+2028.
        assertThat(matches("\\s+", "x\u0085\u00A0\u2028y")).containsExactly("\u0085\u00A0\u2028");
        // U+200B (zero-width space) is not White_Space in either.
        assertThat(matches("\\s+", "x\u200By")).isEmpty();
    }

    @Test
    void llama3Words() {
        // (?i:...) takes "'T"; \p{N}{1,3} takes digits three at a time.
        assertThat(matches(LLAMA3, "DON'T 12345")).containsExactly("DON", "'T", " ", "123", "45");
        // \s*[\r\n]+ takes the whole CR LF CR LF run.
        assertThat(matches(LLAMA3, "a\r\n\r\nb")).containsExactly("a", "\r\n\r\n", "b");
        // [^\r\n\p{L}\p{N}]?\p{L}+ lets one punctuation or space lead letters: " word", "(x".
        assertThat(matches(LLAMA3, " word(x")).containsExactly(" word", "(x");
        // Letters of any script, emoji as punctuation-like symbols.
        assertThat(matches(LLAMA3, "日本語 😀!")).containsExactly("日本語", " 😀!");
    }

    @Test
    void rewritesOnigurumaOnlyMeanings() {
        // \v is only the vertical tab (Java's \v is a class of vertical whitespace).
        assertThat(matches("\\v", "\n\u000B\r")).containsExactly("\u000B");
        // \h is a hexadecimal digit (Java's \h is horizontal whitespace).
        assertThat(matches("\\h+", "xz 0fA9 g")).containsExactly("0fA9");
        // \p{^L} is the negated property; \p{Han} a script.
        assertThat(matches("\\p{^L}+", "ab12cd")).containsExactly("12");
        assertThat(matches("\\p{Han}+", "abc漢字def")).containsExactly("漢字");
        // A ] first in a class is a literal.
        assertThat(matches("[]a]+", "x]a]y")).containsExactly("]a]");
        // . stops only at a line feed.
        assertThat(matches(".+", "a\rb\nc")).containsExactly("a\rb", "c");
    }

    @Test
    void refusesWhatItCannotTranslate() {
        for (String bad : List.of("a\\Kb", "^a", "a$", "(?m:a)", "[[:alpha:]]", "(a)\\1", "\\", "(", "[a-",
                "a{2,1}", "(?#c)", "\\p{}", "(".repeat(100) + ")".repeat(100), "[".repeat(100) + "a" + "]".repeat(100))) {
            assertThatThrownBy(() -> OnigurumaRegex.compile(bad)).as(bad)
                    .isExactlyInstanceOf(IllegalArgumentException.class).hasMessageContaining("regular expression");
        }
    }

    @Test
    void compilesWithUnicodeFlags() {
        Pattern p = OnigurumaRegex.compile("(?i:'s)");
        // Unicode case folding: the long s U+017F folds to s, as in Oniguruma.
        assertThat(p.matcher("'\u017F").matches()).isTrue();
        assertThat(p.matcher("'S").matches()).isTrue();
    }
}
