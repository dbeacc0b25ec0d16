package jtune.gpu.driver;

/** The CUDA driver cannot be used on this machine; the message says why in one line ("libcuda.so.1 not found"). */
public final class DriverUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public DriverUnavailableException(String reason) {
        super(reason);
    }
}
