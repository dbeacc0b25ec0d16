package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import jtune.engine.backend.Backend;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import org.junit.jupiter.api.Test;

/** What {@code bench train} shows of a backend's own memory, outside the run's pool. */
class TrainBenchTest {
    /** The scalar backend, but holding 3 MiB (peak 5 MiB) of scratch of its own, as a GPU backend does. */
    private static Backend withScratch(ScalarBackend real, MemoryLedger own) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                (proxy, method, args) -> {
                    if (method.getName().equals("workspaceLedger")) {
                        return own;
                    }
                    try {
                        return method.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    @Test
    void aBackendsOwnScratchFollowsTheLedgerTableAndGoesIntoTheJson() {
        MemoryLedger own = new MemoryLedger();
        own.allocated(Category.WORKSPACE, 5L << 20);
        own.released(Category.WORKSPACE, 2L << 20);
        try (ScalarBackend real = new ScalarBackend()) {
            Backend b = withScratch(real, own);
            assertThat(TrainBench.scratchLine(real)).as("a backend with none").isEmpty();
            assertThat(TrainBench.scratchLine(b)).startsWith("backend scratch").contains("3.00 MiB", "5.00 MiB",
                    "the scalar backend's own partial sums");

            TrainBench.Result r = TrainBench.run(b, "llama60m", 4, 1, 0, 1, 0, false, false,
                    new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            assertThat(Json.parseObject(r.json())).containsEntry("backend_scratch_peak_bytes", 5L << 20);
            TrainBench.Result plain = new TrainBench.Result(r.backendName(), r.backend(), r.threads(), r.preset(),
                    r.seq(), r.batch(), r.warmup(), r.steps(), r.parameters(), r.checkpointing(), r.tokensPerS(),
                    r.losses(), r.ledger(), real.workspaceLedger());
            assertThat(Json.parseObject(plain.json())).doesNotContainKey("backend_scratch_peak_bytes");
        }
    }
}
