package jtune.test;

import jtune.engine.backend.Backend;
import org.junit.jupiter.api.Test;

/** The CPU SIMD backend's quantized-weight kernels against the scalar oracle. */
class SimdQuantConformanceTest extends QuantConformance {
    @Override
    protected Backend create(int threads) {
        return SimdWidth.create(threads);
    }

    @Test
    void runsAtTheExpectedVectorWidth() {
        SimdWidth.assertInEffect(backends);
    }
}
