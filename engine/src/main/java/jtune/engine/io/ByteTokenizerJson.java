package jtune.engine.io;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.data.ByteTokenizer;

/**
 * jtune's {@link ByteTokenizer} (token i = byte i of the UTF-8 text) as a Hugging Face {@code tokenizer.json}: a
 * byte-level BPE with the 256 single-byte tokens and no merges, so that every byte stays a token of its own with
 * the same id. Its pre-tokenizer is {@code ByteLevel} without the word regex and without a prefix space (the text's
 * bytes, nothing added), its decoder {@code ByteLevel}; no normalizer, no post-processor, no special tokens.
 * Byte-level vocabularies are written in GPT-2's printable alphabet: the bytes '!'..'~', '¡'..'¬' and '®'..'ÿ'
 * stand for themselves, the 68 others in increasing order for U+0100, U+0101, ... (space is 'Ġ', U+0120).
 */
final class ByteTokenizerJson {
    private ByteTokenizerJson() {
    }

    /** The tokenizer.json text. */
    static String tokenizer() {
        Map<String, Object> vocab = new LinkedHashMap<>();
        int next = 256;
        for (int b = 0; b < ByteTokenizer.VOCAB; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            vocab.put(String.valueOf((char) (printable ? b : next++)), b);
        }
        Map<String, Object> byteLevel = new LinkedHashMap<>();
        byteLevel.put("type", "ByteLevel");
        byteLevel.put("add_prefix_space", false);
        byteLevel.put("trim_offsets", false);
        byteLevel.put("use_regex", false);
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "BPE");
        model.put("dropout", null);
        model.put("unk_token", null);
        model.put("continuing_subword_prefix", null);
        model.put("end_of_word_suffix", null);
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        model.put("vocab", vocab);
        model.put("merges", List.of());
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("version", "1.0");
        m.put("truncation", null);
        m.put("padding", null);
        m.put("added_tokens", List.of());
        m.put("normalizer", null);
        m.put("pre_tokenizer", byteLevel);
        m.put("post_processor", null);
        m.put("decoder", byteLevel);
        m.put("model", model);
        return HfConfig.pretty(m);
    }

    /** The tokenizer_config.json that points transformers' AutoTokenizer at tokenizer.json. */
    static String config(int maxLength) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("tokenizer_class", "PreTrainedTokenizerFast");
        m.put("model_max_length", maxLength);
        m.put("clean_up_tokenization_spaces", false);
        return HfConfig.pretty(m);
    }
}
