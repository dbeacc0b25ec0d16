package jtune.test;

import jtune.engine.backend.Backend;
import org.junit.jupiter.api.extension.ExtendWith;

/** The GPU backend's f32 matrix products against the scalar oracle; skipped where no GPU can be used. */
@ExtendWith(GpuPresent.class)
class GpuGemmConformanceTest extends GemmConformance {
    @Override
    protected Backend create(int threads) {
        return StagedGpu.open();
    }

    @Override
    protected int[] threadCounts() {
        return new int[]{1};
    }
}
