package jtune.engine.data;

import java.nio.charset.StandardCharsets;
import jtune.engine.tokenizer.Tokenizer;

/**
 * The byte-level tokenizer: token {@code i} (0..255) is the byte {@code i} of the UTF-8 text, so every text
 * encodes and every token sequence decodes to exactly the bytes it names. The vocabulary is 256, with no
 * special tokens (no beginning or end of sequence).
 */
public final class ByteTokenizer implements Tokenizer {
    public static final int VOCAB = 256;

    @Override
    public int vocabSize() {
        return VOCAB;
    }

    @Override
    public int bos() {
        return -1;
    }

    @Override
    public int eos() {
        return -1;
    }

    /** The UTF-8 bytes of {@code text}; there are no special tokens to add. */
    @Override
    public int[] encode(String text, boolean addSpecial) {
        return encode(text);
    }

    /** The bytes the tokens name; there are no special tokens to skip. */
    @Override
    public byte[] decodeBytes(int[] ids, boolean skipSpecial) {
        return decodeBytes(ids);
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
