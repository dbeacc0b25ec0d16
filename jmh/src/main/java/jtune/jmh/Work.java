package jtune.jmh;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Arithmetic of a compute-bound kernel: each call adds its floating-point operations in units of 10⁹ (a fused
 * multiply-add counts two). In throughput mode JMH divides the count by the iteration time, so the secondary
 * result {@code :GFLOP} reads as GFLOP/s (JMH labels it "ops/s").
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class Work {
    public double GFLOP;

    @Setup(Level.Iteration)
    public void reset() {
        GFLOP = 0;
    }
}
