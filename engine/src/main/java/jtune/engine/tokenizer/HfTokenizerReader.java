package jtune.engine.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import java.util.regex.Pattern;
import jtune.engine.io.Json;

/**
 * Reads {@code tokenizer.json} (and GPT-2's {@code encoder.json} + {@code vocab.bpe}) into an {@link HfTokenizer},
 * checking every field it uses: a malformed file, an inconsistent one (a merge naming an unknown token, an id out
 * of range, two tokens with one id) or one using a component or option outside what LLaMA-family files use ends in
 * a {@link TokenizerFormatException} whose one sentence names the file, the place in it and the fault.
 *
 * <p>Supported: model BPE (merges as "a b" strings or ["a", "b"] pairs, byte_fallback, fuse_unk, unk_token,
 * ignore_merges; no dropout, an empty or no subword prefix and suffix); normalizers Sequence, Prepend, Replace, NFC;
 * pre-tokenizers Sequence, Split (behaviour Isolated, not inverted), ByteLevel; post-processors TemplateProcessing,
 * ByteLevel, Sequence; decoders Sequence, Replace (with a string pattern), ByteFallback, Fuse, Strip, ByteLevel;
 * added tokens with all their flags. Padding and truncation settings are ignored (they concern batches).
 */
final class HfTokenizerReader {
    /** Largest id accepted, so that a hostile id cannot make the id table huge. */
    static final int MAX_ID = (1 << 22) - 1;
    private static final long MAX_FILE_BYTES = 1L << 30;
    private static final String MARKER = String.valueOf(Bpe.MARKER);
    private static final List<String> EOS_NAMES = List.of("</s>", "<|end_of_text|>", "<|endoftext|>");

    private final String file;

    private HfTokenizerReader(String file) {
        this.file = file;
    }

    static HfTokenizer read(Path path) throws IOException {
        String json = readText(path);
        Path config = path.resolveSibling("tokenizer_config.json");
        return parse(json, path.toString(), Files.isRegularFile(config) ? config : null);
    }

    /** Parses a tokenizer.json text; with {@code config}, bos and eos come from that tokenizer_config.json. */
    static HfTokenizer parse(String json, String source, Path config) throws TokenizerFormatException {
        HfTokenizerReader r = new HfTokenizerReader(source);
        Map<String, Object> root = r.object(r.parseJson(json), "the top level");
        Map<String, Object> modelNode = r.object(r.required(root, "model", "the top level"), "model");
        Map<String, Integer> vocab = r.vocab(r.required(modelNode, "vocab", "model"), "model.vocab");
        List<AddedVocabulary.AddedToken> addedTokens = r.addedTokens(root.get("added_tokens"));
        String[] tokens = tokenTable(vocab, addedTokens);
        BitSet special = new BitSet();
        addedTokens.stream().filter(AddedVocabulary.AddedToken::special).forEach(t -> special.set(t.id()));

        Normalizer normalizer = r.normalizer(root.get("normalizer"), "normalizer");
        PreTokenizer preTokenizer = r.preTokenizer(root.get("pre_tokenizer"), "pre_tokenizer");
        Bpe model = r.model(modelNode, vocab);
        int[][] template = r.postProcessor(root.get("post_processor"), "post_processor", tokens);
        Decoder decoder = r.decoder(root.get("decoder"), "decoder");

        int bos = template[0].length > 0 ? template[0][0] : -1;
        int eos = EOS_NAMES.stream().flatMap(n -> addedTokens.stream().filter(t -> t.content().equals(n)))
                .mapToInt(AddedVocabulary.AddedToken::id).findFirst().orElse(-1);
        if (config != null) {
            HfTokenizerReader c = new HfTokenizerReader(config.toString());
            Map<String, Object> cfg = c.object(c.parseJson(readConfig(config)), "the top level");
            bos = cfg.containsKey("bos_token") ? c.tokenId(cfg.get("bos_token"), "bos_token", vocab, addedTokens) : bos;
            eos = cfg.containsKey("eos_token") ? c.tokenId(cfg.get("eos_token"), "eos_token", vocab, addedTokens) : eos;
        }
        return new HfTokenizer(new AddedVocabulary(addedTokens, normalizer), normalizer, preTokenizer, model,
                template[0], template[1], decoder, tokens, special, bos, eos);
    }

