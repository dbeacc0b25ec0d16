package jtune.engine.data;

import java.nio.charset.StandardCharsets;

/**
 * The byte-level tokenizer: token {@code i} (0..255) is the byte {@code i} of the UTF-8 text, so every text
 * encodes and every token sequence decodes to exactly the bytes it names. The vocabulary is 256.
 */
public final class ByteTokenizer {
    public static final int VOCAB = 256;

    public int vocabSize() {
        return VOCAB;
    }

    /** The UTF-8 bytes of {@code text} as tokens. */
    public int[] encode(String text) {
        return encode(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Each byte as its unsigned value. */
    public int[] encode(byte[] bytes) {
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = bytes[i] & 0xff;
        }
        return ids;
    }

    /** The bytes the tokens name; fails on a token outside 0..255. */
    public byte[] decodeBytes(int[] ids) {
        byte[] bytes = new byte[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= VOCAB) {
                throw new IllegalArgumentException("byte tokenizer: token " + ids[i] + " at position " + i
                        + " is outside the vocabulary 0.." + (VOCAB - 1));
            }
            bytes[i] = (byte) ids[i];
        }
        return bytes;
    }

    /** The tokens' bytes read as UTF-8; a malformed sequence becomes U+FFFD. */
    public String decode(int[] ids) {
        return new String(decodeBytes(ids), StandardCharsets.UTF_8);
    }
}
