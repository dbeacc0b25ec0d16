package jtune.engine.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code pre_tokenizer} of a {@code tokenizer.json}: cuts a normalized piece of text into the words that BPE
 * encodes one by one (merges never cross a word boundary). Only the kinds real LLaMA-family and GPT-2 files use
 * are supported.
 */
sealed interface PreTokenizer {
    /** GPT-2's word regex, which {@code ByteLevel} with {@code use_regex} applies. */
    Pattern GPT2_WORDS = OnigurumaRegex.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

    /** Appends the words of {@code piece} (non-empty) to {@code out}. */
    void split(String piece, List<String> out);

    /** {@code "Sequence"}: each pre-tokenizer applied to every word the previous ones produced. */
    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(String piece, List<String> out) {
            List<String> words = List.of(piece);
            for (PreTokenizer step : steps) {
                List<String> next = new ArrayList<>();
                for (String w : words) {
                    step.split(w, next);
                }
                words = next;
            }
            out.addAll(words);
        }
    }

    /**
     * {@code "Split"} with behaviour {@code "Isolated"} and no inversion: each match of {@code pattern} is a word,
     * and so is each non-empty stretch between matches (empty matches are ignored).
     */
    record Split(Pattern pattern) implements PreTokenizer {
        @Override
        public void split(String piece, List<String> out) {
            isolate(pattern, piece, out);
        }
    }

    /**
     * {@code "ByteLevel"}: optionally puts a space before a piece that does not start with one, optionally splits it
     * with {@link #GPT2_WORDS}, then writes every word's UTF-8 bytes as {@link ByteLevel} characters.
     */
    record ByteLevelWords(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        @Override
        public void split(String piece, List<String> out) {
            String text = addPrefixSpace && !piece.startsWith(" ") ? " " + piece : piece;
            if (!useRegex) {
                out.add(ByteLevel.encode(text));
                return;
            }
            int from = out.size();
            isolate(GPT2_WORDS, text, out);
            for (int i = from; i < out.size(); i++) {
                out.set(i, ByteLevel.encode(out.get(i)));
            }
        }
    }

    private static void isolate(Pattern pattern, String text, List<String> out) {
        Matcher m = pattern.matcher(text);
        int last = 0;
        while (m.find()) {
            if (m.start() == m.end()) {
                continue;
            }
            if (m.start() > last) {
                out.add(text.substring(last, m.start()));
            }
            out.add(text.substring(m.start(), m.end()));
            last = m.end();
        }
        if (last < text.length()) {
            out.add(text.substring(last));
        }
    }
}
