package jtune.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * A Hugging Face {@code tokenizer.json} tokenizer (BPE models: SentencePiece-style with byte fallback as in Llama 2,
 * byte-level as in GPT-2, Llama 3 and Qwen), or GPT-2's original {@code encoder.json} + {@code vocab.bpe}.
 *
 * <p>Encoding follows the Hugging Face {@code tokenizers} library: cut the added tokens out of the text
 * ({@link AddedVocabulary}), normalize each remaining piece ({@link Normalizer}), cut the added tokens that match
 * normalized text, split each piece into words ({@link PreTokenizer}), encode each word with BPE ({@link Bpe}),
 * and, when asked for special tokens, wrap the ids as the post-processor's template says (Llama 2's "&lt;s&gt;").
 * Unpaired surrogates in the text are read as U+FFFD. Decoding maps ids to their token strings (added tokens
 * first; ids that name no token are skipped, as the library does) and runs the {@link Decoder} steps on bytes;
 * without a decoder the tokens are joined with spaces, as the library does. Transformers' optional
 * {@code clean_up_tokenization_spaces} is not applied (it is not part of {@code tokenizer.json} and loses text).
 *
 * <p>{@link #bos()} and {@link #eos()} come from {@code bos_token} / {@code eos_token} of the
 * {@code tokenizer_config.json} next to the file when it has them (Llama 3: &lt;|begin_of_text|&gt; and
 * &lt;|end_of_text|&gt;; Qwen3: none and &lt;|im_end|&gt;); otherwise bos is the first token the post-processor
 * puts before the text and eos the first added token among &lt;/s&gt;, &lt;|end_of_text|&gt;,
 * &lt;|endoftext|&gt; (Llama 2: 1 and 2). Immutable and thread-safe; the word cache is concurrent.
 */
public final class HfTokenizer implements Tokenizer {
    private final AddedVocabulary added;
    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final Bpe model;
    private final int[] prefix;
    private final int[] suffix;
    private final Decoder decoder;
    private final String[] tokens;
    private final BitSet special;
    private final int bos;
    private final int eos;

    HfTokenizer(AddedVocabulary added, Normalizer normalizer, PreTokenizer preTokenizer, Bpe model, int[] prefix,
                int[] suffix, Decoder decoder, String[] tokens, BitSet special, int bos, int eos) {
        this.added = added;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.prefix = prefix;
        this.suffix = suffix;
        this.decoder = decoder;
        this.tokens = tokens;
        this.special = special;
        this.bos = bos;
        this.eos = eos;
    }

    /** Reads a {@code tokenizer.json}, and {@code bos_token} / {@code eos_token} of a sibling tokenizer_config.json. */
    public static HfTokenizer load(Path file) throws IOException {
        return HfTokenizerReader.read(file);
    }

    /** Reads the text of a {@code tokenizer.json}; {@code source} names it in error messages. */
    public static HfTokenizer parse(String json, String source) throws TokenizerFormatException {
        return HfTokenizerReader.parse(json, source, null);
    }

    /**
     * GPT-2's tokenizer from its original files, as Hugging Face's {@code gpt2} tokenizer.json has it: byte-level
     * BPE over GPT-2's word regex, no prefix space, &lt;|endoftext|&gt; a special token and both bos and eos.
     */
    public static HfTokenizer gpt2(Path encoderJson, Path vocabBpe) throws IOException {
        return HfTokenizerReader.gpt2(encoderJson, vocabBpe);
    }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        String t = wellFormed(text);
        IntBuffer out = new IntBuffer(t.length() / 3 + 8);
        if (addSpecial) {
            out.addAll(prefix);
        }
        List<String> words = new ArrayList<>();
        for (AddedVocabulary.Segment s : added.splitRaw(t)) {
            if (s.token() != null) {
                out.add(s.token().id());
                continue;
            }
            String normalized = normalizer == null ? s.text() : normalizer.apply(s.text());
            for (AddedVocabulary.Segment u : added.splitNormalized(normalized)) {
                if (u.token() != null) {
                    out.add(u.token().id());
                } else if (preTokenizer == null) {
                    out.addAll(model.encode(u.text()));
                } else {
                    words.clear();
                    preTokenizer.split(u.text(), words);
                    for (String w : words) {
                        out.addAll(model.encode(w));
                    }
                }
            }
        }
        if (addSpecial) {
            out.addAll(suffix);
        }
        return out.toArray();
    }

    @Override
    public byte[] decodeBytes(int[] ids, boolean skipSpecial) {
        List<byte[]> pieces = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (id >= 0 && id < tokens.length && tokens[id] != null && !(skipSpecial && special.get(id))) {
                pieces.add(tokens[id].getBytes(StandardCharsets.UTF_8));
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (decoder == null) {
            for (int i = 0; i < pieces.size(); i++) {
                if (i > 0) {
                    out.write(' ');
                }
                out.writeBytes(pieces.get(i));
            }
        } else {
            decoder.apply(pieces).forEach(out::writeBytes);
        }
        return out.toByteArray();
    }

    @Override
    public int vocabSize() {
        return tokens.length;
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }

    /** The token string of {@code id} as the file writes it (byte-level characters, "▁"...), or null if none. */
    public String token(int id) {
        return id >= 0 && id < tokens.length ? tokens[id] : null;
    }

    /** {@code text} with every unpaired surrogate replaced by U+FFFD. */
    private static String wellFormed(String text) {
        StringBuilder sb = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            boolean bad = Character.isHighSurrogate(c)
                    ? i + 1 >= text.length() || !Character.isLowSurrogate(text.charAt(i + 1))
                    : Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(text.charAt(i - 1)));
            if (bad && sb == null) {
                sb = new StringBuilder(text.length()).append(text, 0, i);
            }
            if (sb != null) {
                sb.append(bad ? '\uFFFD' : c);
            }
        }
        return sb == null ? text : sb.toString();
    }
}
