package jtune.engine.io;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.io.SafeTensors.Entry;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.tensor.Tensor;

/**
 * Reads a safetensors file after validating its whole header: the header length lies within the file, the
 * header is well-formed UTF-8 JSON, every entry has a known dtype, a shape of non-negative integers and byte
 * offsets consistent with them, and the entries tile the data area exactly (inside it, no overlap, no gap,
 * nothing after). Any fault is one {@link FormatException} sentence naming the file. Tensor bytes are read on
 * request into tensors the caller allocates.
 */
public final class SafeTensorsReader implements AutoCloseable {
    private static final int CHUNK = 1 << 26;

    private final Path file;
    private final FileChannel channel;
    private final long dataStart;
    private final Header header;

    /** What a validated header holds: the metadata and the entries, in header order. */
    public record Header(Map<String, String> metadata, Map<String, Entry> entries) {
    }

    private SafeTensorsReader(Path file, FileChannel channel, long dataStart, Header header) {
        this.file = file;
        this.channel = channel;
        this.dataStart = dataStart;
        this.header = header;
    }

    /** Opens and validates {@code file}; the file stays open until {@link #close()}. */
    public static SafeTensorsReader open(Path file) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.READ);
        try {
            long size = ch.size();
            if (size < 8) {
                throw new FormatException(file + " is not a safetensors file: it holds " + size
                        + " bytes, fewer than the 8 of the header length");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, len, 0, file);
            long n = len.flip().getLong();
            if (n < 2 || n > size - 8 || n > SafeTensors.MAX_HEADER_BYTES) {
                throw new FormatException(file + " is not a valid safetensors file: its header length "
                        + Long.toUnsignedString(n) + " does not fit in the file's " + size + " bytes (or exceeds "
                        + SafeTensors.MAX_HEADER_BYTES + ")");
            }
            ByteBuffer json = ByteBuffer.allocate((int) n);
            readFully(ch, json, 8, file);
            Header h = parseHeader(file.toString(), json.array(), size - 8 - n);
            return new SafeTensorsReader(file, ch, 8 + n, h);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * Validates a header's bytes against a data area of {@code dataBytes} bytes; {@code source} names the file in
     * messages.
     */
    public static Header parseHeader(String source, byte[] bytes, long dataBytes) throws FormatException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new FormatException(source + ": the safetensors header is not valid UTF-8");
        }
        Map<String, Object> root;
        try {
            root = Json.parseObject(text);
        } catch (Json.JsonException e) {
            throw new FormatException(source + ": the safetensors header is not valid JSON (" + e.getMessage() + ")");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : root.entrySet()) {
            if (e.getKey().equals(SafeTensors.METADATA_KEY)) {
                metadata = metadata(source, e.getValue());
            } else {
                entries.put(e.getKey(), entry(source, e.getKey(), e.getValue()));
            }
        }
        checkTiling(source, entries.values(), dataBytes);
        return new Header(Collections.unmodifiableMap(metadata), Collections.unmodifiableMap(entries));
    }

    private static Map<String, String> metadata(String source, Object v) throws FormatException {
        if (!(v instanceof Map<?, ?> m)) {
            throw new FormatException(source + ": \"__metadata__\" must be an object of strings, got " + Json.typeName(v));
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw new FormatException(source + ": metadata value of \"" + e.getKey() + "\" must be a string, got "
                        + Json.typeName(e.getValue()));
            }
            out.put((String) e.getKey(), s);
        }
        return out;
    }

    private static Entry entry(String source, String name, Object v) throws FormatException {
        String where = source + ": tensor '" + name + "'";
        if (!(v instanceof Map<?, ?> m)) {
            throw new FormatException(where + " must be described by an object, got " + Json.typeName(v));
        }
        for (Object key : m.keySet()) {
            if (!key.equals("dtype") && !key.equals("shape") && !key.equals("data_offsets")) {
                throw new FormatException(where + " has an unknown field \"" + key
                        + "\"; the fields are dtype, shape, data_offsets");
            }
        }
        if (!(m.get("dtype") instanceof String typeName)) {
            throw new FormatException(where + " needs a string \"dtype\"");
        }
        SafeTensors.Type type = SafeTensors.Type.parse(typeName);
        if (type == null) {
            throw new FormatException(where + " has unknown dtype \"" + typeName + "\"");
        }
        long[] dims = longs(where, "shape", m.get("shape"), -1);
        long[] range = longs(where, "data_offsets", m.get("data_offsets"), 2);
        if (range[0] > range[1]) {
            throw new FormatException(where + " has data_offsets [" + range[0] + ", " + range[1] + "] that end before they begin");
        }
        long elements = 1;
        try {
            for (long d : dims) {
                elements = Math.multiplyExact(elements, d);
            }
            long need = Math.multiplyExact(elements, (long) type.bytes());
            if (need != range[1] - range[0]) {
                throw new FormatException(where + " " + type + " of shape " + Arrays.toString(dims) + " needs "
                        + need + " bytes but its data_offsets span " + (range[1] - range[0]));
            }
        } catch (ArithmeticException e) {
            throw new FormatException(where + " has a shape " + Arrays.toString(dims) + " too large to address");
        }
        return new Entry(name, type, dims, range[0], range[1]);
    }

    /** A JSON array of non-negative integers, of exactly {@code length} items unless length is −1. */
    private static long[] longs(String where, String field, Object v, int length) throws FormatException {
        if (!(v instanceof List<?> list) || (length >= 0 && list.size() != length)) {
            throw new FormatException(where + " needs \"" + field + "\" as an array of "
                    + (length >= 0 ? length + " " : "") + "non-negative integers");
        }
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Long x) || x < 0) {
                throw new FormatException(where + " has " + field + " item " + list.get(i)
                        + "; it must be a non-negative integer");
            }
            out[i] = x;
        }
        return out;
    }

    /** The ranges, sorted by start, must cover [0, dataBytes) exactly once. */
    private static void checkTiling(String source, Iterable<Entry> entries, long dataBytes) throws FormatException {
        List<Entry> sorted = new ArrayList<>();
        entries.forEach(sorted::add);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long at = 0;
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.end() > dataBytes) {
                throw new FormatException(source + ": tensor '" + e.name() + "' bytes [" + e.begin() + ", " + e.end()
                        + ") lie outside the data area of " + dataBytes + " bytes");
            }
            if (e.begin() < at) {
                throw new FormatException(source + ": tensors '" + previous.name() + "' [" + previous.begin() + ", "
                        + previous.end() + ") and '" + e.name() + "' [" + e.begin() + ", " + e.end() + ") overlap");
            }
            if (e.begin() > at) {
                throw new FormatException(source + ": bytes [" + at + ", " + e.begin()
                        + ") of the data area belong to no tensor");
            }
            at = e.end();
            if (e.byteSize() > 0) {
                previous = e;
            }
        }
        if (at != dataBytes) {
            throw new FormatException(source + ": the data area holds " + dataBytes + " bytes but the tensors cover "
                    + at + " (extra bytes after the last tensor)");
        }
    }

    public Path file() {
        return file;
    }

    public Map<String, String> metadata() {
        return header.metadata();
    }

    /** The entries in header order. */
    public List<Entry> entries() {
        return List.copyOf(header.entries().values());
    }

    public boolean contains(String name) {
        return header.entries().containsKey(name);
    }

    /** The entry named {@code name}; fails naming the file if there is none. */
    public Entry entry(String name) throws FormatException {
        Entry e = header.entries().get(name);
        if (e == null) {
            throw new FormatException(file + " has no tensor '" + name + "'");
        }
        return e;
    }

    /** Copies tensor {@code name} into {@code dst}, which must be contiguous with the same dtype and shape. */
    public void read(String name, Tensor dst) throws IOException {
        Entry e = entry(name);
        if (e.type().dtype() != dst.dtype() || !e.shape().equals(dst.shape())) {
            throw new FormatException(file + ": tensor '" + name + "' is " + e.type() + " " + e.shape()
                    + " but " + dst.dtype() + " " + dst.shape() + " is expected");
        }
        if (!dst.isContiguous()) {
            throw new IllegalArgumentException("cannot read tensor '" + name + "' into a strided view");
        }
        MemorySegment target = dst.segment().asSlice(dst.byteOffset(), e.byteSize());
        for (long at = 0; at < e.byteSize(); at += CHUNK) {
            ByteBuffer buf = target.asSlice(at, Math.min(CHUNK, e.byteSize() - at)).asByteBuffer();
            readFully(channel, buf, dataStart + e.begin() + at, file);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position, Path file) throws IOException {
        long p = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, p);
            if (n < 0) {
                throw new FormatException(file + " ends early, at byte " + p + ": it was truncated");
            }
            p += n;
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
