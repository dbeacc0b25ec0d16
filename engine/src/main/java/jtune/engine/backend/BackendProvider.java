package jtune.engine.backend;

import jtune.engine.tensor.Device;

/**
 * A backend as {@link java.util.ServiceLoader} finds it. {@link Backends} asks every provider whether it can
 * run here and takes the usable one of highest priority.
 */
public interface BackendProvider {
    /** The name users pick it by ({@code --backend}). */
    String name();

    /** Higher wins: cuda 300, cpu-simd 200, scalar 0. */
    int priority();

    /** Null when this backend can run on this machine; otherwise one line saying why not. */
    String unavailableReason();

    /** A new backend; only called when {@link #unavailableReason()} is null. */
    Backend create(BackendOptions options);

    /** Where the backend's tensors live: the host for a CPU backend, a GPU for a CUDA one. */
    default Device.Kind device() {
        return Device.Kind.CPU;
    }
}
