package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.TestInstance;

/**
 * What every conformance suite shares: the backend under test at each thread count, the scalar oracle,
 * and per test a fresh seed (printed; {@code -Djtune.test.seed=S} replays one) with its {@link Operands}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class ConformanceSupport {
    /** The awkward sizes: 1, 7, 13, 64, 207, 702, 4098, and one below, at and above 4, 8, 16 and 32 floats. */
    static final long[] SIZES = {1, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33, 64, 207, 702, 4098};

    protected final ScalarBackend oracle = new ScalarBackend();
    /** The backend under test, once per thread count of {@link #threadCounts()}. */
    protected List<Backend> backends;
    protected Operands ops;
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());

    /** A new backend under test using {@code threads} threads. */
    protected abstract Backend create(int threads);

    /** The thread counts to test; 1 and 2 cover the serial path and the split with its seams. */
    protected int[] threadCounts() {
        return new int[]{1, 2};
    }

    @BeforeAll
    void startBackends() {
        backends = Arrays.stream(threadCounts()).mapToObj(this::create).toList();
        for (int i = 0; i < backends.size(); i++) {
            assertThat(backends.get(i).threads()).isEqualTo(threadCounts()[i]);
        }
    }

    @AfterAll
    void closeBackends() {
        backends.forEach(Backend::close);
        pool.close();
    }

    @BeforeEach
    void seed(TestInfo info) {
        long seed = Long.getLong("jtune.test.seed", System.nanoTime() * 0x9E3779B97F4A7C15L);
        System.out.println(getClass().getSimpleName() + "." + info.getTestMethod().map(m -> m.getName()).orElse("?")
                + ": seed " + seed + " (replay with -Djtune.test.seed=" + seed + ")");
        ops = new Operands(seed, pool);
    }

    @AfterEach
    void freeOperands() {
        ops.close();
    }

    /** "op shape on backend (seed S)": the first words of every failure message. */
    String what(Backend b, String op, Object shape) {
        return op + " " + (shape instanceof long[] dims ? Arrays.toString(dims) : shape) + " on " + b.describe()
                + " (seed " + ops.seed + ")";
    }

    /**
     * The call fails on the oracle with {@code type}, and on every backend under test with the same type and a
     * message holding each of {@code fragments} (the shapes, names or values the message must name).
     */
    void sameError(String what, Class<? extends Throwable> type, Consumer<Backend> call, String... fragments) {
        Throwable want = catchThrowable(() -> call.accept(oracle));
        assertThat(want).as("oracle: %s", what).isInstanceOf(type);
        for (String f : fragments) {
            assertThat(want.getMessage()).as("oracle: %s", what).contains(f);
        }
        for (Backend b : backends) {
            Throwable got = catchThrowable(() -> call.accept(b));
            assertThat(got).as("%s on %s", what, b.describe()).isInstanceOf(type);
            for (String f : fragments) {
                assertThat(got.getMessage()).as("%s on %s", what, b.describe()).contains(f);
            }
        }
    }
}
