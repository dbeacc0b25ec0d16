package jtune.test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Locale;
import java.util.SplittableRandom;
import jtune.cpu.SimdBackend;
import jtune.engine.backend.Backend;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.Generator;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.Sampling;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;

/**
 * Generation speed with the key/value cache on the SIMD backend (not a test; run by hand for the README's table):
 * stories260K from ../shared/data and a LLaMA-60M-shaped model with random weights (frozen, f32). Each model runs
 * {@link #WARMUP} generations to let the JIT compile, then {@link #TIMED} timed ones, each a prompt of {@code prompt}
 * tokens and then {@code steps} greedy tokens (no stop token); the run with the median decode time is reported. The
 * decode bound is the f32 weights read per token (every layer and the output head; one embedding row) over the
 * memory bandwidth.
 *
 * <p>Arguments: [threads (2)] [steps (256)] [prompt tokens (32)].
 */
public final class GenerationSpeed {
    private static final int WARMUP = 2;
    private static final int TIMED = 3;

    private GenerationSpeed() {
    }

    public static void main(String[] args) throws Exception {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        int promptLength = args.length > 2 ? Integer.parseInt(args[2]) : 32;
        try (Backend be = new SimdBackend(threads); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(be, pool);
            System.out.println("backend " + be.describe());
            Path stories = Path.of("..", "..", "shared", "data", "models", "stories260K", "stories260K.bin");
            if (stories.toFile().isFile()) {
                try (LoadedModel m = ModelLoader.load(s, stories, null, false, WeightTransform.IDENTITY, false)) {
                    run("stories260K", s, m.model(), steps, promptLength);
                }
            }
            try (LlamaModel m = LlamaModel.create(s, LlamaConfig.llama60m(), WeightSource.random(1), false,
                    WeightTransform.IDENTITY, false)) {
                run("llama60m (random)", s, m, steps, promptLength);
            }
        }
    }

    private static void run(String name, Session s, LlamaModel model, int steps, int promptLength) {
        LlamaConfig c = model.config();
        long weights = model.parameters().stream().mapToLong(p -> p.value().size()).sum()
                - (long) (c.tiedEmbeddings() ? 0 : c.vocab() - 1) * c.dim();
        int[] prompt = new int[promptLength];
        SplittableRandom rng = new SplittableRandom(7);
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = rng.nextInt(c.vocab());
        }
        try (Generator g = new Generator(s, model)) {
            Generator.Result[] runs = new Generator.Result[WARMUP + TIMED];
            for (int i = 0; i < runs.length; i++) {
                runs[i] = g.generate(prompt, steps, Sampling.greedy(), rng, new int[0], t -> { });
            }
            Generator.Result[] timed = Arrays.copyOfRange(runs, WARMUP, runs.length);
            Arrays.sort(timed, Comparator.comparingLong(Generator.Result::decodeNanos));
            Generator.Result r = timed[TIMED / 2];
            double bytesPerToken = 4.0 * weights;
            System.out.printf(Locale.ROOT, "%-20s prefill %d tokens: %8.1f tokens/s; decode %d tokens: %8.1f tokens/s "
                            + "= %.1f GB/s of weights (%.1f MB per token)%n", name, r.promptTokens(),
                    r.prefillTokensPerSecond(), r.tokens().length, r.decodeTokensPerSecond(),
                    bytesPerToken * r.decodeTokensPerSecond() / 1e9, bytesPerToken / 1e6);
        }
    }
}
