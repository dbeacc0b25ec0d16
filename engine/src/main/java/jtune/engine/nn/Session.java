package jtune.engine.nn;

import jtune.engine.backend.Backend;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/** What layers compute with: the backend that runs the kernels and the pool their tensors come from. */
public record Session(Backend backend, MemoryPool pool) {

    public MemoryLedger ledger() {
        return pool.ledger();
    }

    /** A new zero-filled f32 tensor recorded under {@code category}. */
    public Tensor f32(String name, Category category, long... dims) {
        return pool.allocate(name, DType.F32, category, dims);
    }

    /** A new zero-filled int32 tensor recorded under {@code category}. */
    public Tensor i32(String name, Category category, long... dims) {
        return pool.allocate(name, DType.I32, category, dims);
    }
}
