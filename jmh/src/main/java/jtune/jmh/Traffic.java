package jtune.jmh;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * Memory traffic of a bandwidth-bound kernel: each call adds the gigabytes (10⁹ bytes) it reads plus the ones
 * it writes, counting every operand element once. In throughput mode JMH divides the count by the iteration
 * time, so the secondary result {@code :GB} reads as GB/s (JMH labels it "ops/s").
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.OPERATIONS)
public class Traffic {
    public double GB;

    @Setup(Level.Iteration)
    public void reset() {
        GB = 0;
    }
}
