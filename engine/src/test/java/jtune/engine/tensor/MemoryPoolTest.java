package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The ledger's byte counts are exact; the pool reuses freed blocks of the same size. */
class MemoryPoolTest {
    @Test
    void ledgerCountsExactBytesPerCategory() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger)) {
            Tensor w = pool.allocate("w", DType.BF16, Category.FROZEN_WEIGHTS, 3, 5);         // 30 bytes
            Tensor p = pool.allocate("p", DType.F32, Category.TRAINABLE_PARAMETERS, 7);       // 28
            Tensor g = pool.allocate("g", DType.F32, Category.GRADIENTS, 7);                  // 28
            Tensor m = pool.allocate("m", DType.F16, Category.OPTIMIZER_STATE, 2, 7);         // 28
            Tensor a = pool.allocate("a", DType.I32, Category.ACTIVATIONS, 11);               // 44
            Tensor q = pool.allocate("q", DType.I8, Category.WORKSPACE, 13);                  // 13
            assertThat(w.category()).isEqualTo(Category.FROZEN_WEIGHTS);
            assertThat(ledger.current(Category.FROZEN_WEIGHTS)).isEqualTo(30);
            assertThat(ledger.current(Category.TRAINABLE_PARAMETERS)).isEqualTo(28);
            assertThat(ledger.current(Category.GRADIENTS)).isEqualTo(28);
            assertThat(ledger.current(Category.OPTIMIZER_STATE)).isEqualTo(28);
            assertThat(ledger.current(Category.ACTIVATIONS)).isEqualTo(44);
            assertThat(ledger.current(Category.WORKSPACE)).isEqualTo(13);
            assertThat(ledger.currentTotal()).isEqualTo(171);
            assertThat(ledger.peakTotal()).isEqualTo(171);

            a.close();
            q.close();
            assertThat(ledger.current(Category.ACTIVATIONS)).isZero();
            assertThat(ledger.peak(Category.ACTIVATIONS)).isEqualTo(44);
            assertThat(ledger.currentTotal()).isEqualTo(114);

            // A second activation of 20 bytes: the category peak stays 44, the total peak stays 171.
            Tensor a2 = pool.allocate("a2", DType.F32, Category.ACTIVATIONS, 5);
            assertThat(ledger.current(Category.ACTIVATIONS)).isEqualTo(20);
            assertThat(ledger.peak(Category.ACTIVATIONS)).isEqualTo(44);
            assertThat(ledger.peakTotal()).isEqualTo(171);
            assertThat(ledger.snapshot()).containsEntry(Category.ACTIVATIONS, 20L).containsEntry(Category.WORKSPACE, 0L);

            for (Tensor t : new Tensor[]{w, p, g, m, a2}) {
                t.close();
            }
            assertThat(ledger.currentTotal()).isZero();
            assertThat(ledger.peak(Category.FROZEN_WEIGHTS)).isEqualTo(30);
        }
    }

    @Test
    void totalPeakIsThePeakOfTheSumNotTheSumOfPeaks() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger)) {
            pool.allocate("a", DType.F32, Category.ACTIVATIONS, 100).close();   // 400 bytes, freed
            Tensor g = pool.allocate("g", DType.F32, Category.GRADIENTS, 50);   // 200 bytes
            assertThat(ledger.peak(Category.ACTIVATIONS) + ledger.peak(Category.GRADIENTS)).isEqualTo(600);
            assertThat(ledger.peakTotal()).isEqualTo(400);
            Tensor w = pool.allocate("w", DType.F32, Category.WORKSPACE, 60);   // 240: total 440
            assertThat(ledger.peakTotal()).isEqualTo(440);
            g.close();
            w.close();
        }
    }

    @Test
    void freedBlocksAreReusedForTheSameSizeAndComeBackZeroed() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger)) {
            Tensor a = pool.allocate("a", DType.F32, Category.WORKSPACE, 64);
            long address = a.segment().address();
            assertThat(address % MemoryPool.ALIGNMENT).isZero();
            a.copyFrom(new float[64]).set(5f, 3);
            long reserved = pool.reservedBytes();
            assertThat(reserved).isEqualTo(256);
            a.close();
            assertThat(pool.reservedBytes()).isEqualTo(reserved);

            // Same byte size under another shape, type and category: the same block, zeroed, nothing new reserved.
            Tensor b = pool.allocate("b", DType.BF16, Category.GRADIENTS, 8, 16);
            assertThat(b.segment().address()).isEqualTo(address);
            assertThat(pool.reservedBytes()).isEqualTo(reserved);
            assertThat(b.toFloatArray()).containsOnly(0f);
            assertThat(ledger.current(Category.WORKSPACE)).isZero();
            assertThat(ledger.current(Category.GRADIENTS)).isEqualTo(256);

            // Another size takes a new, aligned block.
            Tensor c = pool.allocate("c", DType.F32, Category.WORKSPACE, 3);
            assertThat(pool.reservedBytes()).isEqualTo(reserved + 12);
            assertThat(c.segment().address() % MemoryPool.ALIGNMENT).isZero();
            b.close();
            c.close();
        }
    }

    @Test
    void steadyStateLoopReservesNothingNew() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            long reserved = -1;
            for (int step = 0; step < 5; step++) {
                List<Tensor> live = new ArrayList<>();
                for (int n = 1; n <= 6; n++) {
                    live.add(pool.allocate("t" + n, DType.F32, Category.ACTIVATIONS, n, 17));
                }
                live.forEach(Tensor::close);
                if (step == 0) {
                    reserved = pool.reservedBytes();
                }
                assertThat(pool.reservedBytes()).isEqualTo(reserved);
            }
            assertThat(pool.ledger().currentTotal()).isZero();
        }
    }

    @Test
    void tableListsEveryCategoryAndTheTotal() {
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger)) {
            Tensor t = pool.allocate("t", DType.F32, Category.OPTIMIZER_STATE, 384); // 1536 bytes
            String table = ledger.table();
            for (Category c : Category.values()) {
                assertThat(table).contains(c.label());
            }
            assertThat(table).contains("total").contains("1.50 KiB");
            assertThat(table.lines().count()).isEqualTo(Category.values().length + 2);
            t.close();
        }
        assertThat(MemoryLedger.human(0)).isEqualTo("0 B");
        assertThat(MemoryLedger.human(1023)).isEqualTo("1023 B");
        assertThat(MemoryLedger.human(1024)).isEqualTo("1.00 KiB");
        assertThat(MemoryLedger.human(3L << 30)).isEqualTo("3.00 GiB");
        assertThat(MemoryLedger.human(150L << 20)).isEqualTo("150 MiB");
    }

    @Test
    void releasingMoreThanRecordedFails() {
        MemoryLedger ledger = new MemoryLedger();
        ledger.allocated(Category.GRADIENTS, 10);
        assertThatThrownBy(() -> ledger.released(Category.GRADIENTS, 11))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("gradients");
    }

    @Test
    void closedPoolRefusesAllocationAndItsTensorsFail() {
        MemoryPool pool = new MemoryPool(new MemoryLedger());
        Tensor t = pool.allocate("t", DType.F32, Category.WORKSPACE, 4);
        pool.close();
        assertThatThrownBy(() -> pool.allocate("u", DType.F32, Category.WORKSPACE, 4))
                .isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
        assertThatThrownBy(() -> t.get(0)).isInstanceOf(IllegalStateException.class);
        t.close();
        assertThat(pool.ledger().currentTotal()).isZero();
    }

    @Test
    void concurrentAllocationKeepsTheLedgerExact() throws InterruptedException {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Thread[] threads = new Thread[4];
            for (int i = 0; i < threads.length; i++) {
                int size = i + 1;
                threads[i] = Thread.ofPlatform().start(() -> {
                    for (int n = 0; n < 2000; n++) {
                        pool.allocate("t", DType.F32, Category.WORKSPACE, size).close();
                    }
                });
            }
            for (Thread t : threads) {
                t.join();
            }
            assertThat(pool.ledger().currentTotal()).isZero();
            assertThat(pool.ledger().peak(Category.WORKSPACE)).isBetween(4L, 40L);
        }
    }
}
