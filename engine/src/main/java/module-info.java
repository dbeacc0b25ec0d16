/**
 * The jtune engine: tensors and their memory ledger, the {@link jtune.engine.backend.Backend} SPI with
 * its scalar reference backend, and the {@code jtune} command. Depends on the JDK only.
 */
module jtune.engine {
    exports jtune.engine.tensor;
    exports jtune.engine.backend;
    exports jtune.engine.util;
    exports jtune.engine.cli;

    uses jtune.engine.backend.BackendProvider;

    provides jtune.engine.backend.BackendProvider with jtune.engine.backend.ScalarBackendProvider;
}
