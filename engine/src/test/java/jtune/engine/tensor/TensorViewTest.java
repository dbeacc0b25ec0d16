package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Views read the elements index arithmetic says they should; misuse fails naming the tensor and shape. */
class TensorViewTest {
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());

    @AfterEach
    void close() {
        pool.close();
    }

    /** A (2, 3, 4) f32 tensor whose element (i, j, k) holds its row-major index 12i + 4j + k. */
    private Tensor iota() {
        Tensor t = pool.allocate("t", DType.F32, Category.WORKSPACE, 2, 3, 4);
        float[] v = new float[24];
        for (int n = 0; n < v.length; n++) {
            v[n] = n;
        }
        return t.copyFrom(v);
    }

    @Test
    void contiguousTensorIsRowMajor() {
        Tensor t = iota();
        assertThat(t.strides()).containsExactly(12, 4, 1);
        assertThat(t.isContiguous()).isTrue();
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 3; j++) {
                for (int k = 0; k < 4; k++) {
                    assertThat(t.get(i, j, k)).isEqualTo(12 * i + 4 * j + k);
                }
            }
        }
        for (int n = 0; n < 24; n++) {
            assertThat(t.offsetOf(n)).isEqualTo(n);
        }
    }

    @Test
    void sliceReadsTheSelectedElements() {
        Tensor t = iota();
        Tensor s = t.slice(1, 1, 3);
        assertThat(s.shape()).isEqualTo(Shape.of(2, 2, 4));
        assertThat(s.offset()).isEqualTo(4);
        assertThat(s.isContiguous()).isFalse();
        for (int i = 0; i < 2; i++) {
            for (int j = 0; j < 2; j++) {
                for (int k = 0; k < 4; k++) {
                    float want = 12 * i + 4 * (j + 1) + k;
                    assertThat(s.get(i, j, k)).isEqualTo(want);
                    assertThat(s.offsetOf((i * 2L + j) * 4 + k)).isEqualTo((long) want);
                }
            }
        }
        // A slice of a slice, on the last dimension, negative dimension index.
        Tensor ss = s.slice(-1, 1, 3);
        assertThat(ss.toFloatArray()).containsExactly(5, 6, 9, 10, 17, 18, 21, 22);
        // Writes through a view land in the owner.
        ss.set(-1f, 1, 1, 0);
        assertThat(t.get(1, 2, 1)).isEqualTo(-1f);
    }

    @Test
    void sliceOfTheOuterDimensionStaysContiguousAndReshapes() {
        Tensor t = iota();
        Tensor s = t.slice(0, 1, 2);
        assertThat(s.isContiguous()).isTrue();
        Tensor r = s.reshape(3, 4);
        assertThat(r.offset()).isEqualTo(12);
        assertThat(r.get(2, 3)).isEqualTo(23f);
        assertThat(t.slice(2, 0, 0).size()).isZero();
    }

    @Test
    void transposeSwapsIndices() {
        Tensor t = iota();
        Tensor tt = t.transpose(0, 2);
        assertThat(tt.shape()).isEqualTo(Shape.of(4, 3, 2));
        assertThat(tt.strides()).containsExactly(1, 4, 12);
        assertThat(tt.isContiguous()).isFalse();
        float[] all = tt.toFloatArray();
        for (int k = 0; k < 4; k++) {
            for (int j = 0; j < 3; j++) {
                for (int i = 0; i < 2; i++) {
                    assertThat(tt.get(k, j, i)).isEqualTo(12 * i + 4 * j + k);
                    assertThat(all[(k * 3 + j) * 2 + i]).isEqualTo(12 * i + 4 * j + k);
                }
            }
        }
        assertThat(t.transpose(-1, -2).get(1, 3, 2)).isEqualTo(12 + 4 * 2 + 3);
    }

    @Test
    void reshapeSharesStorage() {
        Tensor t = iota();
        Tensor r = t.reshape(6, 4);
        assertThat(r.get(4, 1)).isEqualTo(17f);
        r.set(100f, 0, 0);
        assertThat(t.get(0, 0, 0)).isEqualTo(100f);
    }

    @Test
    void reshapeOfAStridedViewFailsClearly() {
        Tensor t = iota();
        assertThatThrownBy(() -> t.transpose(0, 1).reshape(24))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'t'").hasMessageContaining("[3, 2, 4]").hasMessageContaining("strided");
        assertThatThrownBy(() -> t.slice(2, 0, 2).reshape(12))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, 3, 2]");
        assertThatThrownBy(() -> t.reshape(5, 5))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("[2, 3, 4]").hasMessageContaining("[5, 5]");
    }

    @Test
    void outOfRangeSlicesAndIndicesNameTheShape() {
        Tensor t = iota();
        assertThatThrownBy(() -> t.slice(1, 2, 4))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.slice(1, 2, 1))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.slice(0, -1, 1))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.slice(3, 0, 1))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.get(0, 3, 0))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.set(1f, 2, 0, 0))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.slice(1, 1, 2).get(0, 1, 0))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 1, 4]");
        assertThatThrownBy(() -> t.transpose(0, 3))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.get(0, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, 3, 4]");
        assertThatThrownBy(() -> t.copyFrom(new float[5]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, 3, 4]");
    }

    @Test
    void viewUsedAfterItsOwnerIsClosedFailsNamingTheTensor() {
        Tensor t = iota();
        Tensor view = t.slice(0, 0, 1).named("view");
        Tensor other = t.transpose(1, 2);
        view.close(); // a view's close frees nothing
        assertThat(t.isClosed()).isFalse();
        assertThat(view.get(0, 0, 1)).isEqualTo(1f);
        t.close();
        t.close(); // idempotent
        assertThat(view.isClosed()).isTrue();
        assertThatThrownBy(() -> view.get(0, 0, 0))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("'view'").hasMessageContaining("[1, 3, 4]").hasMessageContaining("after close");
        assertThatThrownBy(other::toFloatArray)
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("'t'").hasMessageContaining("[2, 4, 3]");
        assertThatThrownBy(() -> view.slice(1, 0, 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> view.reshape(12)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> other.transpose(0, 1)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(t::segment).isInstanceOf(IllegalStateException.class).hasMessageContaining("[2, 3, 4]");
    }

    @Test
    void wrappedMemoryIsNotFreedAndMustBeLargeEnough() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(16);
            Tensor w = Tensor.wrap(seg, "w", DType.F32, Shape.of(2, 2));
            w.set(3f, 1, 1);
            w.close();
            assertThat(w.get(1, 1)).isEqualTo(3f);
            assertThatThrownBy(() -> Tensor.wrap(seg, "big", DType.F32, Shape.of(5)))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("'big'").hasMessageContaining("[5]").hasMessageContaining("holds 16");
        }
    }

    @Test
    void storageTypesRoundTripThroughGetAndSet() {
        Tensor i8 = pool.allocate("i8", DType.I8, Category.WORKSPACE, 4);
        i8.copyFrom(new float[]{1.4f, -200f, 300f, -2.6f});
        assertThat(i8.toFloatArray()).containsExactly(1f, -128f, 127f, -3f);
        Tensor i32 = pool.allocate("i32", DType.I32, Category.WORKSPACE, 3);
        i32.copyFrom(new float[]{7f, -3f, 2.5f});
        assertThat(i32.toFloatArray()).containsExactly(7f, -3f, 3f);
        Tensor h = pool.allocate("h", DType.F16, Category.WORKSPACE, 3);
        float[] v = {0.1f, 70000f, -1e-6f};
        h.copyFrom(v);
        for (int n = 0; n < v.length; n++) {
            assertThat(h.get(n)).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(v[n])));
        }
        assertThat(h.get(1)).isEqualTo(Float.POSITIVE_INFINITY);
    }
}
