package jtune.methods.peft;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import jtune.engine.backend.Checks;
import jtune.engine.nn.DenseWeight;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;
import jtune.methods.quant.LorcWeight;
import jtune.methods.quant.QuantizedWeight;
import jtune.methods.quant.QuantizedArrays;

/**
 * PEQA (Kim et al. 2023, reference §1): an integer-quantized linear weight {@code W = s ⊙ (Q − z)} whose only
 * trainable parameter is its scales s, one per output channel or per group of a row; the codes Q and the zero points
 * z are frozen and never written. Forward is the fused {@code y = x · dequant(W)ᵀ}; backward gives
 * {@code dx = dy · dequant(W)} and accumulates
 * {@code ∂L/∂s[i,k] = Σ_t dy[t,i] · Σ_{j∈k} (Q_ij − z_ik) · x[t,j]}
 * (the backend's {@code quantScaleGrad}), so no f32 weight and no weight gradient are ever formed.
 *
 * <p>The scales are f32 under {@link Category#TRAINABLE_PARAMETERS} (whatever the source's scale type: bf16 widens
 * exactly), the codes and zero points under {@link Category#FROZEN_WEIGHTS}. Parameters, named after the matrix:
 * {@code <name>.codes} (frozen u8), {@code <name>.scales} (trainable, no weight decay), {@code <name>.zeros} (frozen,
 * asymmetric formats only). Owns its matrix: closing the weight closes the parameters, which are the matrix's
 * tensors.
 */
public final class PeqaWeight implements LinearWeight {
    private final QuantizedMatrix matrix;
    private final Parameter scales;
    private final List<Parameter> parameters;

    private PeqaWeight(QuantizedMatrix matrix) {
        this.matrix = matrix;
        this.scales = new Parameter(matrix.scales().name(), matrix.scales(), true, false);
        Parameter codes = new Parameter(matrix.codes().name(), matrix.codes(), false, false);
        this.parameters = matrix.zeros() == null ? List.of(codes, scales)
                : List.of(codes, scales, new Parameter(matrix.zeros().name(), matrix.zeros(), false, false));
    }

