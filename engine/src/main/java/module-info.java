/**
 * The jtune engine: tensors and their memory ledger, the {@link jtune.engine.backend.Backend} SPI with
 * its scalar reference backend, and the {@code jtune} command. Depends on the JDK only.
 */
module jtune.engine {
    requires java.desktop;

    exports jtune.engine.tensor;
    exports jtune.engine.backend;
    exports jtune.engine.util;
    exports jtune.engine.nn;
    exports jtune.engine.model;
    exports jtune.engine.cli;
    exports jtune.engine.data;
    exports jtune.engine.io;
    exports jtune.engine.optim;
    exports jtune.engine.train;
    exports jtune.engine.tokenizer;

    uses jtune.engine.backend.BackendProvider;
    uses jtune.engine.cli.CommandProvider;
    uses jtune.engine.cli.LoadOptionProvider;
    uses jtune.engine.io.QuantizedLayersProvider;

    provides jtune.engine.backend.BackendProvider with jtune.engine.backend.ScalarBackendProvider;
}
