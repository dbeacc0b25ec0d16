package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;

import jtune.cpu.SimdBackend;
import jtune.cpu.VectorWidth;
import jtune.engine.backend.Backend;
import org.junit.jupiter.api.Assumptions;

/**
 * The SIMD suites' backend and the vector width they expect: the one forced with {@code -Djtune.vector.bits}
 * (the extra surefire executions of src-test run at 256 and 128), else the machine's preferred width.
 */
final class SimdWidth {
    private SimdWidth() {
    }

    /** A SIMD backend; the suite is skipped if the forced width is wider than this CPU has (256 on a 128-bit machine). */
    static Backend create(int threads) {
        try {
            return new SimdBackend(threads);
        } catch (ExceptionInInitializerError e) {
            String why = String.valueOf(e.getCause() == null ? e : e.getCause().getMessage());
            Assumptions.assumeFalse(why.contains("wider than this CPU"), why);
            throw e;
        }
    }

    static void assertInEffect(Iterable<Backend> backends) {
        String forced = System.getProperty(VectorWidth.PROPERTY);
        int expected = forced == null || forced.isBlank() ? VectorWidth.PREFERRED_BITS : Integer.parseInt(forced.trim());
        System.out.println("cpu-simd conformance at " + expected + "-bit vectors"
                + (forced == null ? " (preferred)" : " (forced)"));
        for (Backend b : backends) {
            assertThat(b.vectorBits()).as("%s with -D%s=%s", b.describe(), VectorWidth.PROPERTY, forced).isEqualTo(expected);
        }
    }
}
