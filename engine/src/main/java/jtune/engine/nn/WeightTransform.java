package jtune.engine.nn;

/**
 * Applied by a model to each linear layer's freshly made dense weight: the identity keeps it; a method
 * returns its own {@link LinearWeight} built over it (an adapter over the frozen base, a quantized copy).
 * {@code layer} is the Hugging Face-style name without ".weight" ("model.layers.3.mlp.down_proj").
 */
@FunctionalInterface
public interface WeightTransform {
    WeightTransform IDENTITY = (s, layer, base) -> base;

    LinearWeight apply(Session s, String layer, DenseWeight base);
}
