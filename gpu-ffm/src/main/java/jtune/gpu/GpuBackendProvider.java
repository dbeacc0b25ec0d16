package jtune.gpu;

import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.BackendProvider;
import jtune.engine.tensor.Device;
import jtune.gpu.driver.CudaDriver;
import jtune.gpu.driver.CudaException;
import jtune.gpu.driver.DriverUnavailableException;

/**
 * Provides {@link GpuBackend} on GPU 0 when this machine can run it: the driver library loads and has every
 * allowlisted symbol, {@code cuInit} succeeds, the driver supports CUDA 12.0 (PTX ISA 8.0, that of the shipped
 * kernels), and GPU 0 has compute capability 8.0 or newer (bf16 tensor cores). Otherwise the reason, probed once.
 */
public final class GpuBackendProvider implements BackendProvider {
    /** The oldest driver (as cuDriverGetVersion reports it) whose JIT reads the shipped PTX (ISA 8.0). */
    static final int MIN_DRIVER = 12000;
    /** The oldest GPU (10·major + minor) the kernels run on. */
    static final int MIN_COMPUTE = 80;

    /** As {@link java.util.ServiceLoader} creates it; nothing is probed until {@link #unavailableReason()}. */
    public GpuBackendProvider() {
    }

    private static final class Probe {
        static final String REASON = reason(CudaDriver::load);
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public int priority() {
        return 300;
    }

    @Override
    public Device.Kind device() {
        return Device.Kind.CUDA;
    }

    @Override
    public String unavailableReason() {
        return Probe.REASON;
    }

    @Override
    public Backend create(BackendOptions options) {
        return GpuBackend.open(CudaDriver.load(), 0);
    }

    /** Null if GPU 0 of the driver {@code load} gives can run jtune's kernels, else why not, in one line. */
    static String reason(java.util.function.Supplier<CudaDriver> load) {
        try {
            CudaDriver d = load.get();
            d.init();
            int version = d.driverVersion();
            if (version < MIN_DRIVER) {
                return "the driver supports CUDA " + version / 1000 + "." + version % 1000 / 10
                        + ", but jtune's PTX kernels (ISA 8.0) need CUDA " + MIN_DRIVER / 1000 + ".0 or newer";
            }
            if (d.deviceCount() == 0) {
                return "the driver reports no GPU";
            }
            int device = d.device(0);
            int cc = 10 * d.deviceAttribute(device, CudaDriver.ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
                    + d.deviceAttribute(device, CudaDriver.ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
            if (cc < MIN_COMPUTE) {
                return "GPU 0 (" + d.deviceName(device) + ") has compute capability " + cc / 10 + "." + cc % 10
                        + "; jtune's kernels need " + MIN_COMPUTE / 10 + ".0 or newer";
            }
            return null;
        } catch (DriverUnavailableException | CudaException e) {
            return e.getMessage();
        }
    }
}
