package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import jtune.cpu.SimdBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.optim.AdamW;
import jtune.engine.optim.LrSchedule;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.train.BatchStream;
import jtune.engine.train.Progress;
import jtune.engine.train.TokenBlocks;
import jtune.engine.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A short real run: a small byte-level LLaMA on tinyshakespeare (from ../shared/data, skipped where absent).
 *
 * <p>The threshold is the entropy of the held-out text's byte frequencies, computed here from the text itself:
 * a model that only learned which bytes are common cannot go below it, so an eval loss clearly under it (by
 * 0.3 nats) shows the model has learned context (spelling, words), not just frequencies. It started at
 * ln 256 ≈ 5.55.
 */
class TinyShakespeareTest {
    private static final Path DATA = Path.of("..", "..", "shared", "data", "corpora", "tinyshakespeare", "input.txt");

    @TempDir
    Path dir;

    @Test
    void lossFallsBelowTheUnigramEntropy() throws IOException {
        Path file = DATA.toAbsolutePath().normalize();
        assumeTrue(Files.isRegularFile(file), "tinyshakespeare is absent at " + file + "; skipping the real-data run");
        int[] tokens = new ByteTokenizer().encode(Files.readAllBytes(file));
        int seq = 64;
        TokenBlocks[] split = TokenBlocks.split(tokens, seq, 0.1);

        double entropy = unigramEntropy(tokens, tokens.length - split[1].tokenCount(), tokens.length);
        LlamaConfig c = LlamaConfig.llama(64, 172, 2, 4, 2, ByteTokenizer.VOCAB, seq, false);
        int steps = 150;
        try (SimdBackend b = new SimdBackend(2); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(b, pool);
            try (LlamaModel model = LlamaModel.create(s, c, 1, WeightTransform.IDENTITY, false);
                 AdamW opt = new AdamW(s, model.parameters(), 0.9f, 0.95f, 1e-8f, 0.1f);
                 Trainer t = new Trainer(s, model, opt, LrSchedule.cosine(1e-2, 15, steps, 0.1),
                         new BatchStream(split[0], 8, 3), split[1],
                         new Trainer.Options(1, steps, 1.0, steps, 16, 0),
                         new Trainer.Output(dir, new Progress(new PrintStream(OutputStream.nullOutputStream()), false),
                                 null, Map.of()))) {
                Trainer.Result r = t.run(false);
                System.out.printf("tinyshakespeare: eval loss %.3f after %d steps; unigram entropy %.3f nats%n",
                        r.lastEvalLoss(), steps, entropy);
                assertThat(r.losses()[0]).isGreaterThan(5f);
                assertThat((double) r.lastEvalLoss()).isLessThan(entropy - 0.3);
            }
        }
    }

    /** Entropy in nats of the byte frequencies of tokens[from, to). */
    private static double unigramEntropy(int[] tokens, int from, int to) {
        long[] counts = new long[256];
        for (int i = from; i < to; i++) {
            counts[tokens[i]]++;
        }
        double h = 0, n = to - from;
        for (long k : counts) {
            if (k > 0) {
                h -= k / n * Math.log(k / n);
            }
        }
        return h;
    }
}