    static HfTokenizer gpt2(Path encoderJson, Path vocabBpe) throws IOException {
        HfTokenizerReader e = new HfTokenizerReader(encoderJson.toString());
        Map<String, Integer> vocab = e.vocab(e.parseJson(readText(encoderJson)), "the top level");
        Integer eot = vocab.get("<|endoftext|>");
        if (eot == null) {
            throw e.fail("the top level", "has no \"<|endoftext|>\" token, which GPT-2's vocabulary ends with");
        }
        HfTokenizerReader m = new HfTokenizerReader(vocabBpe.toString());
        String[] lines = readText(vocabBpe).split("\n");
        int skip = lines.length > 0 && lines[0].startsWith("#version") ? 1 : 0;
        List<Object> merges = new ArrayList<>();
        for (int i = skip; i < lines.length; i++) {
            merges.add(lines[i].endsWith("\r") ? lines[i].substring(0, lines[i].length() - 1) : lines[i]);
        }
        List<AddedVocabulary.AddedToken> added = List.of(
                new AddedVocabulary.AddedToken(eot, "<|endoftext|>", true, true, false, false, false));
        Merges pairs = m.merges(merges, i -> "line " + (i + 1 + skip), vocab);
        Bpe model = new Bpe(vocab, pairs.triples(), null, -1, false, false, pairs.crossMarkers());
        BitSet special = new BitSet();
        special.set(eot);
        return new HfTokenizer(new AddedVocabulary(added, null), null, new PreTokenizer.ByteLevelWords(false, true),
                model, new int[0], new int[0], new Decoder.ByteLevelBytes(), tokenTable(vocab, added), special, eot, eot);
    }

    // ---- components ---------------------------------------------------------------------------------------

    private Map<String, Integer> vocab(Object node, String where) throws TokenizerFormatException {
        Map<String, Object> m = object(node, where);
        Map<String, Integer> vocab = new HashMap<>(m.size() * 2);
        BitSet seen = new BitSet();
        for (Map.Entry<String, Object> e : m.entrySet()) {
            int id = id(e.getValue(), where + "[\"" + shorten(e.getKey()) + "\"]");
            if (seen.get(id)) {
                String other = vocab.entrySet().stream().filter(x -> x.getValue() == id).findFirst().orElseThrow()
                        .getKey();
                throw fail(where, "gives id " + id + " to both \"" + shorten(other) + "\" and \""
                        + shorten(e.getKey()) + "\"");
            }
            seen.set(id);
            vocab.put(e.getKey(), id);
        }
        return vocab;
    }

    private List<AddedVocabulary.AddedToken> addedTokens(Object node) throws TokenizerFormatException {
        List<AddedVocabulary.AddedToken> out = new ArrayList<>();
        if (node == null) {
            return out;
        }
        List<Object> list = array(node, "added_tokens");
        for (int i = 0; i < list.size(); i++) {
            String where = "added_tokens[" + i + "]";
            Map<String, Object> t = object(list.get(i), where);
            int id = id(required(t, "id", where), where + ".id");
            String content = string(required(t, "content", where), where + ".content");
            if (content.isEmpty()) {
                throw fail(where + ".content", "is empty; an added token needs at least one character");
            }
            boolean special = bool(t, "special", where, false);
            out.add(new AddedVocabulary.AddedToken(id, content, special, bool(t, "normalized", where, !special),
                    bool(t, "lstrip", where, false), bool(t, "rstrip", where, false),
                    bool(t, "single_word", where, false)));
        }
        return out;
    }

