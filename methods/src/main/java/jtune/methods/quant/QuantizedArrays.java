package jtune.methods.quant;

import jtune.engine.nn.DenseWeight;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;

/**
 * A quantizer's result on plain arrays, before packing: the codes one per element and the per-group scale data
 * of a (rows = out, cols = in) matrix in a {@link QuantFormat}. {@link #dequantize()} gives exactly the f32 values
 * of {@link QuantizedMatrix#weight} for the packed matrix that {@link #toMatrix} makes.
 */
public sealed interface QuantizedArrays permits IntQuantization, Nf4Quantization {
    QuantFormat format();

    int rows();

    int cols();

    /** Code of element (i, j). */
    int code(int i, int j);

    /** The dequantized matrix, rows × cols row-major, in f32 as the kernels compute it. */
    float[] dequantize();

    /** The packed matrix, its tensors allocated from {@code pool} as frozen weights and named {@code name.*}. */
    QuantizedMatrix toMatrix(MemoryPool pool, String name);

    /**
     * {@code dense}'s weight quantized by round-to-nearest in {@code format} ({@link Rtn} for integer formats,
     * {@link Nf4Quantizer} for NF4) and packed as {@code name.*} from {@code pool}; closes {@code dense}.
     */
    static QuantizedMatrix roundToNearest(DenseWeight dense, QuantFormat format, MemoryPool pool, String name) {
        try (dense) {
            float[] w = dense.weight().value().toFloatArray();
            int rows = Math.toIntExact(dense.outFeatures()), cols = Math.toIntExact(dense.inFeatures());
            QuantizedArrays q = format.kind() == QuantFormat.Kind.NF4 ? Nf4Quantizer.quantize(w, rows, cols, format)
                    : Rtn.quantize(w, rows, cols, format);
            return q.toMatrix(pool, name);
        }
    }
}
