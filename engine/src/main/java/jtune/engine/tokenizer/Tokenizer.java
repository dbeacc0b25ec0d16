package jtune.engine.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * Text to token ids and back. Implementations: Hugging Face {@code tokenizer.json} files (SentencePiece-style BPE
 * with byte fallback, byte-level BPE), GPT-2's {@code encoder.json} + {@code vocab.bpe}, and llama2.c's
 * {@code tokenizer.bin}. Instances are immutable and safe to share between threads.
 */
public interface Tokenizer {
    /**
     * The ids of {@code text}. With {@code addSpecial}, also the tokens the tokenizer adds around a sequence (its
     * post-processor: Llama's beginning-of-sequence token, for one); without, only the text's own tokens. Special
     * tokens written in the text ("&lt;|endoftext|&gt;") are recognised as such.
     */
    int[] encode(String text, boolean addSpecial);

    /**
     * The bytes that {@code ids} stand for, UTF-8 for whole texts; a prefix of a sequence may end inside a
     * character (byte-fallback and byte-level pieces carry single bytes). With {@code skipSpecial}, special
     * tokens are left out.
     */
    byte[] decodeBytes(int[] ids, boolean skipSpecial);

    /** {@link #decodeBytes} as text (malformed UTF-8 becomes U+FFFD). */
    default String decode(int[] ids, boolean skipSpecial) {
        return new String(decodeBytes(ids, skipSpecial), StandardCharsets.UTF_8);
    }

    /** Number of ids, added tokens included (the model's vocabulary may be larger). */
    int vocabSize();

    /** The beginning-of-sequence id, or -1 where there is none. */
    int bos();

    /** The end-of-sequence id, or -1 where there is none. */
    int eos();
}
