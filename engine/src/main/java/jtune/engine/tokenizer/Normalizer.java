package jtune.engine.tokenizer;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code normalizer} of a {@code tokenizer.json}: rewrites each piece of text that is not an added token before
 * it is split into words. Only the kinds real LLaMA-family files use are supported.
 */
sealed interface Normalizer {
    String apply(String text);

    /** {@code "Sequence"}: each normalizer in turn. */
    record Sequence(List<Normalizer> steps) implements Normalizer {
        @Override
        public String apply(String text) {
            for (Normalizer n : steps) {
                text = n.apply(text);
            }
            return text;
        }
    }

    /** {@code "Prepend"}: puts {@code prefix} in front of a non-empty text (SentencePiece's dummy prefix). */
    record Prepend(String prefix) implements Normalizer {
        @Override
        public String apply(String text) {
            return text.isEmpty() ? text : prefix + text;
        }
    }

    /** {@code "Replace"}: every non-overlapping match of {@code pattern}, left to right, becomes {@code content}. */
    record Replace(Pattern pattern, String content) implements Normalizer {
        @Override
        public String apply(String text) {
            return pattern.matcher(text).replaceAll(Matcher.quoteReplacement(content));
        }
    }

    /** {@code "NFC"}: Unicode canonical composition. */
    record Nfc() implements Normalizer {
        @Override
        public String apply(String text) {
            return java.text.Normalizer.normalize(text, java.text.Normalizer.Form.NFC);
        }
    }
}
