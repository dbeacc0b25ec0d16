package jtune.methods;

import java.nio.file.Files;
import java.nio.file.Path;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.nn.Session;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the folder fuzz tests share besides {@link FolderFuzz}'s helpers: stories260K (the test is skipped where
 * ../../shared/data lacks it), a scalar session whose ledger every case must leave empty, a temporary folder, and
 * the count of the cases that loaded and of those refused.
 */
public abstract class FolderFuzzCase {
    protected static final Path STORIES = Path.of("../../shared/data/models/stories260K/stories260K.bin");

    @TempDir
    protected Path tmp;
    protected final MemoryLedger ledger = new MemoryLedger();
    protected final MemoryPool pool = new MemoryPool(ledger);
    protected final Session s = new Session(new ScalarBackend(), pool);
    protected int loaded;
    protected int refused;

    @BeforeEach
    void needsStories() {
        Assumptions.assumeTrue(Files.isRegularFile(STORIES), "stories260K.bin is not in ../../shared/data; skipped");
    }

    @AfterEach
    void closePool() {
        pool.close();
    }

    /** Counts one case as loaded ({@code ok}) or refused. */
    protected void count(boolean ok) {
        if (ok) {
            loaded++;
        } else {
            refused++;
        }
    }
}
