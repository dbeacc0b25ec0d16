package jtune.engine.tokenizer;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Compiles the Oniguruma regular expressions of {@code tokenizer.json} files (the Hugging Face library runs them
 * with Oniguruma) as {@link java.util.regex} patterns that match the same text.
 *
 * <p>The pattern is compiled with {@link Pattern#UNICODE_CHARACTER_CLASS}, so that {@code \s}, {@code \w},
 * {@code \d} and {@code \b} are the Unicode classes as in Oniguruma ({@code \s} is then the White_Space property,
 * the same set as Oniguruma's U+0009..U+000D, U+0085, Zs, Zl, Zp; Java's default {@code \s} is ASCII only) and
 * {@code (?i)} folds case by Unicode rules; and with {@link Pattern#UNIX_LINES}, so that {@code .} excludes only
 * the line feed, as in Oniguruma. {@code \p{L}}, {@code \p{N}}, classes, groups, look-around, lazy and possessive
 * quantifiers mean the same in both. Rewritten: Oniguruma's {@code \v} (vertical tab; Java's is a class),
 * {@code \h} / {@code \H} (hex digit; Java's is horizontal space), {@code \p{^X}} (negated property), a property
 * named by script or binary property ({@code \p{Han}} becomes {@code \p{IsHan}}), and a {@code ]} first in a class
 * (a literal). Refused, with a message naming the construct: {@code ^} and {@code $} (line anchors in Oniguruma's
 * Ruby syntax), back-references, POSIX brackets ({@code [:alpha:]}), inline options other than {@code i}, and the
 * Oniguruma-only escapes ({@code \K \R \X \G \g \k \y \Y \O \N \Q \E \c \C \M}), and nesting deeper than
 * {@value #MAX_NESTING}.
 */
final class OnigurumaRegex {
    /** Deepest nesting of groups or classes accepted (Java's pattern compiler recurses on nesting). */
    static final int MAX_NESTING = 64;

    private OnigurumaRegex() {
    }

    /** {@code regex} as a Java pattern; IllegalArgumentException naming the construct if it cannot be. */
    static Pattern compile(String regex) {
        String java = translate(regex);
        try {
            return Pattern.compile(java, Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNIX_LINES);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("invalid regular expression " + quoted(regex) + ": "
                    + e.getDescription() + " near index " + e.getIndex());
        }
    }

    static String translate(String regex) {
        StringBuilder out = new StringBuilder(regex.length() + 16);
        int classDepth = 0;
        int groupDepth = 0;
        int i = 0;
        while (i < regex.length()) {
            char c = regex.charAt(i);
            if (classDepth > MAX_NESTING || groupDepth > MAX_NESTING) {
                throw unsupported(regex, i, "groups or classes nested deeper than " + MAX_NESTING);
            }
            if (c == '\\') {
                i = escape(regex, i, classDepth > 0, out);
                continue;
            }
            if (c == '[') {
                if (classDepth > 0 && regex.startsWith("[:", i)) {
                    throw unsupported(regex, i, "a POSIX bracket expression");
                }
                classDepth++;
                out.append(c);
                i++;
                if (i < regex.length() && regex.charAt(i) == '^') {
                    out.append('^');
                    i++;
                }
                if (i < regex.length() && regex.charAt(i) == ']') {
                    out.append("\\]");
                    i++;
                }
                continue;
            }
            if (classDepth > 0) {
                if (c == ']') {
                    classDepth--;
                }
                out.append(c);
                i++;
                continue;
            }
            if (c == '^' || c == '$') {
                throw unsupported(regex, i, "the line anchor " + c);
            }
            if (c == '(' || c == ')') {
                groupDepth += c == '(' ? 1 : -1;
            }
            if (c == '(' && regex.startsWith("(?", i)) {
                i = group(regex, i, out);
                continue;
            }
            out.append(c);
            i++;
        }
        return out.toString();
    }

    /** Copies the group opener at {@code i}, checking its inline options; returns the index after it. */
    private static int group(String regex, int i, StringBuilder out) {
        int j = i + 2;
        if (j >= regex.length()) {
            throw unsupported(regex, i, "an unterminated group");
        }
        char k = regex.charAt(j);
        if (k == ':' || k == '=' || k == '!' || k == '>' || k == '<') {
            out.append("(?").append(k);
            return j + 1;
        }
        int start = j;
        while (j < regex.length() && (Character.isLetter(regex.charAt(j)) || regex.charAt(j) == '-')) {
            j++;
        }
        String options = regex.substring(start, j);
        if (!options.replace("i", "").replace("-", "").isEmpty() || j >= regex.length()
                || (regex.charAt(j) != ':' && regex.charAt(j) != ')')) {
            throw unsupported(regex, i, "the group (?" + options + (j < regex.length() ? regex.charAt(j) : "")
                    + " (only the inline option i is supported)");
        }
        out.append("(?").append(options).append(regex.charAt(j));
        return j + 1;
    }

    /** Copies or rewrites the escape at {@code i}; returns the index after it. */
    private static int escape(String regex, int i, boolean inClass, StringBuilder out) {
        if (i + 1 >= regex.length()) {
            throw unsupported(regex, i, "a trailing backslash");
        }
        char e = regex.charAt(i + 1);
        switch (e) {
            case 'v' -> out.append("\\x0B");
            case 'h' -> out.append(inClass ? "0-9a-fA-F" : "[0-9a-fA-F]");
            case 'H' -> {
                if (inClass) {
                    throw unsupported(regex, i, "\\H inside a character class");
                }
                out.append("[^0-9a-fA-F]");
            }
            case 'p', 'P' -> {
                return property(regex, i, e, out);
            }
            case 's', 'S', 'd', 'D', 'w', 'W', 'r', 'n', 't', 'f', 'e', 'a', 'x', 'u', '0', 'b', 'B', 'A', 'z', 'Z' -> {
                if (inClass && (e == 'b' || e == 'B' || e == 'A' || e == 'z' || e == 'Z')) {
                    throw unsupported(regex, i, "\\" + e + " inside a character class");
                }
                out.append('\\').append(e);
            }
            default -> {
                if (Character.isLetterOrDigit(e)) {
                    throw unsupported(regex, i, "the escape \\" + e);
                }
                out.append('\\').append(e);
            }
        }
        return i + 2;
    }

    /** Copies {@code \p{Name}} / {@code \P{Name}} at {@code i}; returns the index after it. */
    private static int property(String regex, int i, char p, StringBuilder out) {
        int open = i + 2;
        int close = regex.indexOf('}', open);
        if (open >= regex.length() || regex.charAt(open) != '{' || close < 0) {
            throw unsupported(regex, i, "\\" + p + " without {name}");
        }
        String name = regex.substring(open + 1, close);
        boolean negated = name.startsWith("^");
        if (negated) {
            name = name.substring(1);
        }
        if (name.isEmpty() || !name.chars().allMatch(ch -> Character.isLetterOrDigit(ch) || ch == '_')) {
            throw unsupported(regex, i, "the property name \"" + name + "\"");
        }
        char letter = negated == (p == 'p') ? 'P' : 'p';
        out.append('\\').append(letter).append('{').append(name.length() <= 2 ? name : "Is" + name).append('}');
        return close + 1;
    }

    private static IllegalArgumentException unsupported(String regex, int at, String what) {
        return new IllegalArgumentException("regular expression " + quoted(regex) + " uses " + what + " at index "
                + at + ", which jtune does not support");
    }

    private static String quoted(String regex) {
        String shown = regex.length() > 120 ? regex.substring(0, 120) + "..." : regex;
        return "\"" + shown + "\"";
    }
}
