package jtune.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Tensors of a pool over a {@link DeviceMemory}: tagged with the device, counted in the ledger, unreachable from
 * the host except through whole-tensor copies, freed on the device when the pool closes. The device here is a
 * stand-in that keeps its "device memory" in host blocks it hands out by made-up addresses, so that any host
 * access through a tensor's segment would miss them.
 */
class DeviceTensorTest {
    /** Device memory in host blocks, addressed by numbers that are not their host addresses. */
    static final class StandIn implements DeviceMemory {
        final Arena arena = Arena.ofShared();
        final Map<Long, MemorySegment> blocks = new HashMap<>();
        long next = 1L << 40, toDevice, toHost, freed;

        @Override
        public Device device() {
            return Device.cuda(1);
        }

        @Override
        public long allocate(long bytes) {
            long address = next;
            next += (bytes + 255) / 256 * 256;
            blocks.put(address, arena.allocate(bytes));
            return address;
        }

        /** The block holding [address, address + bytes). */
        MemorySegment at(long address, long bytes) {
            for (Map.Entry<Long, MemorySegment> e : blocks.entrySet()) {
                long start = e.getKey();
                if (address >= start && address + bytes <= start + e.getValue().byteSize()) {
                    return e.getValue().asSlice(address - start, bytes);
                }
            }
            throw new AssertionError("no device block holds " + bytes + " bytes at " + address);
        }

        @Override
        public void zero(long address, long bytes) {
            at(address, bytes).fill((byte) 0);
        }

        @Override
        public void free(long address, long bytes) {
            assertThat(blocks.remove(address).byteSize()).isEqualTo(bytes);
            freed += bytes;
        }

        @Override
        public void toDevice(MemorySegment src, long address) {
            at(address, src.byteSize()).copyFrom(src);
            toDevice += src.byteSize();
        }

        @Override
        public void toHost(long address, MemorySegment dst) {
            dst.copyFrom(at(address, dst.byteSize()));
            toHost += dst.byteSize();
        }
    }

    @Test
    void deviceTensorsLiveOnTheDeviceAndMoveOnlyWhole() {
        StandIn device = new StandIn();
        MemoryLedger ledger = new MemoryLedger();
        try (MemoryPool pool = new MemoryPool(ledger, device)) {
            assertThat(pool.device()).isEqualTo(Device.cuda(1));
            Tensor t = pool.allocate("t", DType.BF16, Category.GRADIENTS, 2, 3);
            assertThat(t.device()).isEqualTo(Device.cuda(1));
            assertThat(t.segment().byteSize()).isZero();
            assertThat(t.segment().address()).isEqualTo(1L << 40);
            assertThat(ledger.current(Category.GRADIENTS)).isEqualTo(12);
            assertThat(t.toFloatArray()).containsOnly(0f);
            t.copyFrom(new float[]{1, 2, 3, 4, 5, 1f / 3});
            assertThat(t.toFloatArray()).containsExactly(1, 2, 3, 4, 5, Float.intBitsToFloat(0x3eab0000));
            assertThat(t.slice(0, 1, 2).toFloatArray()).containsExactly(4, 5, Float.intBitsToFloat(0x3eab0000));
            assertThat(device.toDevice).isEqualTo(12);
            assertThat(device.toHost).isEqualTo(12 + 12 + 6);

            assertThatThrownBy(() -> t.get(0, 0)).isInstanceOf(IllegalStateException.class)
                    .hasMessage("get of an element of tensor 't' [2, 3] bf16 on cuda:1: element access is for host "
                            + "tensors; use toFloatArray() or copyFrom(float[]), which copy the whole tensor");
            assertThatThrownBy(() -> t.set(1f, 0, 0)).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> t.transpose(0, 1).toFloatArray()).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("strided view");
            assertThatThrownBy(() -> t.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0))
                    .isInstanceOf(IndexOutOfBoundsException.class);

            t.close();
            assertThat(ledger.current(Category.GRADIENTS)).isZero();
            Tensor again = pool.allocate("again", DType.F32, Category.WORKSPACE, 3);
            assertThat(again.segment().address()).as("the freed block is reused").isEqualTo(1L << 40);
            assertThat(again.toFloatArray()).as("and zeroed").containsOnly(0f);
            pool.allocate("other", DType.F32, Category.WORKSPACE, 100);
        }
        assertThat(device.blocks).as("every device block is freed when the pool closes").isEmpty();
        assertThat(device.freed).isEqualTo(12 + 400);
    }

    @Test
    void aDeviceTensorIsUnusableOnceItsPoolIsClosed() {
        StandIn device = new StandIn();
        MemoryPool pool = new MemoryPool(new MemoryLedger(), device);
        Tensor t = pool.allocate("t", DType.F32, Category.WORKSPACE, 4);
        pool.close();
        assertThatThrownBy(t::segment).isInstanceOf(IllegalStateException.class).hasMessageContaining("after close");
    }

    @Test
    void viewsReachOnlyTheTensorsOwnElements() {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Tensor t = pool.allocate("t", DType.F32, Category.WORKSPACE, 24);
            float[] v = new float[24];
            for (int i = 0; i < v.length; i++) {
                v[i] = i;
            }
            t.copyFrom(v);
            // Rows 1..2 of a (4, 6) matrix, columns 1..4, transposed: element (j, i) = 6·(i + 1) + j + 1.
            Tensor w = t.view(new long[]{4, 2}, new long[]{1, 6}, 7);
            assertThat(w.toFloatArray()).containsExactly(7, 13, 8, 14, 9, 15, 10, 16);
            assertThat(t.view(new long[]{0, 5}, new long[]{5, 1}, 24).size()).isZero();
            assertThatThrownBy(() -> t.view(new long[]{4, 2}, new long[]{1, 6}, 18))
                    .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("reaches outside tensor 't' [24]");
            assertThatThrownBy(() -> t.view(new long[]{2}, new long[]{-1}, 3)).hasMessageContaining("negative");
            assertThatThrownBy(() -> w.view(new long[]{2}, new long[]{1}, 0)).hasMessageContaining("strided view");
        }
    }
}
