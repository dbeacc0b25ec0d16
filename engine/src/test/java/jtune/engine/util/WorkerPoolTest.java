package jtune.engine.util;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(30)
class WorkerPoolTest {
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 5})
    void everyIndexRunsExactlyOnce(int threads) {
        try (WorkerPool pool = new WorkerPool(threads)) {
            assertThat(pool.threads()).isEqualTo(threads);
            for (int tasks : new int[]{0, 1, 2, 3, 7, 1000}) {
                AtomicIntegerArray runs = new AtomicIntegerArray(Math.max(tasks, 1));
                pool.parallelFor(tasks, runs::incrementAndGet);
                for (int i = 0; i < tasks; i++) {
                    assertThat(runs.get(i)).as("index %d of %d", i, tasks).isEqualTo(1);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 5})
    void runsCoverEveryIndexOnceInOneContiguousRunPerThread(int threads) {
        try (WorkerPool pool = new WorkerPool(threads)) {
            for (int tasks : new int[]{0, 1, 2, 3, 7, 1000}) {
                AtomicIntegerArray runs = new AtomicIntegerArray(Math.max(tasks, 1));
                Thread[] by = new Thread[Math.max(tasks, 1)];
                pool.parallelRuns(tasks, i -> {
                    runs.incrementAndGet(i);
                    by[i] = Thread.currentThread();
                    // Long enough that every thread takes part: handed out in turn, the indices would interleave.
                    for (long until = System.nanoTime() + 20_000; System.nanoTime() < until; ) {
                        Thread.onSpinWait();
                    }
                });
                int changes = 0;
                for (int i = 0; i < tasks; i++) {
                    assertThat(runs.get(i)).as("index %d of %d", i, tasks).isEqualTo(1);
                    changes += i > 0 && by[i] != by[i - 1] ? 1 : 0;
                }
                // Each thread's indices are one run: the thread changes at most at the runs' borders.
                assertThat(changes).as("thread changes over %d tasks", tasks).isLessThanOrEqualTo(Math.max(0,
                        Math.min(threads, tasks) - 1));
            }
        }
    }

    @Test
    void manyShortCallsInARowAllComplete() {
        try (WorkerPool pool = new WorkerPool(3)) {
            AtomicInteger total = new AtomicInteger();
            for (int call = 0; call < 20_000; call++) {
                pool.parallelFor(1 + call % 5, i -> total.incrementAndGet());
            }
            int want = 0;
            for (int call = 0; call < 20_000; call++) {
                want += 1 + call % 5;
            }
            assertThat(total.get()).isEqualTo(want);
        }
    }

    @Test
    void workersRunTasksConcurrentlyWithTheCaller() throws InterruptedException {
        try (WorkerPool pool = new WorkerPool(2)) {
            // Each task waits for the other: this completes only if two threads run the two tasks at once.
            CountDownLatch both = new CountDownLatch(2);
            Set<Thread> seen = ConcurrentHashMap.newKeySet();
            AtomicInteger timedOut = new AtomicInteger();
            pool.parallelFor(2, i -> {
                seen.add(Thread.currentThread());
                both.countDown();
                try {
                    if (!both.await(10, TimeUnit.SECONDS)) {
                        timedOut.incrementAndGet();
                    }
                } catch (InterruptedException e) {
                    throw new IllegalStateException(e);
                }
            });
            assertThat(timedOut.get()).isZero();
            assertThat(seen).hasSize(2).contains(Thread.currentThread());
        }
    }

    @Test
    void exceptionsPropagateToTheCallerAndThePoolStaysUsable() {
        try (WorkerPool pool = new WorkerPool(2)) {
            for (int bad : new int[]{0, 17, 99}) {
                assertThatThrownBy(() -> pool.parallelFor(100, i -> {
                    if (i == bad) {
                        throw new IllegalArgumentException("task " + i + " failed");
                    }
                })).isInstanceOf(IllegalArgumentException.class).hasMessage("task " + bad + " failed");
            }
            assertThatThrownBy(() -> pool.parallelFor(10, i -> {
                throw new AssertionError("boom");
            })).isInstanceOf(AssertionError.class).hasMessage("boom");
            AtomicInteger n = new AtomicInteger();
            pool.parallelFor(50, i -> n.incrementAndGet());
            assertThat(n.get()).isEqualTo(50);
        }
    }

    @Test
    void nestedCallsRunEveryInnerIndex() {
        try (WorkerPool pool = new WorkerPool(2)) {
            AtomicIntegerArray runs = new AtomicIntegerArray(8 * 13);
            pool.parallelFor(8, i -> pool.parallelFor(13, j -> runs.incrementAndGet(i * 13 + j)));
            for (int k = 0; k < runs.length(); k++) {
                assertThat(runs.get(k)).isEqualTo(1);
            }
        }
    }

    @Test
    void closedPoolFailsClearly() {
        for (int threads : new int[]{1, 2}) {
            WorkerPool pool = new WorkerPool(threads);
            pool.close();
            pool.close();
            assertThatThrownBy(() -> pool.parallelFor(10, i -> { }))
                    .as("%d threads", threads)
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        }
    }

    @Test
    void threadCountMustBePositive() {
        assertThatThrownBy(() -> new WorkerPool(0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0");
    }
}
