package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of a small valid safetensors file and of a sharded model's index. Every case must end in
 * a successful open whose tensors all map and read back (their bytes lie within the file), or in one
 * {@link SafeTensors.FormatException} sentence naming the file; any other exception, an OutOfMemoryError
 * included, fails the test with the case that caused it.
 */
class SafeTensorsFuzzTest {
    private static final String[] DTYPES = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
            "I32", "U32", "F32", "F64", "I64", "U64", "f32", "Q4", "", "F32 ", "F\\u0033\\u0032"};
    private static final String[] NUMBERS = {"0", "1", "2", "3", "7", "-1", "1.5", "2e0", "\"2\"", "null", "true",
            "2147483648", "4294967296", "4611686018427387904", "9223372036854775807", "9223372036854775808",
            "1e30", "1e999", "-0", "[]", "{}"};
    private static final long[] HUGE = {0, 1L << 31, 1L << 32, 1L << 62, Long.MAX_VALUE};

    @TempDir
    Path dir;

    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private Path file;
    private byte[] valid;
    private int opened;
    private int rejected;

    @BeforeEach
    void writeTheValidFile() throws IOException {
        file = dir.resolve("f.safetensors");
        Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 2, 3).copyFrom(new float[]{1, -2, 3.5f, 0, 5, 6});
        Tensor b = pool.allocate("b", DType.BF16, Category.WORKSPACE, 4).copyFrom(new float[]{1, 2, 3, 4});
        Tensor c = pool.allocate("c", DType.I8, Category.WORKSPACE, 3).copyFrom(new float[]{-1, 0, 1});
        Tensor z = pool.allocate("z", DType.F16, Category.WORKSPACE, 0, 5);
        new SafeTensorsWriter().add("a", a).add("b", b).add("c", c).add("z", z).metadata("format", "pt").write(file);
        valid = Files.readAllBytes(file);
    }

    @AfterEach
    void closePool() {
        pool.close();
    }

    @Test
    void everyMutationOfAFileOpensCleanlyOrFailsWithTheSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20240601);
        check("the valid file", valid);
        assertThat(opened).isEqualTo(1);
        for (int n = 0; n < valid.length; n++) {
            check("truncated to " + n + " bytes", Arrays.copyOf(valid, n));
        }
        int headerEnd = 8 + (int) ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN).getLong();
        for (int i = 0; i < 1000; i++) {
            byte[] m = valid.clone();
            int flips = 1 + rng.nextInt(4);
            for (int f = 0; f < flips; f++) {
                int at = rng.nextInt(10) < 8 ? rng.nextInt(headerEnd) : rng.nextInt(m.length);
                m[at] ^= (byte) (1 << rng.nextInt(8));
            }
            check("bit flips " + i, m);
        }
        long[] lengths = {0, 1, 2, headerEnd - 9, headerEnd - 7, valid.length - 8, valid.length - 7, valid.length,
                SafeTensors.MAX_HEADER_BYTES, SafeTensors.MAX_HEADER_BYTES + 1, Integer.MAX_VALUE,
                1L << 32, Long.MAX_VALUE, Long.MIN_VALUE, -1, -8};
        for (long n : lengths) {
            byte[] m = valid.clone();
            ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
            check("declared header length " + n, m);
        }
        for (int i = 0; i < 1000; i++) {
            RandomHeader h = randomHeader(rng);
            byte[] data = new byte[h.dataBytes()];
            rng.nextBytes(data);
            check("header " + h.json(), withHeader(h.json().getBytes(StandardCharsets.UTF_8), data));
        }
        for (int i = 0; i < 300; i++) {
            byte[] h = Arrays.copyOfRange(valid, 8, headerEnd);
            h[rng.nextInt(h.length)] = (byte) (0x80 + rng.nextInt(0x80));
            check("non-UTF-8 byte " + i, withHeader(h, Arrays.copyOfRange(valid, headerEnd, valid.length)));
        }
        String deepArray = "[".repeat(100_000) + "]".repeat(100_000);
        String deepObject = "{\"k\":".repeat(100_000) + "1" + "}".repeat(100_000);
        for (String deep : new String[]{deepArray, deepObject}) {
            check("deep nesting as metadata", withHeader(("{\"__metadata__\":" + deep + "}").getBytes(), new byte[0]));
            check("deep nesting as a tensor", withHeader(("{\"a\":" + deep + "}").getBytes(), new byte[0]));
            check("deep nesting as the header", withHeader(deep.getBytes(), new byte[0]));
        }
        check("an empty header and no data", withHeader("{}      ".getBytes(), new byte[0]));
        check("an empty tensor and no data", withHeader(
                "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,4611686018427387904],\"data_offsets\":[0,0]}}".getBytes(),
                new byte[0]));
        assertThat(opened).as("some mutations still open").isGreaterThan(80);
        assertThat(rejected).as("most mutations are rejected").isGreaterThan(1500);
    }

    /** A header's JSON and the size of the data area to give it. */
    private record RandomHeader(String json, int dataBytes) {
    }

    /**
     * A header of random entries: names, dtypes, shapes and offsets drawn from valid and hostile values. Half
     * the time the offsets tile the data area in order, and mostly the data area has their size, so that many
     * headers are valid.
     */
    private static RandomHeader randomHeader(SplittableRandom rng) {
        StringBuilder sb = new StringBuilder("{");
        if (rng.nextInt(4) == 0) {
            sb.append(switch (rng.nextInt(4)) {
                case 0 -> "\"__metadata__\":{\"format\":\"pt\"},";
                case 1 -> "\"__metadata__\":{\"k\":1},";
                case 2 -> "\"__metadata__\":[],";
                default -> "\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"},";
            });
        }
        int entries = rng.nextInt(5);
        boolean consistent = rng.nextBoolean();
        long at = 0;
        for (int e = 0; e < entries; e++) {
            String name = rng.nextInt(6) == 0 ? "dup" : "t" + e;
            String dtype = DTYPES[rng.nextInt(DTYPES.length)];
            int bytes = SafeTensors.Type.parse(dtype) == null ? 1 : SafeTensors.Type.parse(dtype).bytes();
            List<String> dims = new ArrayList<>();
            int rank = rng.nextInt(4);
            long elements = 1;
            for (int d = 0; d < rank; d++) {
                long dim = rng.nextInt(3) == 0 ? HUGE[rng.nextInt(HUGE.length)] : rng.nextInt(6);
                dims.add(Long.toString(dim));
                elements = elements < 0 ? -1 : multiplyOrMinusOne(elements, dim);
            }
            if (!consistent && rng.nextInt(3) == 0) {
                dims.add(NUMBERS[rng.nextInt(NUMBERS.length)]);
            }
            long begin;
            long end;
            if (consistent) {
                begin = at;
                end = at + (elements >= 0 && elements < 100 ? elements * bytes : rng.nextInt(20));
                at = end;
            } else {
                begin = rng.nextInt(300);
                end = begin + rng.nextInt(40);
            }
            String offsets = rng.nextInt(8) == 0 ? "[" + NUMBERS[rng.nextInt(NUMBERS.length)] + "," + end + "]"
                    : rng.nextInt(8) == 0 ? "[" + begin + "," + NUMBERS[rng.nextInt(NUMBERS.length)] + "]"
                    : "[" + begin + "," + end + "]";
            sb.append(e > 0 ? "," : "").append('"').append(name).append("\":{\"dtype\":\"").append(dtype)
                    .append("\",\"shape\":[").append(String.join(",", dims)).append("],\"data_offsets\":")
                    .append(offsets).append('}');
        }
        int dataBytes = consistent ? (int) at + (rng.nextInt(4) == 0 ? rng.nextInt(-1, 2) : 0) : rng.nextInt(300);
        return new RandomHeader(sb.append('}').toString(), Math.max(0, dataBytes));
    }

    private static long multiplyOrMinusOne(long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            return -1;
        }
    }

    private static byte[] withHeader(byte[] header, byte[] data) {
        return ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length).put(header).put(data).array();
    }

    /** Writes {@code bytes} to the test file and opens it: it must open and read back, or fail with the sentence. */
    private void check(String what, byte[] bytes) throws IOException {
        Files.write(file, bytes);
        outcome(what, file, () -> {
            try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
                long dataStart = 8 + ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
                for (SafeTensors.Entry e : r.entries()) {
                    assertThat(dataStart + e.end()).as("tensor '%s' ends within the file", e.name())
                            .isLessThanOrEqualTo(bytes.length);
                    byte[] expected = Arrays.copyOfRange(bytes, (int) (dataStart + e.begin()), (int) (dataStart + e.end()));
                    readBack(r::tensor, r::read, e, expected);
                }
            }
        });
    }

    /**
     * Maps {@code e} and copies it: both must hold {@code expected} (the file's bytes at the entry's range; null
     * where not known) and read as floats. The types jtune cannot hold must be refused with the sentence.
     */
    private void readBack(Mapper map, Copier copy, SafeTensors.Entry e, byte[] expected) throws IOException {
        DType type = e.type().dtype();
        if (type == null) {
            try {
                map.tensor(e.name(), pool, Category.FROZEN_WEIGHTS);
                fail("tensor '" + e.name() + "' of type " + e.type() + " was mapped");
            } catch (SafeTensors.FormatException refused) {
                assertThat(refused.getMessage()).contains("which jtune cannot hold");
            }
            return;
        }
        try (Tensor t = map.tensor(e.name(), pool, Category.FROZEN_WEIGHTS);
             Tensor c = pool.allocate(e.name(), type, Category.WORKSPACE, e.shape())) {
            copy.read(e.name(), c);
            byte[] mapped = t.segment().asSlice(t.byteOffset(), e.byteSize()).toArray(ValueLayout.JAVA_BYTE);
            assertThat(c.segment().asSlice(0, e.byteSize()).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(mapped);
            if (expected != null) {
                assertThat(mapped).isEqualTo(expected);
            }
            assertThat(t.toFloatArray()).hasSize((int) e.shape().size());
        }
    }

    @FunctionalInterface
    private interface Mapper {
        Tensor tensor(String name, MemoryPool pool, Category category) throws IOException;
    }

    @FunctionalInterface
    private interface Copier {
        void read(String name, Tensor dst) throws IOException;
    }

    @FunctionalInterface
    private interface Attempt {
        void run() throws IOException;
    }

    private void outcome(String what, Path named, Attempt attempt) {
        try {
            attempt.run();
            opened++;
        } catch (SafeTensors.FormatException e) {
            rejected++;
            if (!e.getMessage().startsWith(named.toString()) || e.getMessage().contains("\n")) {
                fail(shorten(what) + ": the message does not start with the file or spans lines: " + e.getMessage());
            }
        } catch (OutOfMemoryError e) {
            fail(shorten(what) + ": out of memory", e);
        } catch (Throwable e) {
            fail(shorten(what) + ": " + e, e);
        }
    }

    private static String shorten(String s) {
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }

    @Test
    void everyMutationOfAnIndexOpensCleanlyOrFailsWithTheSentence() throws IOException {
        Path model = Files.createDirectory(dir.resolve("model"));
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (int k = 0; k < 4; k++) {
            w.add("w" + k, pool.allocate("w" + k, DType.F32, Category.WORKSPACE, 4).copyFrom(new float[]{k, k, k, k}));
        }
        w.writeModel(model, 32);
        new SafeTensorsWriter().add("w1", pool.allocate("x", DType.BF16, Category.WORKSPACE, 2)).write(model.resolve("other.safetensors"));
        Files.createDirectory(model.resolve("sub"));
        Path index = model.resolve(SafeTensors.INDEX_FILE);
        String good = Files.readString(index);
        byte[] goodBytes = good.getBytes(StandardCharsets.UTF_8);
        SplittableRandom rng = new SplittableRandom(7);
        Consumer<byte[]> check = bytes -> {
            try {
                Files.write(index, bytes);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
            outcome(new String(bytes, StandardCharsets.UTF_8), index, () -> {
                try (SafeTensorsModel m = SafeTensorsModel.open(model)) {
                    for (String name : m.names()) {
                        assertThat(m.file(name).getParent()).isEqualTo(model);
                        readBack(m::tensor, m::read, m.entry(name), null);
                    }
                }
            });
        };
        check.accept(goodBytes);
        assertThat(opened).isEqualTo(1);
        for (int n = 0; n < goodBytes.length; n++) {
            check.accept(Arrays.copyOf(goodBytes, n));
        }
        for (int i = 0; i < 400; i++) {
            byte[] m = goodBytes.clone();
            m[rng.nextInt(m.length)] ^= (byte) (1 << rng.nextInt(8));
            check.accept(m);
        }
        String[] shards = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "other.safetensors",
                "sub", "../model/other.safetensors", "./other.safetensors", "", ".", "..", "\\u0000x", "a\\\\b",
                "model.safetensors.index.json", "x".repeat(300), "nope.safetensors", "\\ud800"};
        String[] names = {"w0", "w1", "w2", "w3", "w4", "", "__metadata__"};
        for (int i = 0; i < 400; i++) {
            StringBuilder sb = new StringBuilder("{\"metadata\":{\"total_size\":64},\"weight_map\":{");
            int n = rng.nextInt(6);
            List<String> used = new ArrayList<>();
            for (int k = 0; k < n; k++) {
                String name = names[rng.nextInt(names.length)];
                if (used.contains(name) && rng.nextInt(4) != 0) {
                    continue;
                }
                used.add(name);
                String shard = rng.nextInt(3) == 0 ? shards[rng.nextInt(shards.length)]
                        : shards[rng.nextInt(2)];
                sb.append(used.size() > 1 ? "," : "").append('"').append(name).append("\":\"").append(shard).append('"');
            }
            check.accept(sb.append("}}").toString().getBytes(StandardCharsets.UTF_8));
        }
        check.accept(("{\"weight_map\":" + "[".repeat(50_000) + "]".repeat(50_000) + "}").getBytes());
        check.accept(("{\"metadata\":" + "{\"a\":".repeat(50_000) + "1" + "}".repeat(50_000) + "}").getBytes());
        check.accept(HexFormat.of().parseHex("7b22fe223a317d"));
        assertThat(opened).as("some index mutations still open").isGreaterThan(20);
        assertThat(rejected).as("most index mutations are rejected").isGreaterThan(700);
    }
}
