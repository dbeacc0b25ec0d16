package jtune.methods.quant;

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
}
