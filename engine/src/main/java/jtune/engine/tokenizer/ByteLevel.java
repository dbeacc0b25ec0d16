package jtune.engine.tokenizer;

import java.util.Arrays;

/**
 * GPT-2's reversible map between bytes and printable characters, which byte-level BPE vocabularies are written in.
 * The bytes {@code '!'..'~'}, {@code '¡'..'¬'} and {@code '®'..'ÿ'} stand for themselves; the 68 others (controls,
 * space, DEL, no-break space, soft hyphen...) map in increasing order to U+0100, U+0101, ... (so space is 'Ġ'
 * U+0120 and line feed is 'Ċ' U+010A).
 */
final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Indexed by character, -1 where the character stands for no byte. */
    private static final short[] CHAR_TO_BYTE = new short[512];

    static {
        Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = (char) (printable ? b : next++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteLevel() {
    }

    /** The UTF-8 bytes of {@code s}, each written as its character. */
    static String encode(String s) {
        char[] out = new char[4 * s.length()];
        int n = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            if (cp < 0x80) {
                out[n++] = BYTE_TO_CHAR[cp];
            } else if (cp < 0x800) {
                out[n++] = BYTE_TO_CHAR[0xC0 | cp >> 6];
                out[n++] = BYTE_TO_CHAR[0x80 | cp & 0x3F];
            } else if (cp < 0x10000) {
                out[n++] = BYTE_TO_CHAR[0xE0 | cp >> 12];
                out[n++] = BYTE_TO_CHAR[0x80 | cp >> 6 & 0x3F];
                out[n++] = BYTE_TO_CHAR[0x80 | cp & 0x3F];
            } else {
                out[n++] = BYTE_TO_CHAR[0xF0 | cp >> 18];
                out[n++] = BYTE_TO_CHAR[0x80 | cp >> 12 & 0x3F];
                out[n++] = BYTE_TO_CHAR[0x80 | cp >> 6 & 0x3F];
                out[n++] = BYTE_TO_CHAR[0x80 | cp & 0x3F];
            }
        }
        return new String(out, 0, n);
    }

    /** The bytes {@code s} stands for, or null if a character of {@code s} stands for no byte. */
    static byte[] decode(String s) {
        byte[] out = new byte[s.length()];
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) {
                return null;
            }
            out[i] = (byte) b;
        }
        return out;
    }
}
