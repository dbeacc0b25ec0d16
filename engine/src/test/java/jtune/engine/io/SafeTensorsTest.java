package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsTest {
    @TempDir
    Path dir;

    private final MemoryPool pool = new MemoryPool(new MemoryLedger());

    @AfterEach
    void closePool() {
        pool.close();
    }

    private Tensor tensor(String name, DType t, float[] values, long... dims) {
        return pool.allocate(name, t, Category.WORKSPACE, dims).copyFrom(values);
    }

    @Test
    void roundTripsTensorsAndMetadata() throws IOException {
        Tensor a = tensor("a", DType.F32, new float[]{1.5f, -2f, 3.25f, 0f, 1e-30f, -7f}, 2, 3);
        Tensor b = tensor("b", DType.BF16, new float[]{1f, 2f, -0.5f}, 3);
        Tensor c = tensor("c", DType.I32, new float[]{7, -8}, 2);
        Tensor e = tensor("empty", DType.F32, new float[0], 0, 4);
        Path f = dir.resolve("x.safetensors");
        new SafeTensorsWriter().add("w.a", a).add("w.b", b).add("c", c).add("e", e)
                .metadata("step", "12").metadata("note", "héllo \"quoted\"").write(f);

        try (SafeTensorsReader r = SafeTensorsReader.open(f)) {
            assertThat(r.metadata()).containsExactly(Map.entry("step", "12"), Map.entry("note", "héllo \"quoted\""));
            assertThat(r.entries()).extracting(SafeTensors.Entry::name).containsExactly("w.a", "w.b", "c", "e");
            assertThat(r.entry("w.b").type()).isEqualTo(SafeTensors.Type.BF16);
            Tensor a2 = pool.allocate("a2", DType.F32, Category.WORKSPACE, 2, 3);
            Tensor b2 = pool.allocate("b2", DType.BF16, Category.WORKSPACE, 3);
            Tensor c2 = pool.allocate("c2", DType.I32, Category.WORKSPACE, 2);
            r.read("w.a", a2);
            r.read("w.b", b2);
            r.read("c", c2);
            assertThat(a2.toFloatArray()).containsExactly(a.toFloatArray());
            assertThat(b2.toFloatArray()).containsExactly(1f, 2f, -0.5f);
            assertThat(c2.toFloatArray()).containsExactly(7f, -8f);
            assertThatThrownBy(() -> r.read("w.a", pool.allocate("bad", DType.F32, Category.WORKSPACE, 3, 2)))
                    .hasMessageContaining("tensor 'w.a' is F32 [2, 3] but f32 [3, 2] is expected");
            assertThatThrownBy(() -> r.entry("nope")).hasMessageContaining("has no tensor 'nope'");
        }
    }

    @Test
    void layoutIsTheSpecsByteForByte() throws IOException {
        Path f = dir.resolve("y.safetensors");
        new SafeTensorsWriter().add("t", tensor("t", DType.F32, new float[]{1f, 2f}, 2)).metadata("k", "v").write(f);
        byte[] bytes = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat((8 + n) % 8).isZero();
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertThat(header.strip()).isEqualTo(
                "{\"__metadata__\":{\"k\":\"v\"},\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}");
        ByteBuffer data = ByteBuffer.wrap(bytes, 8 + (int) n, 8).order(ByteOrder.LITTLE_ENDIAN);
        assertThat(data.getFloat()).isEqualTo(1f);
        assertThat(data.getFloat()).isEqualTo(2f);
        assertThat(bytes.length).isEqualTo(8 + n + 8);
    }

    @Test
    void writeIsAtomicAndReplacesTheOldFile() throws IOException {
        Path f = dir.resolve("z.safetensors");
        new SafeTensorsWriter().add("t", tensor("t", DType.F32, new float[]{1f}, 1)).write(f);
        new SafeTensorsWriter().add("u", tensor("u", DType.F32, new float[]{2f, 3f}, 2)).write(f);
        try (SafeTensorsReader r = SafeTensorsReader.open(f)) {
            assertThat(r.entries()).extracting(SafeTensors.Entry::name).containsExactly("u");
        }
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly("z.safetensors");
        }
        SafeTensorsWriter w = new SafeTensorsWriter().add("t", tensor("t", DType.F32, new float[]{1f}, 1));
        assertThatThrownBy(() -> w.add("t", tensor("t2", DType.F32, new float[]{1f}, 1))).hasMessageContaining("twice");
        assertThatThrownBy(() -> w.add("__metadata__", tensor("m", DType.F32, new float[]{1f}, 1)))
                .hasMessageContaining("reserved");
        Tensor wide = tensor("wide", DType.F32, new float[6], 2, 3);
        assertThatThrownBy(() -> w.add("v", wide.transpose(0, 1))).hasMessageContaining("strided view");
    }

    /** A file with the given header text (padded to 8) and {@code data} bytes after it. */
    private Path file(String header, int data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = dir.resolve("bad.safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static String t(String name, String dtype, String shape, long begin, long end) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + begin + ","
                + end + "]}";
    }

    @Test
    void rejectsEachStructuralFaultWithOneSentence() throws IOException {
        String ok = t("a", "F32", "[2]", 0, 8);
        Object[][] cases = {
                {"{" + ok + "}", 8, null},
                {"{" + ok + "," + t("b", "F16", "[2,2]", 8, 16) + "}", 16, null},
                {"{" + ok + "}", 12, "extra bytes after the last tensor"},
                {"{" + ok + "}", 4, "lie outside the data area of 4 bytes"},
                {"{" + t("a", "F32", "[3]", 0, 8) + "}", 8, "needs 12 bytes but its data_offsets span 8"},
                {"{" + t("a", "Q4", "[2]", 0, 8) + "}", 8, "unknown dtype \"Q4\""},
                {"{" + ok + "," + t("b", "F32", "[2]", 4, 12) + "}", 12, "overlap"},
                {"{" + t("a", "F32", "[2]", 8, 16) + "}", 16, "bytes [0, 8) of the data area belong to no tensor"},
                {"{" + ok + "," + ok + "}", 8, "appears twice"},
                {"{" + t("a", "F32", "[-2]", 0, 8) + "}", 8, "non-negative integer"},
                {"{" + t("a", "F32", "[2]", 8, 0) + "}", 8, "end before they begin"},
                {"{" + t("a", "F32", "[4294967296,4294967296]", 0, 8) + "}", 8, "too large"},
                {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unknown field \"x\""},
                {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "\"data_offsets\" as an array of 2"},
                {"{\"a\":[1]}", 8, "must be described by an object"},
                {"{\"__metadata__\":{\"k\":1}," + ok + "}", 8, "metadata value of \"k\" must be a string"},
                {"{" + ok, 8, "not valid JSON"},
                {"[]", 0, "expected a JSON object"},
        };
        for (Object[] c : cases) {
            Path f = file((String) c[0], (Integer) c[1]);
            if (c[2] == null) {
                SafeTensorsReader.open(f).close();
                continue;
            }
            assertThatThrownBy(() -> SafeTensorsReader.open(f)).as((String) c[0])
                    .isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageStartingWith(f.toString()).hasMessageContaining((String) c[2])
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
        }
    }

    @Test
    void rejectsBadLengthsAndEncodings() throws IOException {
        Path f = dir.resolve("short.safetensors");
        Files.write(f, new byte[]{1, 2, 3});
        assertThatThrownBy(() -> SafeTensorsReader.open(f)).hasMessageContaining("fewer than the 8");
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).putLong(0);
        Files.write(f, b.array());
        assertThatThrownBy(() -> SafeTensorsReader.open(f)).hasMessageContaining("header length 1000 does not fit");
        b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L).putLong(0);
        Files.write(f, b.array());
        assertThatThrownBy(() -> SafeTensorsReader.open(f)).hasMessageContaining("18446744073709551615");
        byte[] notUtf8 = {'{', '"', (byte) 0xff, '"', ':', '1', '}', ' '};
        b = ByteBuffer.allocate(8 + notUtf8.length).order(ByteOrder.LITTLE_ENDIAN).putLong(notUtf8.length).put(notUtf8);
        Files.write(f, b.array());
        assertThatThrownBy(() -> SafeTensorsReader.open(f)).hasMessageContaining("not valid UTF-8");
    }

    @Test
    void headerValidationNeedsNoFile() throws IOException {
        byte[] h = ("{" + t("a", "I32", "[1,3]", 0, 12) + "}").getBytes(StandardCharsets.UTF_8);
        SafeTensorsReader.Header header = SafeTensorsReader.parseHeader("mem", h, 12);
        SafeTensors.Entry e = header.entries().get("a");
        assertThat(Arrays.equals(e.dims(), new long[]{1, 3})).isTrue();
        assertThat(e.type().dtype()).isEqualTo(DType.I32);
        assertThat(List.of(e.begin(), e.end())).containsExactly(0L, 12L);
    }
}
