package jtune.methods.quant;

import java.util.List;
import jtune.engine.backend.Checks;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/**
 * A frozen linear weight stored as a {@link QuantizedMatrix}: {@code y = x · dequant(W)ᵀ} by the backend's fused
 * {@code quantMatmul}, and in backward only the input gradient {@code dx = dy · dequant(W)}; nothing is trainable.
 * Its parameters are the matrix's tensors (codes, scales, zeros...), frozen, under their own names. It owns the
 * matrix and closes it.
 */
public final class QuantizedWeight implements LinearWeight {
    private final QuantizedMatrix matrix;
    private final List<Parameter> parameters;

    public QuantizedWeight(QuantizedMatrix matrix) {
        this.matrix = matrix;
        this.parameters = matrix.tensors().stream().map(t -> new Parameter(t.name(), t, false, false)).toList();
    }

    public QuantizedMatrix matrix() {
        return matrix;
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
        if (dx != null) {
            Checks.shape("quantized linear backward", dx, x.dim(0), inFeatures());
            s.backend().quantMatmulInputGrad(dy, matrix, dx, 1f, 0f);
        }
    }

    @Override
    public List<Parameter> parameters() {
        return parameters;
    }

    @Override
    public void close() {
        matrix.close();
    }
}
