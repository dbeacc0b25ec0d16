package jtune.test;

import jtune.engine.backend.Backend;
import org.junit.jupiter.api.Test;

/** The CPU SIMD backend's matrix products against the scalar oracle. */
class SimdGemmConformanceTest extends GemmConformance {
    @Override
    protected Backend create(int threads) {
        return SimdWidth.create(threads);
    }

    @Test
    void runsAtTheExpectedVectorWidth() {
        SimdWidth.assertInEffect(backends);
    }
}
