package jtune.engine.backend;

import java.util.SplittableRandom;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/** Tensors for the scalar backend's tests: a pool, a seeded generator, and filled f32/int32 tensors. */
final class Fixture implements AutoCloseable {
    final MemoryPool pool = new MemoryPool(new MemoryLedger());
    final SplittableRandom rng;

    Fixture(long seed) {
        rng = new SplittableRandom(seed);
    }

    Tensor f32(String name, long... dims) {
        return pool.allocate(name, DType.F32, Category.WORKSPACE, dims);
    }

    Tensor of(String name, float[] values, long... dims) {
        return f32(name, dims).copyFrom(values);
    }

    /** Uniform in [lo, hi). */
    float[] uniform(int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        return v;
    }

    Tensor random(String name, double lo, double hi, long... dims) {
        Tensor t = f32(name, dims);
        return t.copyFrom(uniform(Math.toIntExact(t.size()), lo, hi));
    }

    Tensor ints(String name, int... values) {
        Tensor t = pool.allocate(name, DType.I32, Category.WORKSPACE, values.length);
        for (int i = 0; i < values.length; i++) {
            t.set(values[i], i);
        }
        return t;
    }

    @Override
    public void close() {
        pool.close();
    }
}
