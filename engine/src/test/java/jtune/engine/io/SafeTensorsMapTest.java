package jtune.engine.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Zero-copy mapping, the ledger, copy-on-write, the unaligned fallback and float conversion on read. */
class SafeTensorsMapTest {
    @TempDir
    Path dir;

    private final MemoryLedger ledger = new MemoryLedger();
    private final MemoryPool pool = new MemoryPool(ledger);

    @AfterEach
    void closePool() {
        pool.close();
    }

    /** The value the tests store at element {@code i}: exact in f32, arbitrary enough to catch a misplaced byte. */
    private static float f(int i) {
        return (float) Math.sin(i * 0.37) * (i + 1);
    }

    /** A file with header text {@code json} (unpadded, so the data may start at any offset) and {@code data}. */
    private Path handMade(String name, String json, byte[] data) throws IOException {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Path f = dir.resolve(name);
        Files.write(f, b.array());
        return f;
    }

    @Test
    void mapsWithoutCopyingAndCountsInTheLedger() throws IOException {
        Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 3, 5);
        Tensor ids = pool.allocate("ids", DType.I32, Category.WORKSPACE, 4);
        Tensor bytes = pool.allocate("u", DType.U8, Category.WORKSPACE, 3);
        for (int i = 0; i < 15; i++) {
            a.set(f(i), i / 5, i % 5);
        }
        ids.copyFrom(new float[]{7, -8, 1 << 20, 0});
        bytes.copyFrom(new float[]{0, 200, 255});
        Path file = dir.resolve("m.safetensors");
        new SafeTensorsWriter().add("a", a).add("ids", ids).add("u", bytes).write(file);
        long reservedBefore = pool.reservedBytes();
        long ledgerBefore = ledger.current(Category.FROZEN_WEIGHTS);

        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            assertThat(r.entry("u").type()).isEqualTo(SafeTensors.Type.U8);
            Tensor ma = r.tensor("a", pool, Category.FROZEN_WEIGHTS);
            Tensor mi = r.tensor("ids", pool, Category.FROZEN_WEIGHTS);
            Tensor mu = r.tensor("u", pool, Category.FROZEN_WEIGHTS);
            assertThat(pool.reservedBytes()).as("no pool memory for mapped tensors").isEqualTo(reservedBefore);
            assertThat(ledger.current(Category.FROZEN_WEIGHTS) - ledgerBefore).isEqualTo(60 + 16 + 3);
            assertThat(ma.shape().toArray()).containsExactly(3, 5);
            for (int i = 0; i < 15; i++) {
                assertThat(ma.get(i / 5, i % 5)).isEqualTo(f(i));
            }
            assertThat(mi.toFloatArray()).containsExactly(7, -8, 1 << 20, 0);
            assertThat(mu.toFloatArray()).containsExactly(0, 200, 255);
            mi.close();
            assertThat(ledger.current(Category.FROZEN_WEIGHTS) - ledgerBefore).isEqualTo(60 + 3);
            assertThatThrownBy(mi::segment).hasMessageContaining("used after close");
            Tensor row = ma.slice(0, 1, 2);
            assertThat(row.get(0, 4)).isEqualTo(f(9));
            r.close();
            assertThat(ma.isClosed()).as("closing the reader closes its views").isTrue();
            assertThat(mu.isClosed()).isTrue();
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isEqualTo(ledgerBefore);
            assertThatThrownBy(row::segment).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> r.tensor("a", pool, Category.FROZEN_WEIGHTS)).hasMessageContaining("is closed");
        }
    }

    @Test
    void mappedBytesEqualTheFileReadWithPlainNio() throws IOException {
        Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 1000);
        for (int i = 0; i < 1000; i++) {
            a.set(f(i), i);
        }
        Path file = dir.resolve("n.safetensors");
        new SafeTensorsWriter().add("x", pool.allocate("x", DType.BF16, Category.WORKSPACE, 3)).add("a", a).write(file);
        ByteBuffer raw = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        long dataStart = 8 + raw.getLong(0);
        try (SafeTensorsReader r = SafeTensorsReader.open(file); Tensor m = r.tensor("a", pool, Category.FROZEN_WEIGHTS)) {
            long begin = dataStart + r.entry("a").begin();
            assertThat(begin % 4).as("the writer puts the wider types first so that the f32 data is aligned").isZero();
            assertThat(r.entry("x").begin()).isEqualTo(4000);
            for (int i = 0; i < 1000; i++) {
                assertThat(m.get(i)).isEqualTo(raw.getFloat((int) begin + 4 * i)).isEqualTo(f(i));
            }
        }
    }

    @Test
    void mappedTensorsAreReadOnlyAndTheFileNeverChanges() throws IOException {
        Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 4).copyFrom(new float[]{1, 2, 3, 4});
        Path file = dir.resolve("ro.safetensors");
        new SafeTensorsWriter().add("a", a).write(file);
        byte[] before = Files.readAllBytes(file);
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            Tensor m = r.tensor("a", pool, Category.FROZEN_WEIGHTS);
            assertThat(m.toFloatArray()).containsExactly(1, 2, 3, 4);
            assertThat(m.segment().isReadOnly()).isTrue();
            assertThatThrownBy(() -> m.set(-9.5f, 2)).hasMessageContaining("read-only");
        }
        assertThat(Files.readAllBytes(file)).isEqualTo(before);
    }

    @Test
    void unalignedDataIsCopiedIntoThePool() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(1 + 12).order(ByteOrder.LITTLE_ENDIAN);
        data.put((byte) 42).putFloat(1.5f).putFloat(-2.25f).putFloat(1e-3f);
        // a header of 8k + 1 bytes: the data area starts at 8k + 9, so 'f' at 8k + 10 is not 4-aligned
        String json = "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"f\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[1,13]}}";
        json = json + " ".repeat(Math.floorMod(1 - json.length(), 8));
        Path file = handMade("odd.safetensors", json, data.array());
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            long reserved = pool.reservedBytes();
            Tensor f = r.tensor("f", pool, Category.FROZEN_WEIGHTS);
            assertThat(pool.reservedBytes() - reserved).as("copied into the pool").isEqualTo(12);
            assertThat(f.toFloatArray()).containsExactly(1.5f, -2.25f, 1e-3f);
            assertThat(r.tensor("b", pool, Category.FROZEN_WEIGHTS).get(0)).isEqualTo(42);
            r.close();
            assertThat(f.get(1)).as("a copy outlives the reader").isEqualTo(-2.25f);
            f.close();
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isZero();
        }
    }

    @Test
    void readConvertsHalfTypesToF32AsTheJdkAndBitMathSay() throws IOException {
        SplittableRandom rng = new SplittableRandom(4);
        int n = 4096;
        ByteBuffer data = ByteBuffer.allocate(4 * n + 1).order(ByteOrder.LITTLE_ENDIAN);
        short[] bf = new short[n];
        short[] half = new short[n];
        for (int i = 0; i < n; i++) {
            bf[i] = (short) rng.nextInt(1 << 16);          // every pattern, NaNs and infinities included
            half[i] = Float.floatToFloat16((float) rng.nextGaussian() * 100);
        }
        data.put((byte) 0);
        for (short s : bf) {
            data.putShort(s);
        }
        for (short s : half) {
            data.putShort(s);
        }
        // a 1-byte tensor first makes both half tensors unaligned: read must not care
        String json = "{\"pad\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"bf\":{\"dtype\":\"BF16\",\"shape\":[64,64],\"data_offsets\":[1," + (1 + 2 * n) + "]},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[64,64],\"data_offsets\":[" + (1 + 2 * n) + "," + (1 + 4 * n) + "]}}";
        Path file = handMade("half.safetensors", json, data.array());
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 64, 64);
            Tensor b = pool.allocate("b", DType.F32, Category.WORKSPACE, 64, 64);
            r.read("bf", a);
            r.read("h", b);
            float[] av = a.toFloatArray();
            float[] bv = b.toFloatArray();
            for (int i = 0; i < n; i++) {
                assertThat(Float.floatToRawIntBits(av[i])).isEqualTo((bf[i] & 0xffff) << 16);
                assertThat(bv[i]).isEqualTo(Float.float16ToFloat(half[i]));
            }
            Tensor c = pool.allocate("c", DType.F16, Category.WORKSPACE, 64, 64);
            r.read("h", c);
            assertThat(c.toFloatArray()).containsExactly(bv);
            assertThatThrownBy(() -> r.read("pad", pool.allocate("x", DType.F32, Category.WORKSPACE, 1)))
                    .hasMessageContaining("tensor 'pad' is I8 [1] but f32 [1] is expected");
        }
    }

    @Test
    void readNarrowsF32ToNearestEven() throws IOException {
        SplittableRandom rng = new SplittableRandom(5);
        int n = 2000;
        Tensor src = pool.allocate("src", DType.F32, Category.WORKSPACE, n);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = Float.intBitsToFloat(rng.nextInt(0x3000_0000, 0x4700_0000)) * (rng.nextBoolean() ? 1 : -1);
        }
        v[0] = Float.intBitsToFloat(0x3f80_8000);      // a tie: 1 + 2^-8 lies halfway, rounds to even 1.0
        v[1] = Float.intBitsToFloat(0x3f81_8000);      // a tie that rounds up to the even 0x3f82
        src.copyFrom(v);
        Path file = dir.resolve("f32.safetensors");
        new SafeTensorsWriter().add("w", src).write(file);
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            Tensor b = pool.allocate("b", DType.BF16, Category.WORKSPACE, n);
            Tensor h = pool.allocate("h", DType.F16, Category.WORKSPACE, n);
            r.read("w", b);
            r.read("w", h);
            for (int i = 0; i < n; i++) {
                short bits = b.segment().get(ValueLayout.JAVA_SHORT, 2L * i);
                assertThat(bits).as("bf16 of %s", v[i]).isEqualTo(nearestBf16(v[i]));
                assertThat(h.segment().get(ValueLayout.JAVA_SHORT, 2L * i))
                        .isEqualTo(Float.floatToFloat16(v[i]));
            }
            assertThat(nearestBf16(v[0])).isEqualTo((short) 0x3f80);
            assertThat(nearestBf16(v[1])).isEqualTo((short) 0x3f82);
        }
    }

    /** The bf16 nearest to a finite {@code v}, ties to the even pattern, chosen by comparing distances in double. */
    private static short nearestBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        int down = bits & 0xffff_0000;
        int up = down + 0x1_0000;
        double dDown = Math.abs((double) v - Float.intBitsToFloat(down));
        double dUp = Math.abs((double) v - Float.intBitsToFloat(up));
        int pick = dDown < dUp ? down : dUp < dDown ? up : ((down >>> 16) & 1) == 0 ? down : up;
        return (short) (pick >>> 16);
    }

    @Test
    void typesJtuneCannotHoldAreNamed() throws IOException {
        Path file = handMade("f64.safetensors",
                "{\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            assertThatThrownBy(() -> r.tensor("d", pool, Category.FROZEN_WEIGHTS))
                    .isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessage(file + ": tensor 'd' has dtype F64, which jtune cannot hold (it holds F32, BF16, F16,"
                            + " I8, U8 and I32)");
        }
    }
}
