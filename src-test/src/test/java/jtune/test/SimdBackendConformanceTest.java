package jtune.test;

import jtune.engine.backend.Backend;
import org.junit.jupiter.api.Test;

/** The CPU SIMD backend's element-wise, row, training and optimizer ops against the scalar oracle. */
class SimdBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend create(int threads) {
        return SimdWidth.create(threads);
    }

    @Test
    void runsAtTheExpectedVectorWidth() {
        SimdWidth.assertInEffect(backends);
    }
}