    /**
     * A PEQA weight with the codes, zero points and scales of {@code source} (an integer format), copied into new
     * tensors from {@code pool} named {@code source.name()}{@code .codes/.scales/.zeros}; the caller still owns and
     * closes {@code source}. The copy's format is the source's with f32 scales.
     */
    public static PeqaWeight copyOf(MemoryPool pool, QuantizedMatrix source) {
        QuantFormat trained = trainedFormat(source);
        QuantizedMatrix m = QuantizedMatrix.allocate(pool, source.name(), trained, source.rows(), source.cols(),
                Category.TRAINABLE_PARAMETERS);
        try {
            MemorySegment.copy(source.codes().segment(), source.codes().byteOffset(), m.codes().segment(),
                    m.codes().byteOffset(), source.rows() * source.rowBytes());
            float[][] sz = scalesAndZeros(source);
            m.scales().copyFrom(sz[0]);
            if (trained.hasZeros()) {
                m.zeros().copyFrom(sz[1]);
            }
            return new PeqaWeight(m);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /**
     * A PEQA weight over {@code source} (an integer format), which it takes over: the codes stay the very tensor they
     * are (a file's mapped codes stay mapped and are never written), the scales are copied (widened from BF16) into a
     * new trainable f32 tensor named {@code source.name()}{@code .scales}, and BF16 zero points are widened into a new
     * frozen f32 tensor; the source's scales, and its zero points when widened, are closed. The weight's format is
     * the source's with f32 scales.
     */
    public static PeqaWeight over(MemoryPool pool, QuantizedMatrix source) {
        QuantFormat f = source.format(), trained = trainedFormat(source);
        boolean widenZeros = f.hasZeros() && source.zeros().dtype() != DType.F32;
        Tensor scales = pool.allocate(source.name() + ".scales", DType.F32, Category.TRAINABLE_PARAMETERS,
                source.rows(), source.groups());
        Tensor zeros = widenZeros ? pool.allocate(source.name() + ".zeros", DType.F32, Category.FROZEN_WEIGHTS,
                source.rows(), source.groups()) : source.zeros();
        try {
            float[][] sz = scalesAndZeros(source);
            scales.copyFrom(sz[0]);
            if (widenZeros) {
                zeros.copyFrom(sz[1]);
            }
            QuantizedMatrix m = QuantizedMatrix.of(source.name(), trained, source.rows(), source.cols(),
                    source.codes(), scales, zeros);
            source.scales().close();
            if (widenZeros) {
                source.zeros().close();
            }
            return new PeqaWeight(m);
        } catch (RuntimeException e) {
            scales.close();
            if (widenZeros) {
                zeros.close();
            }
            throw e;
        }
    }

    /** The format of a PEQA weight over {@code source}: its integer format with f32 scales; NF4 is refused. */
    private static QuantFormat trainedFormat(QuantizedMatrix source) {
        QuantFormat f = source.format();
        if (f.kind() != QuantFormat.Kind.INT) {
            throw new IllegalArgumentException("PEQA trains the scales of an integer-quantized weight; " + source
                    + " is " + f + " (NF4 has absmax values, not scales on an integer grid)");
        }
        return QuantFormat.integer(f.bits(), f.groupSize(), f.symmetric(), DType.F32);
    }

    /** The scales and the zero points of {@code source} in f32, row-major (rows, groups) each. */
    private static float[][] scalesAndZeros(QuantizedMatrix source) {
        float[] s = new float[source.rows() * source.groups()];
        float[] z = new float[s.length];
        float[] row = new float[source.groups()];
        for (int i = 0; i < source.rows(); i++) {
            source.rowScales(i, row);
            System.arraycopy(row, 0, s, i * row.length, row.length);
            source.rowZeros(i, row);
            System.arraycopy(row, 0, z, i * row.length, row.length);
        }
        return new float[][]{s, z};
    }

    /**
     * The transform that quantizes each decoder-block linear layer ("model.layers.N.*") by round-to-nearest in the
     * integer {@code format} ({@link QuantizedArrays#roundToNearest}): the layers {@code trained} accepts become PEQA
     * weights, recorded in {@code made} by layer name in model order; the others frozen {@link QuantizedWeight}s.
     * Other layers (an untied output head) stay as they are. A layer the model file stores quantized is taken as it
     * is stored instead ({@code format} does not apply to it): the accepted ones become PEQA weights over its codes
     * ({@link #over}), which must be integer codes without a LoRC correction; the others stay as stored.
     */
    public static WeightTransform rtn(QuantFormat format, Predicate<String> trained, Map<String, PeqaWeight> made) {
        return new WeightTransform() {
            @Override
            public LinearWeight apply(Session s, String layer, DenseWeight dense) {
                if (!LoraConfig.isBlockLayer(layer)) {
                    return dense;
                }
                QuantizedMatrix m = QuantizedArrays.roundToNearest(dense, format, s.pool(), layer + ".weight");
                if (!trained.test(layer)) {
                    return new QuantizedWeight(m);
                }
                try (m) {
                    PeqaWeight p = copyOf(s.pool(), m);
                    made.put(layer, p);
                    return p;
                }
            }

            @Override
            public LinearWeight applyQuantized(Session s, String layer, LinearWeight stored) {
                if (!trained.test(layer)) {
                    return stored;
                }
                if (stored instanceof LorcWeight) {
                    throw new IllegalArgumentException("PEQA does not train layers with a LoRC correction, and layer '"
                            + layer + "' is stored with one; quantize the model without --lorc-rank for peqa, or "
                            + "fine-tune this one with lora or qlora");
                }
                if (!(stored instanceof QuantizedWeight q) || q.matrix().format().kind() != QuantFormat.Kind.INT) {
                    throw new IllegalArgumentException("PEQA trains the scales of integer codes, but layer '" + layer
                            + "' is stored as " + (stored instanceof QuantizedWeight q ? q.matrix().format()
                            : stored.getClass().getSimpleName()) + " (NF4 has absmax values, not scales on an "
                            + "integer grid); quantize the model with rtn or gptq for peqa, or fine-tune this one "
                            + "with lora or qlora");
                }
                PeqaWeight p = over(s.pool(), q.matrix());
                made.put(layer, p);
                return p;
            }
        };
    }

    /** The quantized matrix; its scales tensor is the trainable parameter. */
    public QuantizedMatrix matrix() {
        return matrix;
    }

    /** The trainable scales, f32 (rows, groups). */
    public Parameter scales() {
        return scales;
    }

    @Override
    public long inFeatures() {
        return matrix.cols();
    }

    @Override
    public long outFeatures() {
        return matrix.rows();
    }

    @Override
    public void forward(Session s, Tensor x, Tensor y) {
        s.backend().quantMatmul(x, matrix, y, 1f, 0f);
    }

    @Override
    public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
        s.backend().quantScaleGrad(x, dy, matrix, scales.grad(s));
        if (dx != null) {
            Checks.shape("PEQA linear backward", dx, x.dim(0), inFeatures());
            s.backend().quantMatmulInputGrad(dy, matrix, dx, 1f, 0f);
        }
    }

    @Override
    public List<Parameter> parameters() {
        return parameters;
    }
}
