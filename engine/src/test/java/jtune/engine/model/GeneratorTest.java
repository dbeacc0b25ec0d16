package jtune.engine.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link Generator} (key/value cache) against {@link Sampler}, which recomputes the whole sequence for every token
 * without a cache: on the scalar oracle both give bit-identical logits, and both draw one uniform number per token
 * from the same generator, so the same seed must give the same tokens, greedy or sampled. The model has q/k/v bias,
 * q/k norm and grouped-query attention, so every path of the cached forward is used.
 */
class GeneratorTest {
    private static final LlamaConfig CONFIG = new LlamaConfig(32, 48, 2, 4, 2, 8, 40, 16, 10000, null, 1e-5f, false,
            true, true);
    private MemoryPool pool;
    private Session session;
    private LlamaModel model;
    private Sampler sampler;
    private Generator generator;

    @BeforeEach
    void model() {
        pool = new MemoryPool(new MemoryLedger());
        session = new Session(new ScalarBackend(), pool);
        model = LlamaModel.create(session, CONFIG, WeightSource.random(3), false, WeightTransform.IDENTITY, false);
        sampler = new Sampler(session, model);
        generator = new Generator(session, model);
    }

    @AfterEach
    void close() {
        generator.close();
        sampler.close();
        model.close();
        pool.close();
    }

    private Generator.Result generate(int[] prompt, int steps, Sampling s, long seed, int[] stops, List<Integer> heard) {
        return generator.generate(prompt, steps, s, new SplittableRandom(seed), stops, heard::add);
    }

    @Test
    void givesTheUncachedSamplersTokensForTheSameSeed() {
        int[] prompt = {3, 7, 1, 30};
        float[][] settings = {{0f, 0}, {0.8f, 5}, {1.5f, 0}};
        for (float[] set : settings) {
            List<Integer> heard = new ArrayList<>();
            Generator.Result r = generate(prompt, 10, new Sampling(set[0], 1f, (int) set[1]), 9, new int[0], heard);
            int[] want = sampler.generate(prompt, 10, set[0], (int) set[1], new SplittableRandom(9));
            assertThat(r.tokens()).as("temperature %s, top-k %s", set[0], set[1]).containsExactly(want);
            assertThat(heard).containsExactlyElementsOf(Arrays.stream(want).boxed().toList());
            assertThat(r.stop()).isEqualTo(Generator.Stop.STEPS);
            assertThat(r.promptTokens()).isEqualTo(prompt.length);
        }
        Sampling nucleus = new Sampling(1f, 0.8f, 0);
        assertThat(generate(prompt, 12, nucleus, 4, new int[0], new ArrayList<>()).tokens())
                .containsExactly(generate(prompt, 12, nucleus, 4, new int[0], new ArrayList<>()).tokens());
    }

    @Test
    void stopsAtAStopTokenWithoutEmittingIt() {
        int[] prompt = {5};
        int[] all = generate(prompt, 10, new Sampling(1f, 1f, 0), 2, new int[0], new ArrayList<>()).tokens();
        int stop = all[4];
        int first = 0;
        while (all[first] != stop) {
            first++;
        }
        List<Integer> heard = new ArrayList<>();
        Generator.Result r = generate(prompt, 10, new Sampling(1f, 1f, 0), 2, new int[]{-1, stop}, heard);
        assertThat(r.tokens()).containsExactly(Arrays.copyOf(all, first));
        assertThat(heard).hasSize(first);
        assertThat(r.stop()).isEqualTo(Generator.Stop.STOP_TOKEN);
    }

    /** A prompt of 14 in 16 positions: positions 14 and 15 can still be fed, so three tokens are drawn, then no more. */
    @Test
    void stopsWhenTheModelsPositionsAreFull() {
        int[] prompt = new int[14];
        Arrays.setAll(prompt, i -> (i * 7) % CONFIG.vocab());
        Generator.Result r = generate(prompt, 10, Sampling.greedy(), 0, new int[0], new ArrayList<>());
        assertThat(r.stop()).isEqualTo(Generator.Stop.LENGTH);
        assertThat(r.tokens()).containsExactly(sampler.generate(prompt, 3, 0f, 0, new SplittableRandom(0)));
        int[] full = new int[16];
        assertThat(generate(full, 5, Sampling.greedy(), 0, new int[0], new ArrayList<>()).tokens()).hasSize(1);
    }

    @Test
    void rejectsAnEmptyOrTooLongPrompt() {
        assertThatThrownBy(() -> generate(new int[0], 3, Sampling.greedy(), 0, new int[0], new ArrayList<>()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1 to 16");
        assertThatThrownBy(() -> generate(new int[17], 3, Sampling.greedy(), 0, new int[0], new ArrayList<>()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("the prompt has 17 tokens");
    }
}
