package jtune.engine.model;

import java.util.SplittableRandom;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * Where a model's tensors come from when it is built: a seeded initialisation ({@link #random}) or a model file.
 * {@link LlamaModel#create} asks for every tensor once, by its Hugging Face name, in its fixed parameter order.
 */
@FunctionalInterface
public interface WeightSource {
    /** How a freshly initialised tensor is filled; a file-backed source ignores it. */
    enum Init {
        /** normal(0, 0.02): linear weights and the embedding. */
        NORMAL,
        /** 1: norm weights. */
        ONES,
        /** 0: biases. */
        ZEROS
    }

    /**
     * The f32 tensor {@code name} of shape {@code dims}, recorded under {@code category}; the caller owns it and
     * closes it. A file-backed source fails with an {@link IllegalArgumentException} naming the file and the
     * tensor when the tensor is missing or its shape differs.
     */
    Tensor tensor(Session s, String name, Init init, Category category, long... dims);

    /**
     * Hugging Face's initialisation: normal(0, 0.02) values drawn from {@code SplittableRandom(seed)} row by row,
     * in request order; ones; zeros.
     */
    static WeightSource random(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        return (s, name, init, category, dims) -> {
            Tensor t = s.f32(name, category, dims);
            switch (init) {
                case ONES -> s.backend().fill(t, 1f);
                case ZEROS -> { }
                case NORMAL -> {
                    float[] values = new float[Math.toIntExact(t.size())];
                    for (int i = 0; i < values.length; i++) {
                        values[i] = (float) (0.02 * rng.nextGaussian());
                    }
                    t.copyFrom(values);
                }
            }
            return t;
        };
    }
}
