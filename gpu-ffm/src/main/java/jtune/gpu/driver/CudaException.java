package jtune.gpu.driver;

/**
 * A driver call returned something other than {@code CUDA_SUCCESS}. The message names the call, the result's
 * {@code cuGetErrorName} and its {@code cuGetErrorString}: "cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (out of
 * memory)".
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int result;
    private final String errorName;

    public CudaException(String call, int result, String errorName, String errorString) {
        super(call + " failed: " + errorName + " (" + errorString + ")");
        this.call = call;
        this.result = result;
        this.errorName = errorName;
    }

    /** The driver function that failed, as its symbol is spelled ("cuMemAlloc_v2"). */
    public String call() {
        return call;
    }

    /** The {@code CUresult} code. */
    public int result() {
        return result;
    }

    /** The result's name ("CUDA_ERROR_OUT_OF_MEMORY"). */
    public String errorName() {
        return errorName;
    }
}