    private Bpe model(Map<String, Object> m, Map<String, Integer> vocab) throws TokenizerFormatException {
        String type = m.get("type") == null ? "BPE" : string(m.get("type"), "model.type");
        if (!type.equals("BPE")) {
            throw unsupported("model", "type \"" + type + "\"", "BPE");
        }
        Object dropout = m.get("dropout");
        if (dropout != null && !(dropout instanceof Number n && n.doubleValue() == 0)) {
            throw fail("model.dropout", "is " + describe(dropout)
                    + ", but BPE dropout (random merges for training) is not supported; it must be null");
        }
        for (String affix : List.of("continuing_subword_prefix", "end_of_word_suffix")) {
            Object v = m.get(affix);
            if (v != null && !"".equals(v)) {
                throw fail("model." + affix, "is " + describe(v) + ", which is not supported; it must be null or \"\"");
            }
        }
        int unk = -1;
        Object unkToken = m.get("unk_token");
        if (unkToken != null) {
            Integer id = vocab.get(string(unkToken, "model.unk_token"));
            if (id == null) {
                throw fail("model.unk_token", "names \"" + shorten((String) unkToken) + "\", which is not in model.vocab");
            }
            unk = id;
        }
        int[] byteIds = null;
        if (bool(m, "byte_fallback", "model", false)) {
            byteIds = new int[256];
            for (int b = 0; b < 256; b++) {
                Integer id = vocab.get(String.format("<0x%02X>", b));
                if (id == null) {
                    throw fail("model.vocab", String.format("lacks the byte token <0x%02X>, which byte_fallback needs", b));
                }
                byteIds[b] = id;
            }
        }
        Merges merges = merges(array(required(m, "merges", "model"), "model.merges"), i -> "model.merges[" + i + "]",
                vocab);
        return new Bpe(vocab, merges.triples(), byteIds, unk, bool(m, "fuse_unk", "model", false),
                bool(m, "ignore_merges", "model", false), merges.crossMarkers());
    }

    /**
     * Merges as (left id, right id, merged id) triples, and whether one joins a left token not ending in "▁" to a
     * right token starting with it (see {@link Bpe}).
     */
    private record Merges(int[] triples, boolean crossMarkers) {
    }

    /** Reads merges; {@code place} names merge i in messages. */
    private Merges merges(List<Object> list, IntFunction<String> place, Map<String, Integer> vocab)
            throws TokenizerFormatException {
        int[] out = new int[3 * list.size()];
        boolean crossMarkers = false;
        for (int i = 0; i < list.size(); i++) {
            String at = place.apply(i);
            String a;
            String b;
            if (list.get(i) instanceof List<?> pair) {
                if (pair.size() != 2) {
                    throw fail(at, "has " + pair.size() + " elements; a merge is a pair of tokens");
                }
                a = string(pair.get(0), at + "[0]");
                b = string(pair.get(1), at + "[1]");
            } else {
                String s = string(list.get(i), at);
                int space = s.indexOf(' ');
                if (space < 0 || s.indexOf(' ', space + 1) >= 0) {
                    throw fail(at, "\"" + shorten(s) + "\" is not two tokens separated by one space");
                }
                a = s.substring(0, space);
                b = s.substring(space + 1);
            }
            crossMarkers |= !a.isEmpty() && a.charAt(a.length() - 1) != Bpe.MARKER && b.startsWith(MARKER);
            String[] parts = {a, b, a + b};
            for (int k = 0; k < 3; k++) {
                Integer id = vocab.get(parts[k]);
                if (id == null) {
                    throw fail(at, "needs the token \"" + shorten(parts[k]) + "\", which is not in the vocabulary");
                }
                out[3 * i + k] = id;
            }
        }
        return new Merges(out, crossMarkers);
    }

    private Normalizer normalizer(Object node, String where) throws TokenizerFormatException {
        if (node == null) {
            return null;
        }
        Map<String, Object> m = object(node, where);
        String type = type(m, where);
        return switch (type) {
            case "Sequence" -> new Normalizer.Sequence(sequence(m, "normalizers", where, this::normalizer));
            case "Prepend" -> new Normalizer.Prepend(string(required(m, "prepend", where), where + ".prepend"));
            case "Replace" -> new Normalizer.Replace(pattern(required(m, "pattern", where), where + ".pattern"),
                    string(required(m, "content", where), where + ".content"));
            case "NFC" -> new Normalizer.Nfc();
            default -> throw unsupported(where, "type \"" + type + "\"", "Sequence, Prepend, Replace, NFC");
        };
    }

