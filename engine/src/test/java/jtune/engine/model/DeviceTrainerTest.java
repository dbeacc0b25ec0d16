package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.LrSchedule;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import jtune.engine.train.Progress;
import jtune.engine.train.SplitMix64;
import jtune.engine.train.TokenBlocks;
import jtune.engine.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer with every tensor on a device (the {@link LoopbackBackend} stand-in): batches go up, checkpoints come
 * down and go back up through whole-tensor copies, and a run stopped and resumed on the device gives bit for bit the
 * uninterrupted device run, which gives bit for bit the same run on host tensors (the stand-in computes with the
 * scalar oracle). This is what lets {@code jtune train} run on the GPU.
 */
class DeviceTrainerTest {
    private static final LlamaConfig CONFIG = new LlamaConfig(16, 24, 2, 4, 2, 4, 11, 8, 10000, null, 1e-5f, false,
            false, false);
    private static final int STEPS = 6;

    @TempDir
    Path dir;

    private record Run(float[] losses, float lastEval, List<float[]> parameters) {
    }

    private static int[] corpus() {
        SplitMix64 r = new SplitMix64(7);
        int[] t = new int[600];
        for (int i = 1; i < t.length; i++) {
            t[i] = r.nextInt(10) < 7 ? (3 * t[i - 1] + 1) % 11 : r.nextInt(11);
        }
        return t;
    }

    /** Trains to step {@code steps} in {@code out}, first resuming from its checkpoint when {@code resume}. */
    private static Run train(Backend backend, Path out, long steps, boolean resume) throws IOException {
        TokenBlocks[] split = TokenBlocks.split(corpus(), 8, 0.1);
        try (MemoryPool pool = new MemoryPool(new MemoryLedger(), backend.memory())) {
            Session s = new Session(backend, pool);
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            try (LlamaModel model = LlamaModel.create(s, CONFIG, 5, WeightTransform.IDENTITY, false);
                 AdamW adamw = new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f);
                 Trainer trainer = new Trainer(s, model, adamw, LrSchedule.cosine(0.02, 2, STEPS, 0.1),
                         new BatchStream(split[0], 3, 1234), split[1], new Trainer.Options(2, steps, 1.0, 3, 0, 0),
                         new Trainer.Output(out, new Progress(new PrintStream(err, true, StandardCharsets.UTF_8), false),
                                 null, Map.of("options", "{}")))) {
                if (resume) {
                    trainer.resume(out.resolve(Checkpoint.FILE));
                }
                Trainer.Result r = trainer.run(false);
                List<float[]> values = new ArrayList<>();
                for (Parameter p : model.parameters()) {
                    values.add(p.value().toFloatArray());
                }
                return new Run(r.losses(), r.lastEvalLoss(), values);
            }
        }
    }

    @Test
    void aRunOnADeviceCheckpointsAndResumesBitForBitAsOnTheHost() throws IOException {
        Run host = train(new ScalarBackend(), dir.resolve("host"), STEPS, false);
        LoopbackBackend straightDevice = new LoopbackBackend();
        Run device = train(straightDevice, dir.resolve("device"), STEPS, false);
        assertThat(device.losses()).containsExactly(host.losses());
        assertThat(device.lastEval()).isEqualTo(host.lastEval()).isFinite();
        for (int i = 0; i < host.parameters().size(); i++) {
            assertThat(device.parameters().get(i)).containsExactly(host.parameters().get(i));
        }
        assertThat(straightDevice.loopback().copies).as("host-device copies").isPositive();

        Path split = dir.resolve("split");
        Run first = train(new LoopbackBackend(), split, 3, false);
        // The checkpoint written from the device holds the device's values.
        try (SafeTensorsReader r = SafeTensorsReader.open(split.resolve(Checkpoint.FILE));
             MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Tensor embed = pool.allocate("embed", jtune.engine.tensor.DType.F32, Category.WORKSPACE,
                    CONFIG.vocab(), CONFIG.dim());
            r.read("model.embed_tokens.weight", embed);
            assertThat(embed.toFloatArray()).containsExactly(first.parameters().getFirst());
        }
        Run second = train(new LoopbackBackend(), split, STEPS, true);
        float[] losses = new float[STEPS];
        System.arraycopy(first.losses(), 0, losses, 0, 3);
        System.arraycopy(second.losses(), 0, losses, 3, 3);
        assertThat(losses).containsExactly(host.losses());
        assertThat(second.lastEval()).isEqualTo(host.lastEval());
        for (int i = 0; i < host.parameters().size(); i++) {
            assertThat(second.parameters().get(i)).containsExactly(host.parameters().get(i));
        }
    }
}
