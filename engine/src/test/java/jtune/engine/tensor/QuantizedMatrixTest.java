package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The packed layout of {@link QuantizedMatrix} against bytes worked out by hand from the format's definition, the
 * reference's NF4 golden vectors (section 10.1, re-packed in our nibble order), the dequantization formulas, the
 * ledger's bytes against the format's size formula, and the validation messages.
 */
class QuantizedMatrixTest {
    private static int[] bytes(QuantizedMatrix m, int row) {
        Tensor c = m.codes();
        int[] b = new int[(int) m.rowBytes()];
        for (int i = 0; i < b.length; i++) {
            b[i] = c.segment().get(ValueLayout.JAVA_BYTE, c.offset() + row * m.rowBytes() + i) & 0xff;
        }
        return b;
    }

    @Test
    void packsEachBitWidthAsLittleEndianRunsOfEight() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            // 2 bits: codes 1,2,3,0,3,3,1,2 -> 1 | 2<<2 | 3<<4 | 3<<8 | 3<<10 | 1<<12 | 2<<14 = 0x9F39.
            QuantizedMatrix m2 = QuantizedMatrix.allocate(pool, "m2", QuantFormat.integer(2, 32, true, DType.F32), 1, 8);
            m2.setRow(0, new int[]{1, 2, 3, 0, 3, 3, 1, 2});
            assertThat(bytes(m2, 0)).containsExactly(0x39, 0x9F);
            // 3 bits, 10 columns: run 0 holds 0..7 (Σ j << 3j = 0xFAC688), run 1 holds 5, 6 and six zero pads.
            QuantizedMatrix m3 = QuantizedMatrix.allocate(pool, "m3", QuantFormat.integer(3, 0, false, DType.F32), 2, 10);
            m3.setRow(1, new int[]{0, 1, 2, 3, 4, 5, 6, 7, 5, 6});
            assertThat(m3.rowBytes()).isEqualTo(6);
            assertThat(bytes(m3, 0)).containsOnly(0);
            assertThat(bytes(m3, 1)).containsExactly(0x88, 0xC6, 0xFA, 0x35, 0x00, 0x00);
            // 4 bits: the even element in the low nibble.
            QuantizedMatrix m4 = QuantizedMatrix.allocate(pool, "m4", QuantFormat.integer(4, 64, false, DType.BF16), 1, 9);
            m4.setRow(0, new int[]{1, 2, 3, 4, 5, 6, 7, 8, 15});
            assertThat(bytes(m4, 0)).containsExactly(0x21, 0x43, 0x65, 0x87, 0x0F, 0x00, 0x00, 0x00);
            // 8 bits: a byte each.
            QuantizedMatrix m8 = QuantizedMatrix.allocate(pool, "m8", QuantFormat.integer(8, 128, true, DType.F32), 1, 3);
            m8.setRow(0, new int[]{200, 0, 17});
            assertThat(bytes(m8, 0)).containsExactly(200, 0, 17, 0, 0, 0, 0, 0);
            for (QuantizedMatrix m : new QuantizedMatrix[]{m2, m3, m4, m8}) {
                m.close();
            }
        }
    }

    @Test
    void singleCodesAndRowsAgreeAtEveryWidth() {
        SplittableRandom rng = new SplittableRandom(3);
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            for (int bits : new int[]{2, 3, 4, 8}) {
                int rows = 3, cols = 45;
                QuantizedMatrix a = QuantizedMatrix.allocate(pool, "a", QuantFormat.integer(bits, 32, false, DType.F32), rows, cols);
                QuantizedMatrix b = QuantizedMatrix.allocate(pool, "b", QuantFormat.integer(bits, 32, false, DType.F32), rows, cols);
                int[][] q = new int[rows][cols];
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        q[i][j] = rng.nextInt(1 << bits);
                        b.setCode(i, j, q[i][j]);
                    }
                    a.setRow(i, q[i]);
                }
                int[] row = new int[cols];
                for (int i = 0; i < rows; i++) {
                    assertThat(bytes(a, i)).as("%d bits, row %d", bits, i).containsExactly(bytes(b, i));
                    a.getRow(i, row);
                    assertThat(row).containsExactly(q[i]);
                    for (int j = 0; j < cols; j++) {
                        assertThat(b.code(i, j)).isEqualTo(q[i][j]);
                    }
                }
                a.close();
                b.close();
            }
        }
    }

    @Test
    void nf4GoldenVectorsInOurNibbleOrder() {
        // Reference section 10.1: codes [12, 5, 15, 7] (bitsandbytes bytes 0xC5 0xF7, even element high) and
        // [12, 5, 7, 0] (bytes 197, 112); ours put the even element in the low nibble: 0x5C 0x7F and 0x5C 0x07.
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            QuantizedMatrix m = QuantizedMatrix.allocate(pool, "nf4", QuantFormat.nf4(64, false), 2, 4);
            float[][] w = {{0.5f, -0.2f, 1.0f, 0.0f}, {0.9f, -0.3f, 0.02f, -1.8f}};
            float[] absmax = {1.0f, 1.8f};
            for (int i = 0; i < 2; i++) {
                float inv = 1f / absmax[i];
                int[] q = new int[4];
                for (int j = 0; j < 4; j++) {
                    q[j] = Nf4.nearest(w[i][j] * inv);
                }
                m.setRow(i, q);
                m.scales().set(absmax[i], i, 0);
            }
            assertThat(bytes(m, 0)).containsExactly(0x5C, 0x7F, 0, 0);
            assertThat(bytes(m, 1)).containsExactly(0x5C, 0x07, 0, 0);
            float[][] want = {{0.44070983f, -0.18477343f, 1.0f, 0.0f}, {0.793278f, -0.332592f, 0.0f, -1.8f}};
            for (int i = 0; i < 2; i++) {
                for (int j = 0; j < 4; j++) {
                    assertThat(m.weight(i, j)).isCloseTo(want[i][j], within(1e-6f));
                }
            }
            m.close();
        }
    }

    @Test
    void integerWeightsAreScaleTimesCodeMinusZero() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            QuantizedMatrix asym = QuantizedMatrix.allocate(pool, "a", QuantFormat.integer(3, 32, false, DType.F32), 1, 40);
            int[] q = new int[40];
            q[3] = 7;
            q[35] = 1;
            asym.setRow(0, q);
            asym.scales().copyFrom(new float[]{0.25f, -1.5f});
            asym.zeros().copyFrom(new float[]{3f, 5f});
            assertThat(asym.weight(0, 3)).isEqualTo(0.25f * (7 - 3));
            assertThat(asym.weight(0, 4)).isEqualTo(0.25f * -3);
            assertThat(asym.weight(0, 35)).isEqualTo(-1.5f * (1 - 5));
            assertThat(asym.zero(0, 1)).isEqualTo(5f);

            // Symmetric: z = 2^(bits-1) = 8 for 4 bits; bf16 scales are stored rounded to bf16.
            QuantizedMatrix sym = QuantizedMatrix.allocate(pool, "s", QuantFormat.integer(4, 0, true, DType.BF16), 2, 5);
            assertThat(sym.zeros()).isNull();
            sym.setRow(1, new int[]{0, 8, 15, 9, 1});
            sym.scales().copyFrom(new float[]{1f, 0.1f});
            float s = Float.intBitsToFloat((Tensor.toBf16(0.1f) & 0xffff) << 16);
            assertThat(sym.scale(1, 0)).isEqualTo(s);
            assertThat(new float[]{sym.weight(1, 0), sym.weight(1, 1), sym.weight(1, 2)})
                    .containsExactly(s * -8, 0f, s * 7);
            assertThat(sym.zero(1, 0)).isEqualTo(8f);
            asym.close();
            sym.close();
        }
    }

    @Test
    void doubleQuantizedAbsmaxDecodesThroughTheDynamicMap() {
        // 3 rows x 150 columns in blocks of 32: 5 groups per row, 15 absmax values, one 256-block. A second
        // matrix of 60 rows has 300 values: two 256-blocks, so the block index n / 256 matters.
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            QuantizedMatrix m = QuantizedMatrix.allocate(pool, "dq", QuantFormat.nf4(32, true), 60, 150);
            assertThat(m.scales()).isNull();
            assertThat(m.absmaxCodes().shape()).isEqualTo(Shape.of(60, 5));
            assertThat(m.absmaxScales().shape()).isEqualTo(Shape.of(2));
            m.absmaxScales().copyFrom(new float[]{0.5f, 0.25f});
            m.absmaxOffset().set(0.125f, 0);
            m.absmaxCodes().set(255, 0, 1);   // n = 1: map[255] = 1
            m.absmaxCodes().set(127, 51, 0);  // n = 255: map[127] = 0
            m.absmaxCodes().set(0, 51, 1);    // n = 256: second block
            m.absmaxCodes().set(200, 59, 4);  // n = 299
            assertThat(m.scale(0, 1)).isEqualTo(1f * 0.5f + 0.125f);
            assertThat(m.scale(51, 0)).isEqualTo(0.125f);
            assertThat(m.scale(51, 1)).isEqualTo(DynamicMap.value(0) * 0.25f + 0.125f);
            assertThat(m.scale(59, 4)).isEqualTo(DynamicMap.value(200) * 0.25f + 0.125f);
            m.setCode(59, 140, 15);
            assertThat(m.weight(59, 140)).isEqualTo(1f * m.scale(59, 4));
            m.close();
        }
    }

    @Test
    void ledgerCountsTheFormatsTrueBytes() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger)) {
            // int4 g128 asym bf16, 64 x 1000: codes 64·125·4, scales and zeros 64·8·2 each.
            QuantizedMatrix a = QuantizedMatrix.allocate(pool, "a", QuantFormat.integer(4, 128, false, DType.BF16), 64, 1000);
            long want = 64L * 125 * 4 + 2 * 64L * 8 * 2;
            assertThat(a.bytes()).isEqualTo(want);
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isEqualTo(want);
            // int3 per-channel sym f32, scales trainable (PEQA): codes 7·ceil(13/8)·3, scales 7·4.
            QuantizedMatrix p = QuantizedMatrix.allocate(pool, "p", QuantFormat.integer(3, 0, true, DType.F32), 7, 13,
                    Category.TRAINABLE_PARAMETERS);
            assertThat(p.bytes()).isEqualTo(7L * 2 * 3 + 7 * 4);
            assertThat(ledger.current(Category.TRAINABLE_PARAMETERS)).isEqualTo(7 * 4);
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isEqualTo(want + 7 * 2 * 3);
            // NF4 + DQ on 64 x 4096 (numel 262144): the reference's numel/2 + numel/64 + 4·numel/16384 + 4.
            QuantizedMatrix n = QuantizedMatrix.allocate(pool, "n", QuantFormat.nf4(64, true), 64, 4096);
            long numel = 64L * 4096;
            assertThat(n.bytes()).isEqualTo(numel / 2 + numel / 64 + 4 * numel / 16384 + 4);
            assertThat(n.bytes() * 8.0 / numel).isCloseTo(4.127, within(0.001));
            // NF4 without DQ: 4.5 bits per weight.
            QuantizedMatrix f = QuantizedMatrix.allocate(pool, "f", QuantFormat.nf4(64, false), 64, 4096);
            assertThat(f.bytes() * 8.0 / numel).isEqualTo(4.5);
            long before = ledger.currentTotal();
            f.close();
            n.close();
            assertThat(ledger.currentTotal()).isEqualTo(before - f.bytes() - n.bytes());
            a.close();
            p.close();
            assertThat(ledger.currentTotal()).isZero();
            assertThat(a.isClosed()).isTrue();
        }
    }

    @Test
    void formatsRejectInvalidCombinationsInOneSentence() {
        assertThatThrownBy(() -> QuantFormat.integer(5, 128, false, DType.F32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2, 3, 4 or 8 bits, not 5");
        assertThatThrownBy(() -> QuantFormat.integer(4, 100, false, DType.F32))
                .hasMessageContaining("32, 64, 128 or 256").hasMessageContaining("not 100");
        assertThatThrownBy(() -> QuantFormat.integer(4, 512, false, DType.F32)).hasMessageContaining("not 512");
        assertThatThrownBy(() -> QuantFormat.integer(4, 128, false, DType.F16)).hasMessageContaining("f32 or bf16, not f16");
        assertThatThrownBy(() -> QuantFormat.nf4(48, false)).hasMessageContaining("power of two from 32 to 4096");
        assertThatThrownBy(() -> new QuantFormat(QuantFormat.Kind.NF4, 3, 64, false, DType.F32, false))
                .hasMessageContaining("NF4 codes have 4 bits, not 3");
        assertThatThrownBy(() -> new QuantFormat(QuantFormat.Kind.INT, 4, 64, false, DType.F32, true))
                .hasMessageContaining("double quantization applies to NF4");
        assertThatThrownBy(() -> new QuantFormat(QuantFormat.Kind.NF4, 4, 64, true, DType.F32, false))
                .hasMessageContaining("cannot be marked symmetric");
        assertThatThrownBy(() -> new QuantFormat(QuantFormat.Kind.NF4, 4, 64, false, DType.BF16, false))
                .hasMessageContaining("NF4 absmax values are f32");
        assertThat(QuantFormat.integer(4, 128, false, DType.BF16).toString()).isEqualTo("int4 g128 asym bf16");
        assertThat(QuantFormat.nf4(64, true).toString()).isEqualTo("nf4 b64 dq");
        QuantFormat pc = QuantFormat.integer(8, 0, true, DType.F32);
        assertThat(pc.groups(1000)).isEqualTo(1);
        assertThat(pc.groupWidth(1000)).isEqualTo(1000);
        assertThat(QuantFormat.integer(2, 64, true, DType.F32).groups(129)).isEqualTo(3);
        assertThat(QuantFormat.integer(3, 64, true, DType.F32).rowBytes(17)).isEqualTo(9);
    }

    @Test
    void matricesOverGivenTensorsAreValidated() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            QuantFormat asym = QuantFormat.integer(4, 32, false, DType.F32);
            Tensor codes = pool.allocate("c", DType.U8, Category.FROZEN_WEIGHTS, 3, 20);
            Tensor scales = pool.allocate("s", DType.F32, Category.FROZEN_WEIGHTS, 3, 2);
            Tensor zeros = pool.allocate("z", DType.F32, Category.FROZEN_WEIGHTS, 3, 2);
            QuantizedMatrix ok = QuantizedMatrix.of("w", asym, 3, 40, codes, scales, zeros);
            assertThat(ok.tensors()).containsExactly(codes, scales, zeros);
            assertThatThrownBy(() -> QuantizedMatrix.of("w", asym, 3, 41, codes, scales, zeros))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("quantized matrix 'w': its codes must be a contiguous uint8 tensor [3, 24]");
            assertThatThrownBy(() -> QuantizedMatrix.of("w", asym, 3, 40, codes, scales, null))
                    .hasMessageContaining("needs its zeros tensor, f32 [3, 2]");
            assertThatThrownBy(() -> QuantizedMatrix.of("w", QuantFormat.integer(4, 32, true, DType.F32), 3, 40, codes,
                    scales, zeros)).hasMessageContaining("no stored zero points");
            assertThatThrownBy(() -> QuantizedMatrix.of("w", QuantFormat.integer(4, 32, false, DType.BF16), 3, 40, codes,
                    scales, zeros)).hasMessageContaining("its scales must be a contiguous bf16 tensor [3, 2]");
            assertThatThrownBy(() -> QuantizedMatrix.of("w", QuantFormat.nf4(64, true), 3, 40, codes, scales, null))
                    .hasMessageContaining("built with ofDoubleQuant");
            assertThatThrownBy(() -> QuantizedMatrix.ofDoubleQuant("w", asym, 3, 40, codes, scales, scales, scales))
                    .hasMessageContaining("not double-quantized NF4");
            assertThatThrownBy(() -> QuantizedMatrix.ofDoubleQuant("w", QuantFormat.nf4(32, true), 3, 40, codes, codes,
                    scales, scales)).hasMessageContaining("its absmax codes must be a contiguous uint8 tensor [3, 2]");
            assertThatThrownBy(() -> QuantizedMatrix.allocate(pool, "w", asym, 0, 40))
                    .hasMessageContaining("must have from 1 to 2147483647 rows, not 0");
            assertThatThrownBy(() -> ok.setCode(0, 0, 16)).hasMessageContaining("takes codes from 0 to 15, not 16");
            assertThatThrownBy(() -> ok.setRow(0, new int[39])).hasMessageContaining("has 40 columns");
            assertThatThrownBy(() -> ok.code(3, 0)).isInstanceOf(IndexOutOfBoundsException.class)
                    .hasMessageContaining("element (3, 0) is outside quantized matrix 'w' (3, 40) int4 g32 asym f32");
            assertThatThrownBy(() -> ok.zero(0, 2)).isInstanceOf(IndexOutOfBoundsException.class);
            ok.close();
            assertThat(codes.isClosed()).isTrue();
        }
    }
}