    private PreTokenizer preTokenizer(Object node, String where) throws TokenizerFormatException {
        if (node == null) {
            return null;
        }
        Map<String, Object> m = object(node, where);
        String type = type(m, where);
        return switch (type) {
            case "Sequence" -> new PreTokenizer.Sequence(sequence(m, "pretokenizers", where, this::preTokenizer));
            case "Split" -> {
                Pattern p = pattern(required(m, "pattern", where), where + ".pattern");
                String behavior = string(required(m, "behavior", where), where + ".behavior");
                if (!behavior.equals("Isolated")) {
                    throw unsupported(where + ".behavior", "\"" + behavior + "\"", "Isolated");
                }
                if (bool(m, "invert", where, false)) {
                    throw fail(where + ".invert", "is true, which is not supported; it must be false");
                }
                yield new PreTokenizer.Split(p);
            }
            case "ByteLevel" -> {
                required(m, "add_prefix_space", where);
                yield new PreTokenizer.ByteLevelWords(bool(m, "add_prefix_space", where, false),
                        bool(m, "use_regex", where, true));
            }
            default -> throw unsupported(where, "type \"" + type + "\"", "Sequence, Split, ByteLevel");
        };
    }

    /** The ids the post-processor puts before ([0]) and after ([1]) a single sequence. */
    private int[][] postProcessor(Object node, String where, String[] tokens) throws TokenizerFormatException {
        if (node == null) {
            return new int[][] {{}, {}};
        }
        Map<String, Object> m = object(node, where);
        String type = type(m, where);
        return switch (type) {
            case "ByteLevel" -> new int[][] {{}, {}};
            case "TemplateProcessing" -> template(m, where, tokens);
            case "Sequence" -> {
                List<Object> list = array(required(m, "processors", where), where + ".processors");
                int[] before = {};
                int[] after = {};
                for (int i = 0; i < list.size(); i++) {
                    String at = where + ".processors[" + i + "]";
                    int[][] t = postProcessor(nonNull(list.get(i), at), at, tokens);
                    before = concat(t[0], before);
                    after = concat(after, t[1]);
                }
                yield new int[][] {before, after};
            }
            default -> throw unsupported(where, "type \"" + type + "\"", "TemplateProcessing, ByteLevel, Sequence");
        };
    }

    private int[][] template(Map<String, Object> m, String where, String[] tokens) throws TokenizerFormatException {
        Map<String, Object> specials = object(required(m, "special_tokens", where), where + ".special_tokens");
        List<Object> single = array(required(m, "single", where), where + ".single");
        IntBuffer before = new IntBuffer(2);
        IntBuffer after = new IntBuffer(2);
        boolean seenA = false;
        for (int i = 0; i < single.size(); i++) {
            String at = where + ".single[" + i + "]";
            Map<String, Object> item = object(single.get(i), at);
            if (item.size() != 1 || !(item.containsKey("SpecialToken") || item.containsKey("Sequence"))) {
                throw fail(at, "must be {\"SpecialToken\": {...}} or {\"Sequence\": {...}}");
            }
            String kind = item.keySet().iterator().next();
            Map<String, Object> piece = object(item.get(kind), at + "." + kind);
            String name = string(required(piece, "id", at + "." + kind), at + "." + kind + ".id");
            if (kind.equals("Sequence")) {
                if (!name.equals("A") || seenA) {
                    throw fail(at, "is sequence \"" + shorten(name)
                            + "\"; a single-sequence template holds sequence \"A\" exactly once");
                }
                seenA = true;
                continue;
            }
            String sat = where + ".special_tokens[\"" + shorten(name) + "\"]";
            Object entry = specials.get(name);
            if (entry == null) {
                throw fail(at, "names the special token \"" + shorten(name) + "\", which special_tokens lacks");
            }
            List<Object> ids = array(required(object(entry, sat), "ids", sat), sat + ".ids");
            for (int k = 0; k < ids.size(); k++) {
                int id = id(ids.get(k), sat + ".ids[" + k + "]");
                if (id >= tokens.length || tokens[id] == null) {
                    throw fail(sat + ".ids[" + k + "]", "is " + id + ", which is no token of this tokenizer");
                }
                (seenA ? after : before).add(id);
            }
        }
        if (!seenA) {
            throw fail(where + ".single", "lacks the sequence \"A\"");
        }
        return new int[][] {before.toArray(), after.toArray()};
    }

