package jtune.engine.tokenizer;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code added_tokens} of a {@code tokenizer.json}: strings cut out of the text whole, before BPE, and never
 * merged. As in the Hugging Face library, tokens with {@code normalized: false} are found in the raw text; the
 * pieces between them are normalized; tokens with {@code normalized: true} are then found in those normalized
 * pieces as their own normalized form (so with Llama 2's normalizer "&lt;s&gt;" is looked for as "▁&lt;s&gt;").
 * Matching takes, scanning left to right, the longest token that starts at the first position where one does.
 * {@code single_word}: a match touching a letter or digit on either side is skipped; {@code lstrip} /
 * {@code rstrip}: the match also takes the whitespace before / after it.
 */
final class AddedVocabulary {
    /** One entry of {@code added_tokens}. */
    record AddedToken(int id, String content, boolean special, boolean normalized, boolean lstrip, boolean rstrip,
                      boolean singleWord) {
    }

    /** A piece of text still to be tokenized ({@code token} null) or an added token found in the text. */
    record Segment(String text, AddedToken token) {
    }

    private final Splitter raw;
    private final Splitter normalized;

    AddedVocabulary(List<AddedToken> tokens, Normalizer normalizer) {
        raw = new Splitter();
        normalized = new Splitter();
        for (AddedToken t : tokens) {
            if (t.normalized() && normalizer != null) {
                normalized.add(normalizer.apply(t.content()), t);
            } else {
                raw.add(t.content(), t);
            }
        }
    }

    /** Cuts the tokens that are matched before normalization out of {@code text}. */
    List<Segment> splitRaw(String text) {
        return raw.split(text);
    }

    /** Cuts the tokens that are matched after normalization out of the normalized {@code text}. */
    List<Segment> splitNormalized(String text) {
        return normalized.split(text);
    }

    /** Unicode White_Space, which is what the Hugging Face library strips for {@code lstrip} / {@code rstrip}. */
    static boolean whiteSpace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    private static boolean wordChar(int cp) {
        if (Character.isAlphabetic(cp)) {
            return true;
        }
        int type = Character.getType(cp);
        return type == Character.DECIMAL_DIGIT_NUMBER || type == Character.LETTER_NUMBER
                || type == Character.OTHER_NUMBER;
    }

    /** Leftmost-longest search for a set of strings, as a trie over UTF-16 units. */
    private static final class Splitter {
        private static final class Node {
            final Map<Character, Node> next = new HashMap<>(4);
            AddedToken token;
        }

        private final Node root = new Node();
        private final BitSet first = new BitSet(1 << 16);

        void add(String content, AddedToken token) {
            Node n = root;
            for (int i = 0; i < content.length(); i++) {
                n = n.next.computeIfAbsent(content.charAt(i), c -> new Node());
            }
            n.token = token;
            first.set(content.charAt(0));
        }

        List<Segment> split(String text) {
            List<Segment> out = new ArrayList<>();
            int start = 0;
            int i = 0;
            while (i < text.length()) {
                if (!first.get(text.charAt(i))) {
                    i++;
                    continue;
                }
                AddedToken token = null;
                int end = i;
                Node n = root;
                for (int j = i; j < text.length(); j++) {
                    n = n.next.get(text.charAt(j));
                    if (n == null) {
                        break;
                    }
                    if (n.token != null) {
                        token = n.token;
                        end = j + 1;
                    }
                }
                if (token == null) {
                    i++;
                    continue;
                }
                if (token.singleWord() && ((i > 0 && wordChar(text.codePointBefore(i)))
                        || (end < text.length() && wordChar(text.codePointAt(end))))) {
                    i = end;
                    continue;
                }
                int from = i;
                if (token.lstrip()) {
                    while (from > start && whiteSpace(text.codePointBefore(from))) {
                        from -= Character.charCount(text.codePointBefore(from));
                    }
                }
                if (token.rstrip()) {
                    while (end < text.length() && whiteSpace(text.codePointAt(end))) {
                        end += Character.charCount(text.codePointAt(end));
                    }
                }
                if (from > start) {
                    out.add(new Segment(text.substring(start, from), null));
                }
                out.add(new Segment(text.substring(from, end), token));
                start = end;
                i = end;
            }
            if (start < text.length()) {
                out.add(new Segment(start == 0 ? text : text.substring(start), null));
            }
            return out;
        }
    }
}
