/**
 * The GPU backend: a hand-written allowlist binding of the CUDA driver API ({@code libcuda.so.1}) through
 * {@code java.lang.foreign}, PTX kernels shipped as resources, and the {@link jtune.engine.backend.Backend} over
 * tensors in device memory. Depends on the engine only; a machine without the driver or a GPU gets a one-line
 * reason and the CPU backends.
 */
module jtune.gpu {
    requires transitive jtune.engine;

    exports jtune.gpu;
    exports jtune.gpu.driver;

    provides jtune.engine.backend.BackendProvider with jtune.gpu.GpuBackendProvider;
}
