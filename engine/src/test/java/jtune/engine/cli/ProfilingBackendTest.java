package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.SplittableRandom;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** {@link ProfilingBackend} on its own, and {@code jtune bench train --profile} end to end on the scalar backend. */
class ProfilingBackendTest {

    private static float[] random(int n, SplittableRandom r) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (2 * r.nextDouble() - 1);
        }
        return v;
    }

    @Test
    void countsTheRecordedCallsAndGivesTheRealResults() {
        try (ScalarBackend real = new ScalarBackend(); MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            ProfilingBackend profiler = new ProfilingBackend(real);
            Backend b = profiler.backend();
            Session s = new Session(b, pool);
            SplittableRandom r = new SplittableRandom(3);
            Tensor a = s.f32("a", Category.WORKSPACE, 3, 4).copyFrom(random(12, r));
            Tensor x = s.f32("x", Category.WORKSPACE, 4, 5).copyFrom(random(20, r));
            Tensor viaProxy = s.f32("c1", Category.WORKSPACE, 3, 5), direct = s.f32("c2", Category.WORKSPACE, 3, 5);

            b.matmul(a, false, x, false, viaProxy, 1f, 0f);  // not recording yet: passes through, uncounted
            assertThat(profiler.calls("matmul")).isZero();
            profiler.recording(true);
            b.matmul(a, false, x, false, viaProxy, 1f, 0f);
            b.matmul(a, false, x, false, viaProxy, 0.5f, 0.5f);
            assertThat(b.name()).isEqualTo(real.name());     // accessors pass through, untimed
            assertThat(b.sum(a)).isEqualTo(real.sum(a));
            profiler.recording(false);
            b.matmul(a, false, x, false, viaProxy, 1f, 0f);
            b.matmul(a, false, x, false, viaProxy, 0.5f, 0.5f);

            real.matmul(a, false, x, false, direct, 1f, 0f);
            real.matmul(a, false, x, false, direct, 0.5f, 0.5f);
            assertThat(profiler.calls("matmul")).isEqualTo(2);
            assertThat(profiler.calls("sum")).isEqualTo(1);
            assertThat(profiler.calls("name")).isZero();
            assertThat(viaProxy.toFloatArray()).containsExactly(direct.toFloatArray());
            assertThat(profiler.stats()).allSatisfy(st -> assertThat(st.totalNanos()).isGreaterThanOrEqualTo(st.hostNanos()));
            assertThat(b).isEqualTo(b).isNotEqualTo(real);

            Tensor wrong = s.f32("wrong", Category.WORKSPACE, 2, 2);   // the backend's own exception, unwrapped
            assertThatThrownBy(() -> b.matmul(a, false, x, false, wrong, 1f, 0f))
                    .isInstanceOf(IllegalArgumentException.class);

            String table = profiler.table(1, 10.0);
            assertThat(table.lines().filter(l -> l.startsWith("matmul "))).singleElement().asString()
                    .matches("matmul +2\\.0 .*");
            // and by layout and M x N x K: op(A) 3x4 times 4x5
            assertThat(table.lines().filter(l -> l.contains("matmul nn"))).singleElement().asString()
                    .matches(" +matmul nn 3x5x4 +2\\.0 .*");
            assertThat(table).contains("total", "median step 10.000 ms");
        }
    }

    @Test
    void benchTrainProfilePrintsTheTableOfTheMeasuredSteps() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        long t0 = System.nanoTime();
        int status = Main.run(List.of("bench", "train", "--backend", "scalar", "--seq", "4", "--batch", "1",
                        "--warmup", "1", "--steps", "1", "--profile", "--json"),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        double seconds = (System.nanoTime() - t0) / 1e9;
        String e = err.toString(StandardCharsets.UTF_8), o = out.toString(StandardCharsets.UTF_8);
        assertThat(status).as(e).isZero();
        assertThat(seconds).as("llama60m, seq 4, one warm-up and one measured step").isLessThan(20);

        List<String> lines = e.lines().toList();
        String matmul = lines.stream().filter(l -> l.startsWith("matmul ")).findFirst().orElseThrow();
        double callsPerStep = Double.parseDouble(matmul.trim().split(" +")[1]);
        assertThat(callsPerStep).isPositive();
        assertThat(lines).anySatisfy(l -> assertThat(l).startsWith("total "));
        assertThat(lines).anySatisfy(l -> assertThat(l).matches("median step [0-9.]+ ms: .* outside backend calls"));
        // the JSON line keeps its shape: one object on stdout, nothing of the profile in it
        assertThat(o.strip()).startsWith("{").endsWith("}").doesNotContain("\n").contains("\"steps\":1")
                .doesNotContain("matmul");
    }
}