    private Decoder decoder(Object node, String where) throws TokenizerFormatException {
        if (node == null) {
            return null;
        }
        Map<String, Object> m = object(node, where);
        String type = type(m, where);
        return switch (type) {
            case "Sequence" -> new Decoder.Sequence(sequence(m, "decoders", where, this::decoder));
            case "Replace" -> {
                Map<String, Object> p = object(required(m, "pattern", where), where + ".pattern");
                if (p.size() != 1 || !(p.get("String") instanceof String from) || from.isEmpty()) {
                    throw fail(where + ".pattern", "must be {\"String\": \"...\"} with a non-empty string"
                            + " (a decoder's Replace supports no Regex)");
                }
                yield new Decoder.Replace(from, string(required(m, "content", where), where + ".content"));
            }
            case "ByteFallback" -> new Decoder.ByteFallback();
            case "Fuse" -> new Decoder.Fuse();
            case "Strip" -> {
                String content = string(required(m, "content", where), where + ".content");
                if (content.codePointCount(0, content.length()) != 1) {
                    throw fail(where + ".content", "must be exactly one character");
                }
                yield new Decoder.Strip(content, count(required(m, "start", where), where + ".start"),
                        count(required(m, "stop", where), where + ".stop"));
            }
            case "ByteLevel" -> new Decoder.ByteLevelBytes();
            default -> throw unsupported(where, "type \"" + type + "\"",
                    "Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel");
        };
    }

    /** A {"String": s} or {"Regex": r} pattern (Oniguruma syntax, see {@link OnigurumaRegex}). */
    private Pattern pattern(Object node, String where) throws TokenizerFormatException {
        Map<String, Object> p = object(node, where);
        if (p.size() != 1 || !(p.containsKey("String") || p.containsKey("Regex"))) {
            throw fail(where, "must be {\"String\": \"...\"} or {\"Regex\": \"...\"}");
        }
        boolean literal = p.containsKey("String");
        String s = string(p.get(literal ? "String" : "Regex"), where + (literal ? ".String" : ".Regex"));
        if (s.isEmpty()) {
            throw fail(where, "is empty; a pattern must match at least one character");
        }
        if (literal) {
            return Pattern.compile(Pattern.quote(s));
        }
        try {
            return OnigurumaRegex.compile(s);
        } catch (IllegalArgumentException e) {
            throw fail(where + ".Regex", "is not usable: " + e.getMessage());
        }
    }

    /** A token named by tokenizer_config.json: a string, {"content": string} or null (none). */
    private int tokenId(Object node, String where, Map<String, Integer> vocab,
                        List<AddedVocabulary.AddedToken> added) throws TokenizerFormatException {
        if (node == null) {
            return -1;
        }
        Object content = node instanceof Map<?, ?> m ? m.get("content") : node;
        String name = string(content, where);
        for (AddedVocabulary.AddedToken t : added) {
            if (t.content().equals(name)) {
                return t.id();
            }
        }
        Integer id = vocab.get(name);
        if (id == null) {
            throw fail(where, "names \"" + shorten(name) + "\", which is not a token of the tokenizer.json beside it");
        }
        return id;
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private static String[] tokenTable(Map<String, Integer> vocab, List<AddedVocabulary.AddedToken> added) {
        int size = 0;
        for (int id : vocab.values()) {
            size = Math.max(size, id + 1);
        }
        for (AddedVocabulary.AddedToken t : added) {
            size = Math.max(size, t.id() + 1);
        }
        String[] tokens = new String[size];
        vocab.forEach((token, id) -> tokens[id] = token);
        added.forEach(t -> tokens[t.id()] = t.content());
        return tokens;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static String readText(Path path) throws IOException {
        if (Files.size(path) > MAX_FILE_BYTES) {
            throw new TokenizerFormatException(path + " is " + Files.size(path) + " bytes, more than the "
                    + MAX_FILE_BYTES + " a tokenizer file may have");
        }
        byte[] bytes = Files.readAllBytes(path);
        String text = new String(bytes, StandardCharsets.UTF_8);
        if (text.indexOf('\uFFFD') >= 0) {
            try {
                StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes));
            } catch (CharacterCodingException e) {
                throw new TokenizerFormatException(path + " is not valid UTF-8 text", e);
            }
        }
        return text;
    }

