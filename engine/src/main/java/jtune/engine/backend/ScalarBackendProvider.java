package jtune.engine.backend;

/** Provides {@link ScalarBackend}; it runs everywhere, and loses to any other usable backend. */
public final class ScalarBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public int priority() {
        return 0;
    }

    @Override
    public String unavailableReason() {
        return null;
    }

    @Override
    public Backend create(BackendOptions options) {
        return new ScalarBackend();
    }
}
