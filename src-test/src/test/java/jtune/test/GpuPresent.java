package jtune.test;

import jtune.gpu.GpuBackendProvider;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs a test class only where the GPU backend can run, and otherwise skips it with the provider's reason
 * ("no usable GPU, so the GPU backend is not tested here: libcuda.so.1 not found").
 */
final class GpuPresent implements ExecutionCondition {
    @Override
    public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        String why = new GpuBackendProvider().unavailableReason();
        return why == null ? ConditionEvaluationResult.enabled("a GPU is usable")
                : ConditionEvaluationResult.disabled("no usable GPU, so the GPU backend is not tested here: " + why);
    }
}
