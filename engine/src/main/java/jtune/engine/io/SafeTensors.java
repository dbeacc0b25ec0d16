package jtune.engine.io;

import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Shape;

/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then
 * the data area. The JSON maps each tensor name to {@code {"dtype": "F32", "shape": [..], "data_offsets":
 * [begin, end]}} (byte offsets into the data area) and may hold {@code "__metadata__"}, a map of strings to
 * strings. The element bytes are little-endian, row-major. {@link SafeTensorsWriter} writes the format,
 * {@link SafeTensorsReader} reads and validates it.
 */
public final class SafeTensors {
    /** The header key of the string-to-string metadata map. */
    public static final String METADATA_KEY = "__metadata__";

    /** The file of a single-file model in a Hugging Face model folder. */
    public static final String MODEL_FILE = "model.safetensors";

    /** The index of a sharded model in a Hugging Face model folder: its shards and which tensor each holds. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    /** Largest header accepted (as in the reference implementation): a bound on what a hostile file costs. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private SafeTensors() {
    }

    /** A file that is not valid safetensors; the message names the file and the fault in one sentence. */
    public static final class FormatException extends IOException {
        private static final long serialVersionUID = 1L;

        public FormatException(String message) {
            super(message);
        }
    }

    /** The element types of the format, with their sizes in bytes. */
    public enum Type {
        BOOL(1), U8(1), I8(1), F8_E5M2(1), F8_E4M3(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4),
        F64(8), I64(8), U64(8);

        private final int bytes;

        Type(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }

        /** The type named {@code name} in a header, or null if the format has no such type. */
        public static Type parse(String name) {
            for (Type t : values()) {
                if (t.name().equals(name)) {
                    return t;
                }
            }
            return null;
        }

        /** The jtune storage type of this element type, or null where jtune has none. */
        public DType dtype() {
            return switch (this) {
                case F32 -> DType.F32;
                case BF16 -> DType.BF16;
                case F16 -> DType.F16;
                case I8 -> DType.I8;
                case U8 -> DType.U8;
                case I32 -> DType.I32;
                default -> null;
            };
        }

        /** The format's type for a jtune storage type. */
        public static Type of(DType d) {
            return switch (d) {
                case F32 -> F32;
                case BF16 -> BF16;
                case F16 -> F16;
                case I8 -> I8;
                case U8 -> U8;
                case I32 -> I32;
            };
        }
    }

    /** One tensor of a file: its type, shape, and byte range {@code [begin, end)} within the data area. */
    public record Entry(String name, Type type, long[] dims, long begin, long end) {
        public Entry {
            dims = dims.clone();
        }

        @Override
        public long[] dims() {
            return dims.clone();
        }

        public Shape shape() {
            return Shape.of(dims);
        }

        public long byteSize() {
            return end - begin;
        }

        /** The header object of this entry. */
        Map<String, Object> header() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("dtype", type.name());
            m.put("shape", Arrays.stream(dims).boxed().toList());
            m.put("data_offsets", List.of(begin, end));
            return m;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Entry e && e.name.equals(name) && e.type == type && Arrays.equals(e.dims, dims)
                    && e.begin == begin && e.end == end;
        }

        @Override
        public int hashCode() {
            return name.hashCode() * 31 + Arrays.hashCode(dims);
        }

        @Override
        public String toString() {
            return name + " " + type + " " + Arrays.toString(dims) + " [" + begin + ", " + end + ")";
        }
    }
}
