package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class ShapeAndDTypeTest {
    @Test
    void shapeSizeDimsAndStrides() {
        Shape s = Shape.of(2, 3, 5);
        assertThat(s.rank()).isEqualTo(3);
        assertThat(s.size()).isEqualTo(30);
        assertThat(s.dim(0)).isEqualTo(2);
        assertThat(s.dim(-1)).isEqualTo(5);
        assertThat(s.dim(-3)).isEqualTo(2);
        assertThat(s.contiguousStrides()).containsExactly(15, 5, 1);
        assertThat(s.with(1, 7)).isEqualTo(Shape.of(2, 7, 5));
        assertThat(s.with(-1, 1)).isEqualTo(Shape.of(2, 3, 1));
        assertThat(s).isEqualTo(Shape.of(2, 3, 5)).hasSameHashCodeAs(Shape.of(2, 3, 5)).isNotEqualTo(Shape.of(3, 2, 5));
        assertThat(s.toString()).isEqualTo("[2, 3, 5]");
        assertThat(Shape.of().size()).isEqualTo(1);
        assertThat(Shape.of(4, 0, 3).size()).isZero();
    }

    @Test
    void shapeIsImmutable() {
        long[] dims = {2, 3};
        Shape s = Shape.of(dims);
        dims[0] = 9;
        s.toArray()[1] = 9;
        assertThat(s).isEqualTo(Shape.of(2, 3));
    }

    @Test
    void badShapesAndDimensionsNameTheShape() {
        assertThatThrownBy(() -> Shape.of(2, -1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("[2, -1]");
        assertThatThrownBy(() -> Shape.of(2, 3).dim(2))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3]");
        assertThatThrownBy(() -> Shape.of(2, 3).dim(-3))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("[2, 3]");
        assertThatThrownBy(() -> Shape.of(1L << 40, 1L << 40)).isInstanceOf(ArithmeticException.class);
    }

    @Test
    void dtypeByteCounts() {
        assertThat(DType.F32.bytesFor(7)).isEqualTo(28);
        assertThat(DType.BF16.bytesFor(7)).isEqualTo(14);
        assertThat(DType.F16.bytesFor(7)).isEqualTo(14);
        assertThat(DType.I8.bytesFor(7)).isEqualTo(7);
        assertThat(DType.I32.bytesFor(7)).isEqualTo(28);
        assertThat(DType.BF16.byteSize()).isEqualTo(2);
        assertThat(DType.F32.isFloating()).isTrue();
        assertThat(DType.I32.isFloating()).isFalse();
        assertThat(DType.BF16.toString()).isEqualTo("bf16");
        assertThatThrownBy(() -> DType.F32.bytesFor(-1)).isInstanceOf(IllegalArgumentException.class);
    }
}
