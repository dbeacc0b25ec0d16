package jtune.engine.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileChannel.MapMode;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
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
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.Tensor;

/**
 * Reads a safetensors file after validating its whole header: the header length lies within the file, the
 * header is well-formed UTF-8 JSON, every entry has a known dtype, a shape of non-negative integers and byte
 * offsets consistent with them, and the entries tile the data area exactly (inside it, no overlap, no gap,
 * nothing after). Any fault is one {@link FormatException} sentence naming the file.
 *
 * <p>Once valid, the file is mapped into memory once, read-only, in a shared arena that {@link #close()} frees;
 * the file is only ever opened for reading. {@link #tensor} gives a read-only view of the mapped bytes without
 * copying them (for frozen weights); {@link #read} copies into a caller's tensor (for weights to be trained). The file must
 * not be truncated while it is open: touching a page past the new end would crash the JVM. Thread-safe.
 */
public final class SafeTensorsReader implements AutoCloseable {
    private final Path file;
    private final Arena arena;
    private final MemorySegment data;
    private final Header header;
    private final List<Tensor> views = new ArrayList<>();
    private boolean closed;

    /** What a validated header holds: the metadata and the entries, in header order. */
    public record Header(Map<String, String> metadata, Map<String, Entry> entries) {
    }

    private SafeTensorsReader(Path file, Arena arena, MemorySegment data, Header header) {
        this.file = file;
        this.arena = arena;
        this.data = data;
        this.header = header;
    }

    /** Opens, validates and maps {@code file}; the mapping lives until {@link #close()}. */
    public static SafeTensorsReader open(Path file) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("safetensors files are little-endian; this machine is not");
        }
        FileChannel opened;
        try {
            opened = FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(file.toString(), null, "there is no such safetensors file");
        }
        try (FileChannel ch = opened) {
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
            Arena arena = Arena.ofShared();
            try {
                MemorySegment all = ch.map(MapMode.READ_ONLY, 0, size, arena);
                return new SafeTensorsReader(file, arena, all.asSlice(8 + n), h);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
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

    /**
     * Tensor {@code name} as a contiguous view of the mapped bytes, without a copy, recorded in
     * {@code pool}'s ledger under {@code category} until it is closed. Closing it frees nothing (the mapping
     * lives until this reader closes) and closing the reader closes every view still open. Where the bytes are
     * not aligned to the element size (a header not padded to 8 bytes, or a narrower type stored before a
     * wider one) the tensor is instead a copy allocated from {@code pool}, a host pool, which outlives the
     * reader. Fails for the format's types that jtune cannot hold (BOOL, F8_*, I16, U16, U32, I64, U64, F64).
     */
    public Tensor tensor(String name, MemoryPool pool, Category category) throws FormatException {
        Entry e = entry(name);
        DType type = e.type().dtype();
        if (type == null) {
            throw new FormatException(file + ": tensor '" + name + "' has dtype " + e.type()
                    + ", which jtune cannot hold (it holds F32, BF16, F16, I8, U8 and I32)");
        }
        synchronized (this) {
            MemorySegment bytes = bytes(e);
            if (bytes.address() % type.byteSize() != 0) {
                Tensor copy = pool.allocate(name, type, category, e.shape());
                MemorySegment.copy(bytes, 0, copy.segment(), 0, e.byteSize());
                return copy;
            }
            views.removeIf(Tensor::isClosed);
            Tensor view = Tensor.wrap(bytes, name, type, e.shape(), pool.ledger(), category);
            views.add(view);
            return view;
        }
    }

    /**
     * Copies tensor {@code name} into {@code dst}, which must be contiguous with the same shape. The dtypes
     * must match, except that any of F32, BF16 and F16 converts to another on the way (widening exactly,
     * narrowing to nearest even).
     */
    public void read(String name, Tensor dst) throws IOException {
        Entry e = entry(name);
        DType from = e.type().dtype();
        DType to = dst.dtype();
        boolean convert = from != null && from != to && from.isFloating() && to.isFloating();
        if ((from != to && !convert) || !e.shape().equals(dst.shape())) {
            throw new FormatException(file + ": tensor '" + name + "' is " + e.type() + " " + e.shape()
                    + " but " + to + " " + dst.shape() + " is expected");
        }
        if (!dst.isContiguous()) {
            throw new IllegalArgumentException("cannot read tensor '" + name + "' into a strided view");
        }
        synchronized (this) {
            MemorySegment src = bytes(e);
            if (dst.device().kind() != Device.Kind.CPU) {
                // A device tensor: one copy from the mapped file (native memory, as a driver needs), or from host
                // memory holding the converted values.
                if (!convert) {
                    dst.copyBytesFrom(src);
                    return;
                }
                long bytes = to.bytesFor(dst.size());
                try (Arena staging = Arena.ofConfined()) {
                    MemorySegment host = staging.allocate(Math.max(1, bytes), 8).asSlice(0, bytes);
                    for (long i = 0, n = e.shape().size(); i < n; i++) {
                        Tensor.store(host, to, i, load(src, from, i));
                    }
                    dst.copyBytesFrom(host);
                }
                return;
            }
            MemorySegment out = dst.segment();
            if (!convert) {
                MemorySegment.copy(src, 0, out, dst.byteOffset(), e.byteSize());
                return;
            }
            long n = e.shape().size();
            for (long i = 0; i < n; i++) {
                Tensor.store(out, to, dst.offset() + i, load(src, from, i));
            }
        }
    }

    /** Element {@code i} of float type {@code t} in {@code s}, which may be unaligned, as f32. */
    private static float load(MemorySegment s, DType t, long i) {
        if (t == DType.F32) {
            return s.get(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * i);
        }
        short h = s.get(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i);
        return t == DType.BF16 ? Float.intBitsToFloat((h & 0xffff) << 16) : Float.float16ToFloat(h);
    }

    /** The mapped bytes of {@code e}; the caller holds the lock. */
    private MemorySegment bytes(Entry e) {
        if (closed) {
            throw new IllegalStateException(file + " is closed; its tensors can no longer be read");
        }
        return data.asSlice(e.begin(), e.byteSize());
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

    /** Closes the tensor views still open and unmaps the file; idempotent. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            views.forEach(Tensor::close);
            views.clear();
            arena.close();
        }
    }
}
