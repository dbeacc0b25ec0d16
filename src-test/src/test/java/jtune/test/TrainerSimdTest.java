package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import jtune.cpu.SimdBackend;
import jtune.engine.backend.Backend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.data.SyntheticStories;
import jtune.engine.model.CausalLM;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.LrSchedule;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Checkpoint;
import jtune.engine.train.Progress;
import jtune.engine.train.TokenBlocks;
import jtune.engine.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trainer over the LLaMA model (grouped-query attention, untied head) on the SIMD backend with 2 threads,
 * accumulation 2, clipping and a cosine schedule: 4 updates, a checkpoint, a fresh model, optimizer and data
 * stream resumed from it for the other 6 give the same 10 losses, bit for bit, as 10 updates straight.
 */
class TrainerSimdTest {
    private static final PrintStream QUIET = new PrintStream(OutputStream.nullOutputStream());

    @TempDir
    Path dir;

    /** One training process: model, AdamW, trainer over {@code tokens}; stops after {@code stopAt} updates if > 0. */
    private static Trainer.Result train(Backend b, LlamaConfig c, int[] tokens, int seq, int batch, int accum, int steps,
                                        double lr, Path out, int stopAt, boolean resume) throws IOException {
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(b, pool);
            TokenBlocks[] split = TokenBlocks.split(tokens, seq, 0.1);
            try (LlamaModel model = LlamaModel.create(s, c, 11, WeightTransform.IDENTITY, false);
                 Stopping stopping = new Stopping(model, stopAt * accum);
                 AdamW opt = new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f);
                 Trainer t = new Trainer(s, stopping, opt,
                         LrSchedule.cosine(lr, steps / 10, steps, 0.1), new BatchStream(split[0], batch, 3), split[1],
                         new Trainer.Options(accum, steps, 1.0, 0, 0, 0),
                         new Trainer.Output(out, new Progress(QUIET, false), null, Map.of()))) {
                if (resume) {
                    t.resume(out.resolve(Checkpoint.FILE));
                }
                stopping.trainer = t;
                return t.run(false);
            }
        }
    }

    /** The model, asking the trainer to stop once {@code stopAfter} micro-batches have run (never if 0). */
    private static final class Stopping implements CausalLM {
        private final CausalLM model;
        private final int stopAfter;
        private int calls;
        Trainer trainer;

        Stopping(CausalLM model, int stopAfter) {
            this.model = model;
            this.stopAfter = stopAfter;
        }

        @Override
        public LlamaConfig config() {
            return model.config();
        }

        @Override
        public List<Parameter> parameters() {
            return model.parameters();
        }

        @Override
        public float forwardBackward(Tensor tokens, Tensor targets, float gradScale) {
            float loss = model.forwardBackward(tokens, targets, gradScale);
            if (++calls == stopAfter) {
                trainer.requestStop();
            }
            return loss;
        }

        @Override
        public float loss(Tensor tokens, Tensor targets) {
            return model.loss(tokens, targets);
        }

        @Override
        public void logits(Tensor tokens, Tensor out) {
            model.logits(tokens, out);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void resumedRunEqualsTheStraightRunBitForBitWithTwoThreads() throws IOException {
        LlamaConfig c = new LlamaConfig(48, 96, 2, 4, 2, 12, ByteTokenizer.VOCAB, 32, 10000, null, 1e-5f, false, false, false);
        int[] tokens = new ByteTokenizer().encode(SyntheticStories.generate(5, 20_000));
        try (Backend b = new SimdBackend(2)) {
            Trainer.Result straight = train(b, c, tokens, 32, 4, 2, 10, 3e-3, dir.resolve("a"), 0, false);
            Trainer.Result first = train(b, c, tokens, 32, 4, 2, 10, 3e-3, dir.resolve("b"), 4, false);
            Trainer.Result rest = train(b, c, tokens, 32, 4, 2, 10, 3e-3, dir.resolve("b"), 0, true);
            assertThat(first.stopped()).isTrue();
            assertThat(first.step()).isEqualTo(4);
            float[] joined = Arrays.copyOf(first.losses(), 10);
            System.arraycopy(rest.losses(), 0, joined, 4, 6);
            assertThat(joined).containsExactly(straight.losses());
        }
    }
}
