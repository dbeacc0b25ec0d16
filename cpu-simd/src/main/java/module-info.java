/** The CPU backend: Vector API kernels, multithreaded. The only module that names jdk.incubator.vector. */
module jtune.cpu {
    requires jtune.engine;
    requires jdk.incubator.vector;

    exports jtune.cpu;

    provides jtune.engine.backend.BackendProvider with jtune.cpu.SimdBackendProvider;
}
