package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/**
 * Training with every tensor on a device (the {@link LoopbackBackend} stand-in): initialisation, forward,
 * backward and AdamW steps reach the tensors only through backend operations and whole-tensor copies, and give
 * bit for bit what the same backend math gives on host tensors. This is what lets the GPU backend train.
 */
class DeviceTrainingTest {
    private static final LlamaConfig CONFIG = new LlamaConfig(16, 24, 2, 4, 2, 4, 11, 8, 10000, null, 1e-5f, false,
            false, false);

    private record Run(float[] losses, List<float[]> parameters) {
    }

    private static Run train(Backend backend, boolean checkpointing) {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger(), backend.memory())) {
            Session s = new Session(backend, pool);
            try (LlamaModel model = LlamaModel.create(s, CONFIG, 5, WeightTransform.IDENTITY, checkpointing);
                 AdamW adamw = new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f);
                 Tensor tokens = s.i32("tokens", Category.WORKSPACE, 2, 8);
                 Tensor targets = s.i32("targets", Category.WORKSPACE, 2, 8)) {
                assertThat(tokens.device()).isEqualTo(backend.memory() == null ? Device.CPU : backend.memory().device());
                float[] t = new float[16], y = new float[16];
                for (int i = 0; i < 16; i++) {
                    t[i] = (i * 7 + 3) % 11;
                    y[i] = i % 5 == 4 ? -1 : (i * 5 + 1) % 11;
                }
                tokens.copyFrom(t);
                targets.copyFrom(y);
                float[] losses = new float[3];
                for (int step = 0; step < losses.length; step++) {
                    adamw.zeroGrad();
                    losses[step] = model.forwardBackward(tokens, targets, 1f);
                    adamw.step(1e-2f);
                }
                List<float[]> values = new ArrayList<>();
                for (Parameter p : model.parameters()) {
                    values.add(p.value().toFloatArray());
                }
                return new Run(losses, values);
            }
        }
    }

    @Test
    void trainingOnADeviceMatchesTheHostBitForBit() {
        for (boolean checkpointing : new boolean[]{false, true}) {
            Run host = train(new ScalarBackend(), checkpointing);
            LoopbackBackend loopback = new LoopbackBackend();
            Run device = train(loopback, checkpointing);
            assertThat(device.losses()).containsExactly(host.losses());
            assertThat(host.losses()[2]).isLessThan(host.losses()[0]);
            assertThat(device.parameters()).hasSameSizeAs(host.parameters());
            for (int i = 0; i < host.parameters().size(); i++) {
                assertThat(device.parameters().get(i)).containsExactly(host.parameters().get(i));
            }
            assertThat(loopback.loopback().copies).as("host-device copies: init, batch, targets, read-backs")
                    .isPositive();
        }
    }
}
