package jtune.test;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A test fixture in the safetensors format, read whole from the test classpath: an 8-byte little-endian header
 * length, a JSON header mapping each tensor name to its dtype, shape and data offsets (plus string pairs under
 * "__metadata__"), then the raw little-endian data. Minimal on purpose: F32 and I32 only, it trusts the file
 * (our own fixtures, written by src-test/src/test/python/make_llama_fixtures.py) and checks only what a
 * mistake in a test would trip over. Independent of jtune's own reader, which it therefore does not vouch for.
 */
final class SafetensorsFixture {
    private record Entry(String dtype, long[] shape, int begin, int end) {
    }

    private final String source;
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private final Map<String, Entry> entries = new LinkedHashMap<>();
    private final ByteBuffer data;

    private SafetensorsFixture(String source, byte[] file) {
        this.source = source;
        ByteBuffer all = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        int headerBytes = Math.toIntExact(all.getLong(0));
        String header = new String(file, 8, headerBytes, StandardCharsets.UTF_8);
        data = all.slice(8 + headerBytes, file.length - 8 - headerBytes).order(ByteOrder.LITTLE_ENDIAN);
        Map<?, ?> json = (Map<?, ?>) new Json(header).value();
        for (Map.Entry<?, ?> e : json.entrySet()) {
            String name = (String) e.getKey();
            Map<?, ?> fields = (Map<?, ?>) e.getValue();
            if (name.equals("__metadata__")) {
                fields.forEach((k, v) -> metadata.put((String) k, (String) v));
                continue;
            }
            List<?> dims = (List<?>) fields.get("shape");
            List<?> offsets = (List<?>) fields.get("data_offsets");
            entries.put(name, new Entry((String) fields.get("dtype"),
                    dims.stream().mapToLong(d -> (Long) d).toArray(),
                    Math.toIntExact((Long) offsets.get(0)), Math.toIntExact((Long) offsets.get(1))));
        }
    }

    /** Reads {@code /fixtures/<file>} from the test classpath. */
    static SafetensorsFixture load(String file) {
        String resource = "/fixtures/" + file;
        try (InputStream in = SafetensorsFixture.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("fixture " + resource + " is not on the test classpath; regenerate "
                        + "it with src-test/src/test/python/make_llama_fixtures.py");
            }
            return new SafetensorsFixture(resource, in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    String meta(String key) {
        String v = metadata.get(key);
        if (v == null) {
            throw new IllegalArgumentException(source + " has no metadata '" + key + "'");
        }
        return v;
    }

    boolean hasMeta(String key) {
        return metadata.containsKey(key);
    }

    int metaInt(String key) {
        return Integer.parseInt(meta(key));
    }

    double metaDouble(String key) {
        return Double.parseDouble(meta(key));
    }

    boolean metaBoolean(String key) {
        return Boolean.parseBoolean(meta(key));
    }

    /** Tensor names in file order. */
    List<String> names() {
        return List.copyOf(entries.keySet());
    }

    long[] shape(String name) {
        return entry(name).shape().clone();
    }

    float[] floats(String name) {
        Entry e = entry(name, "F32");
        float[] out = new float[(e.end() - e.begin()) / Float.BYTES];
        data.slice(e.begin(), e.end() - e.begin()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    int[] ints(String name) {
        Entry e = entry(name, "I32");
        int[] out = new int[(e.end() - e.begin()) / Integer.BYTES];
        data.slice(e.begin(), e.end() - e.begin()).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
        return out;
    }

    /** A scalar (shape []) or one-element F32 tensor. */
    float scalar(String name) {
        float[] v = floats(name);
        if (v.length != 1) {
            throw new IllegalArgumentException(source + ": '" + name + "' has " + v.length + " elements, not 1");
        }
        return v[0];
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new IllegalArgumentException(source + " has no tensor '" + name + "'");
        }
        return e;
    }

    private Entry entry(String name, String dtype) {
        Entry e = entry(name);
        long elements = 1;
        for (long d : e.shape()) {
            elements *= d;
        }
        if (!e.dtype().equals(dtype) || elements * 4 != e.end() - e.begin()) {
            throw new IllegalArgumentException(source + ": '" + name + "' is " + e.dtype() + ", "
                    + (e.end() - e.begin()) + " bytes for shape " + Arrays.toString(e.shape()) + "; wanted " + dtype);
        }
        return e;
    }

    /** Recursive descent over the JSON a safetensors header uses: objects, arrays, strings, integers, literals. */
    private static final class Json {
        private final String s;
        private int at;

        Json(String s) {
            this.s = s;
        }

        Object value() {
            skipSpace();
            char c = s.charAt(at);
            return switch (c) {
                case '{' -> object();
                case '[' -> array();
                case '"' -> string();
                case 't', 'f', 'n' -> literal();
                default -> number();
            };
        }

        private Map<String, Object> object() {
            Map<String, Object> m = new LinkedHashMap<>();
            expect('{');
            if (peek() == '}') {
                at++;
                return m;
            }
            do {
                skipSpace();
                String key = string();
                expect(':');
                m.put(key, value());
            } while (comma('}'));
            return m;
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            expect('[');
            if (peek() == ']') {
                at++;
                return list;
            }
            do {
                list.add(value());
            } while (comma(']'));
            return list;
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            for (char c = s.charAt(at++); c != '"'; c = s.charAt(at++)) {
                if (c == '\\') {
                    char e = s.charAt(at++);
                    switch (e) {
                        case 'n' -> b.append('\n');
                        case 't' -> b.append('\t');
                        case 'r' -> b.append('\r');
                        case 'b' -> b.append('\b');
                        case 'f' -> b.append('\f');
                        case 'u' -> {
                            b.append((char) Integer.parseInt(s.substring(at, at + 4), 16));
                            at += 4;
                        }
                        default -> b.append(e);
                    }
                } else {
                    b.append(c);
                }
            }
            return b.toString();
        }

        private Object number() {
            int start = at;
            while (at < s.length() && "+-0123456789.eE".indexOf(s.charAt(at)) >= 0) {
                at++;
            }
            String n = s.substring(start, at);
            if (n.isEmpty()) {
                throw new IllegalArgumentException("JSON: unexpected '" + s.charAt(at) + "' at " + at);
            }
            return n.matches("-?\\d+") ? (Object) Long.parseLong(n) : (Object) Double.parseDouble(n);
        }

        private Object literal() {
            for (String word : new String[]{"true", "false", "null"}) {
                if (s.startsWith(word, at)) {
                    at += word.length();
                    return word.equals("null") ? null : Boolean.valueOf(word);
                }
            }
            throw new IllegalArgumentException("JSON: unexpected literal at " + at);
        }

        /** After an element: true on ',', false on {@code close}. */
        private boolean comma(char close) {
            char c = peek();
            at++;
            if (c == ',' || c == close) {
                return c == ',';
            }
            throw new IllegalArgumentException("JSON: expected ',' or '" + close + "' at " + (at - 1));
        }

        private void expect(char c) {
            if (peek() != c) {
                throw new IllegalArgumentException("JSON: expected '" + c + "' at " + at);
            }
            at++;
        }

        private char peek() {
            skipSpace();
            return s.charAt(at);
        }

        private void skipSpace() {
            while (at < s.length() && Character.isWhitespace(s.charAt(at))) {
                at++;
            }
        }
    }
}
