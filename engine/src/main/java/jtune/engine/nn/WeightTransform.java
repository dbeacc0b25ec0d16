package jtune.engine.nn;

/**
 * Applied by a model to each linear layer's freshly made dense weight: the identity keeps it; a method
 * returns its own {@link LinearWeight} built over it (an adapter over the frozen base, a quantized copy).
 * {@code layer} is the Hugging Face-style name without ".weight" ("model.layers.3.mlp.down_proj").
 *
 * <p>A layer that the model file stores quantized has no dense weight: the loader reads it as the frozen weight its
 * {@link jtune.engine.io.QuantizedLayersProvider} makes and hands that to {@link #applyQuantized} instead. A method
 * that can work over such a base (an adapter wraps it, PEQA trains its scales) overrides that method; one that needs
 * the dense values (a quantizer) keeps the default, which refuses the layer.
 */
@FunctionalInterface
public interface WeightTransform {
    /** Keeps every weight as it is, dense or stored quantized. */
    WeightTransform IDENTITY = new WeightTransform() {
        @Override
        public LinearWeight apply(Session s, String layer, DenseWeight base) {
            return base;
        }

        @Override
        public LinearWeight applyQuantized(Session s, String layer, LinearWeight base) {
            return base;
        }
    };

    LinearWeight apply(Session s, String layer, DenseWeight base);

    /**
     * What this transform makes of layer {@code layer} stored quantized, {@code base} being the frozen weight read from
     * the file (owned from here on by what is returned: base itself, a weight that owns it, or one that took what it
     * needed and closed it; if this throws, the caller closes base). The default refuses: it is for transforms that
     * need the dense weight.
     */
    default LinearWeight applyQuantized(Session s, String layer, LinearWeight base) {
        throw new IllegalArgumentException("layer '" + layer + "' is stored quantized, and this method needs its dense "
                + "f32 weight; load the unquantized model instead");
    }
}
