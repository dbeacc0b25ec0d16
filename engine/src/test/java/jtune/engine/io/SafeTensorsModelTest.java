package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
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

/** Model folders: sharded writing and reading, the index's faults, and the real stories260K file. */
class SafeTensorsModelTest {
    private static final Path STORIES = Path.of("..", "..", "shared", "data", "models");

    @TempDir
    Path dir;

    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);

    @AfterEach
    void closePool() {
        pool.close();
    }

    /** Five tensors of 40, 60, 400, 20 and 40 bytes; element i of tensor k holds 100k + i. */
    private SafeTensorsWriter five() {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata("format", "pt");
        Object[][] specs = {{"t0", DType.F32, 10L}, {"t1", DType.BF16, 30L}, {"t2", DType.F32, 100L},
                {"t3", DType.I32, 5L}, {"t4", DType.F32, 10L}};
        for (int k = 0; k < specs.length; k++) {
            long n = (Long) specs[k][2];
            Tensor t = pool.allocate((String) specs[k][0], (DType) specs[k][1], Category.WORKSPACE, n);
            for (int i = 0; i < n; i++) {
                t.set(100 * k + i, i);
            }
            w.add((String) specs[k][0], t);
        }
        return w;
    }

    private static void assertFive(SafeTensorsModel m, MemoryPool pool) throws IOException {
        assertThat(m.names()).containsExactly("t0", "t1", "t2", "t3", "t4");
        for (int k = 0; k < 5; k++) {
            String name = "t" + k;
            try (Tensor t = m.tensor(name, pool, Category.FROZEN_WEIGHTS)) {
                float[] v = t.toFloatArray();
                for (int i = 0; i < v.length; i++) {
                    assertThat(v[i]).as("%s[%d]", name, i).isEqualTo(100 * k + i);
                }
            }
        }
    }

    @Test
    void writesShardsAsHuggingFaceDoesAndReadsThemBack() throws IOException {
        List<Path> files = five().writeModel(dir, 100);
        // greedy fill to 100 bytes: [t0 t1] = 100, [t2] = 400 alone, [t3 t4] = 60
        assertThat(files).extracting(p -> p.getFileName().toString()).containsExactly(
                "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors");
        Map<String, Object> index = Json.parseObject(Files.readString(dir.resolve("model.safetensors.index.json")));
        assertThat(index).containsEntry("metadata", Map.of("total_size", 560L));
        assertThat(index.get("weight_map")).isEqualTo(Map.of(
                "t0", "model-00001-of-00003.safetensors", "t1", "model-00001-of-00003.safetensors",
                "t2", "model-00002-of-00003.safetensors",
                "t3", "model-00003-of-00003.safetensors", "t4", "model-00003-of-00003.safetensors"));
        try (SafeTensorsReader r = SafeTensorsReader.open(files.get(2))) {
            assertThat(r.metadata()).containsExactly(Map.entry("format", "pt"));
            assertThat(r.entries()).extracting(SafeTensors.Entry::name).containsExactly("t3", "t4");
        }
        try (SafeTensorsModel m = SafeTensorsModel.open(dir)) {
            assertThat(m.source().getFileName().toString()).isEqualTo("model.safetensors.index.json");
            assertThat(m.file("t2").getFileName().toString()).isEqualTo("model-00002-of-00003.safetensors");
            assertThat(m.entry("t1").type()).isEqualTo(SafeTensors.Type.BF16);
            assertThat(m.contains("t4")).isTrue();
            assertThat(m.contains("t5")).isFalse();
            assertFive(m, pool);
            Tensor t1 = pool.allocate("t1", DType.F32, Category.WORKSPACE, 30);
            m.read("t1", t1);
            assertThat(t1.get(29)).isEqualTo(129);
            assertThatThrownBy(() -> m.entry("t5")).isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageContaining("has no tensor 't5'");
        }
        assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
    }

    @Test
    void aModelThatFitsIsOneFileAndRewritingRemovesTheOtherForm() throws IOException {
        five().writeModel(dir, 100);
        List<Path> one = five().writeModel(dir, 560);
        assertThat(one).extracting(p -> p.getFileName().toString()).containsExactly("model.safetensors");
        assertThat(names(dir)).containsExactly("model.safetensors");
        try (SafeTensorsModel m = SafeTensorsModel.open(dir)) {
            assertThat(m.source().getFileName().toString()).isEqualTo("model.safetensors");
            assertFive(m, pool);
        }
        try (SafeTensorsModel m = SafeTensorsModel.open(dir.resolve("model.safetensors"))) {
            assertFive(m, pool);
        }
        five().writeModel(dir, 500);
        assertThat(names(dir)).containsExactly("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json");
        try (SafeTensorsModel m = SafeTensorsModel.open(dir)) {
            assertFive(m, pool);
        }
        assertThatThrownBy(() -> five().writeModel(dir, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    private static List<String> names(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void eachIndexFaultIsOneSentenceNamingTheIndexAndTheTensor() throws IOException {
        five().writeModel(dir, 100);
        new SafeTensorsWriter().add("t3", pool.allocate("x", DType.F32, Category.WORKSPACE, 1)).write(dir.resolve("dup.safetensors"));
        Path index = dir.resolve("model.safetensors.index.json");
        String good = Files.readString(index);
        String s1 = "model-00001-of-00003.safetensors";
        String s3 = "model-00003-of-00003.safetensors";
        String[][] cases = {
                {"{", null, "is not valid JSON"},
                {"[]", null, "is not valid JSON"},
                {"{\"metadata\":{}}", null, "needs \"weight_map\""},
                {"{\"weight_map\":{}}", null, "needs \"weight_map\""},
                {good.replace("{\"total_size\":560}", "7"), null, "\"metadata\" must be an object"},
                {good.replace("\"t2\":\"model-00002-of-00003.safetensors\"", "\"t2\":2"), "t2", "must map to a shard"},
                {good.replace("model-00002-of-00003", "../model-00002-of-00003"), "t2", "not a plain file name"},
                {good.replace("model-00002-of-00003", "sub/model-00002-of-00003"), "t2", "not a plain file name"},
                {good.replace("\"model-00002-of-00003.safetensors\"", "\"..\""), "t2", "not a plain file name"},
                {good.replace("\"model-00002-of-00003.safetensors\"", "\"\""), "t2", "not a plain file name"},
                {good.replace("model-00002-of-00003", "model-00009-of-00009"), "t2", "is not a file in"},
                {good.replace("\"t1\":\"" + s1, "\"t1\":\"" + s3), "t1", "which does not hold it"},
                {good.replace(",\"t4\":\"" + s3 + "\"", ""), "t4", "is missing from the weight_map"},
                {good.replace("\"t3\":\"" + s3 + "\"", "\"t3\":\"dup.safetensors\""), "t3",
                        "a tensor must live in one shard only"},
        };
        for (String[] c : cases) {
            assertThat(c[0]).as("case %s is a change", c[2]).isNotEqualTo(good);
            Files.writeString(index, c[0]);
            assertThatThrownBy(() -> SafeTensorsModel.open(dir).close()).as(c[0])
                    .isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageStartingWith(index.toString())
                    .hasMessageContaining(c[1] == null ? "" : "'" + c[1] + "'")
                    .hasMessageContaining(c[2])
                    .satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
        }
        Files.write(index, new byte[]{'{', '"', (byte) 0xc3, '"', ':', '1', '}'});
        assertThatThrownBy(() -> SafeTensorsModel.open(dir)).hasMessage(index + " is not valid UTF-8");
        Files.writeString(index, good);
        SafeTensorsModel.open(dir).close();
        Path empty = Files.createDirectory(dir.resolve("empty"));
        assertThatThrownBy(() -> SafeTensorsModel.open(empty)).isInstanceOf(SafeTensors.FormatException.class)
                .hasMessage(empty + " holds no safetensors model: it has neither model.safetensors.index.json nor "
                        + "model.safetensors");
    }

    @Test
    void aBrokenShardIsNamedByItsOwnFile() throws IOException {
        List<Path> files = five().writeModel(dir, 100);
        try (FileChannel ch = FileChannel.open(files.get(1), StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 4);
        }
        assertThatThrownBy(() -> SafeTensorsModel.open(dir)).isInstanceOf(SafeTensors.FormatException.class)
                .hasMessageStartingWith(files.get(1).toString()).hasMessageContaining("'t2'");
    }

    /**
     * The HF-derived stories260K file against the llama2.c checkpoint it came from, read with plain java.nio:
     * the token embedding is the first array of the legacy file, at byte 28, [512, 64] f32 little-endian.
     */
    @Test
    void mapsTheRealStories260KSafetensors() throws IOException {
        Path st = STORIES.resolve("stories260K-hf-derived").resolve("model.safetensors").toAbsolutePath().normalize();
        Path bin = STORIES.resolve("stories260K").resolve("stories260K.bin").toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(st) && Files.isRegularFile(bin),
                "stories260K is absent at " + st + " or " + bin + "; skipping the real-data check");
        ByteBuffer legacy = ByteBuffer.wrap(Files.readAllBytes(bin)).order(ByteOrder.LITTLE_ENDIAN);
        try (SafeTensorsModel m = SafeTensorsModel.open(st.getParent())) {
            assertThat(m.names()).hasSize(47);
            long params = 0;
            for (String name : m.names()) {
                assertThat(m.entry(name).type()).isEqualTo(SafeTensors.Type.F32);
                params += m.entry(name).shape().size();
            }
            assertThat(params).isEqualTo(260_032);
            assertThat(m.contains("lm_head.weight")).isFalse();
            Tensor emb = m.tensor("model.embed_tokens.weight", pool, Category.FROZEN_WEIGHTS);
            assertThat(emb.shape().toArray()).containsExactly(512, 64);
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isEqualTo(512 * 64 * 4);
            assertThat(pool.reservedBytes()).as("mapped, not copied").isZero();
            for (int tok = 0; tok < 512; tok++) {
                for (int j = 0; j < 64; j++) {
                    assertThat(emb.get(tok, j)).isEqualTo(legacy.getFloat(28 + 4 * (tok * 64 + j)));
                }
            }
            emb.close();
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
        }
    }
}