    private static String readConfig(Path config) throws TokenizerFormatException {
        try {
            return readText(config);
        } catch (TokenizerFormatException e) {
            throw e;
        } catch (IOException e) {
            throw new TokenizerFormatException(config + " cannot be read: " + e.getMessage(), e);
        }
    }

    private Object parseJson(String text) throws TokenizerFormatException {
        try {
            return Json.parse(text);
        } catch (Json.JsonException e) {
            throw new TokenizerFormatException(file + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    private Object required(Map<String, Object> m, String key, String where) throws TokenizerFormatException {
        Object v = m.get(key);
        if (v == null) {
            throw fail(where, "lacks \"" + key + "\"" + (m.containsKey(key) ? " (it is null)" : ""));
        }
        return v;
    }

    private String type(Map<String, Object> m, String where) throws TokenizerFormatException {
        return string(required(m, "type", where), where + ".type");
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> object(Object v, String where) throws TokenizerFormatException {
        if (!(v instanceof Map)) {
            throw fail(where, "must be an object, not " + describe(v));
        }
        return (Map<String, Object>) v;
    }

    @SuppressWarnings("unchecked")
    private List<Object> array(Object v, String where) throws TokenizerFormatException {
        if (!(v instanceof List)) {
            throw fail(where, "must be an array, not " + describe(v));
        }
        return (List<Object>) v;
    }

    private String string(Object v, String where) throws TokenizerFormatException {
        if (!(v instanceof String s)) {
            throw fail(where, "must be a string, not " + describe(v));
        }
        return s;
    }

    private boolean bool(Map<String, Object> m, String key, String where, boolean absent)
            throws TokenizerFormatException {
        Object v = m.get(key);
        if (v == null) {
            return absent;
        }
        if (!(v instanceof Boolean b)) {
            throw fail(where + "." + key, "must be true or false, not " + describe(v));
        }
        return b;
    }

    private int id(Object v, String where) throws TokenizerFormatException {
        if (!(v instanceof Long n) || n < 0 || n > MAX_ID) {
            throw fail(where, "must be a token id, an integer from 0 to " + MAX_ID + ", not " + describe(v));
        }
        return (int) (long) n;
    }

    private int count(Object v, String where) throws TokenizerFormatException {
        if (!(v instanceof Long n) || n < 0 || n > Integer.MAX_VALUE) {
            throw fail(where, "must be a non-negative integer, not " + describe(v));
        }
        return (int) (long) n;
    }

    /** Reads one component of a pipeline (a normalizer, pre-tokenizer or decoder) at {@code where}. */
    @FunctionalInterface
    private interface Component<T> {
        T read(Object node, String where) throws TokenizerFormatException;
    }

    /** The components listed under {@code key} of a "Sequence" node, none of them null. */
    private <T> List<T> sequence(Map<String, Object> m, String key, String where, Component<T> component)
            throws TokenizerFormatException {
        List<Object> list = array(required(m, key, where), where + "." + key);
        List<T> steps = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String at = where + "." + key + "[" + i + "]";
            steps.add(nonNull(component.read(list.get(i), at), at));
        }
        return List.copyOf(steps);
    }

    private <T> T nonNull(T v, String where) throws TokenizerFormatException {
        if (v == null) {
            throw fail(where, "is null; a sequence needs a component at each place");
        }
        return v;
    }

    private TokenizerFormatException fail(String where, String what) {
        return new TokenizerFormatException(file + ": " + where + " " + what + ".");
    }

    private TokenizerFormatException unsupported(String where, String what, String supported) {
        return fail(where, "is " + what + ", which jtune does not support (supported: " + supported + ")");
    }

    private static String describe(Object v) {
        return switch (v) {
            case null -> "null";
            case String s -> "the string \"" + shorten(s) + "\"";
            case Number n -> "the number " + n;
            case Boolean b -> b.toString();
            default -> "an " + Json.typeName(v);
        };
    }

    private static String shorten(String s) {
        return s.length() > 60 ? s.substring(0, 60) + "..." : s;
    }
}
