package jtune.test;

import jtune.engine.backend.Backend;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The GPU backend's element-wise, row, training and optimizer ops against the scalar oracle, through
 * {@link StagedGpu}; skipped with the reason where no GPU can be used.
 */
@ExtendWith(GpuPresent.class)
class GpuBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend create(int threads) {
        return StagedGpu.open();
    }

    /** The GPU backend has one host thread whatever is asked. */
    @Override
    protected int[] threadCounts() {
        return new int[]{1};
    }
}
