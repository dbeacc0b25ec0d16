package jtune.engine.train;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.Tensor;

/**
 * Training batches drawn without replacement: each epoch is a permutation of the blocks, shuffled
 * (Fisher–Yates) with a {@link SplitMix64} seeded once; batches take {@code batch} blocks at a time in that
 * order, and the few left over at the end of an epoch are skipped. The position is three numbers, the
 * generator's state before the epoch's shuffle, the epoch and the index into its permutation, so a checkpoint
 * can save it and {@link #restore} continues with exactly the batches that would have come next.
 */
public final class BatchStream {
    /** Where the stream stands: {@code rngState} is the state before this epoch's shuffle. */
    public record Position(long rngState, long epoch, int index) {
    }

    private final TokenBlocks blocks;
    private final int batch;
    private SplitMix64 rng;
    private final int[] order;
    private final int[] inputs;
    private final int[] targets;
    private long epochRngState;
    private long epoch;
    private int index;

    public BatchStream(TokenBlocks blocks, int batch, long seed) {
        if (batch < 1) {
            throw new IllegalArgumentException("batch size must be at least 1, got " + batch);
        }
        if (blocks.blocks() < batch) {
            throw new IllegalArgumentException("the training data holds " + blocks.tokenCount() + " tokens, which make "
                    + blocks.blocks() + " blocks of " + blocks.seq() + " + 1 tokens, fewer than one batch of " + batch
                    + "; use more data or a smaller --batch or --seq");
        }
        this.blocks = blocks;
        this.batch = batch;
        this.rng = new SplitMix64(seed);
        this.order = new int[blocks.blocks()];
        this.inputs = new int[batch * blocks.seq()];
        this.targets = new int[batch * blocks.seq()];
        startEpoch(0);
    }

    public int batch() {
        return batch;
    }

    public int seq() {
        return blocks.seq();
    }

    /** Batches in one epoch. */
    public int batchesPerEpoch() {
        return order.length / batch;
    }

    public Position position() {
        return new Position(epochRngState, epoch, index);
    }

    /** Continues from {@code p}, as saved by {@link #position()} of a stream over the same blocks. */
    public void restore(Position p) {
        if (p.index() < 0 || p.index() > order.length || p.epoch() < 0) {
            throw new IllegalArgumentException("data position " + p + " does not fit " + order.length + " blocks");
        }
        rng = new SplitMix64(p.rngState());
        startEpoch(p.epoch());
        index = p.index();
    }

    /** Fills tokens and targets, int32 (batch, seq), with the next batch. */
    public void next(Tensor tokens, Tensor targets) {
        if (index + batch > order.length) {
            startEpoch(epoch + 1);
        }
        for (int r = 0; r < batch; r++) {
            blocks.copyBlock(order[index + r], inputs, this.targets, r * blocks.seq());
        }
        index += batch;
        write(inputs, tokens);
        write(this.targets, targets);
    }

    private void startEpoch(long e) {
        epochRngState = rng.state();
        epoch = e;
        index = 0;
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        for (int i = order.length - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }

    /** Copies {@code values} into a contiguous int32 tensor of the same size, on the host or on a device. */
    public static void write(int[] values, Tensor t) {
        if (t.dtype() != DType.I32 || !t.isContiguous() || t.size() != values.length) {
            throw new IllegalArgumentException("expected a contiguous int32 tensor of " + values.length
                    + " elements, got " + t);
        }
        if (t.device().kind() == Device.Kind.CPU) {
            MemorySegment.copy(values, 0, t.segment(), ValueLayout.JAVA_INT, t.byteOffset(), values.length);
            return;
        }
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment host = staging.allocate(ValueLayout.JAVA_INT, values.length);
            MemorySegment.copy(values, 0, host, ValueLayout.JAVA_INT, 0, values.length);
            t.copyBytesFrom(host);
        }
    }
}
