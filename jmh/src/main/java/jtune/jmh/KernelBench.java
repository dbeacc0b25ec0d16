package jtune.jmh;

import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.Backends;
import org.openjdk.jmh.annotations.Param;

/**
 * A benchmark of {@link Backend} kernels: each method runs twice, once on the scalar oracle and once on the
 * cpu-simd backend, chosen by name through {@link Backends#select} as the jtune command does.
 */
public abstract class KernelBench extends Bench {
    @Param({"scalar", "cpu-simd"})
    public String backend;

    protected Backend ops;

    @Override
    protected void open() {
        Backends.Selection s = Backends.select(new BackendOptions(backend, threads));
        System.out.println(s.logLine());
        ops = s.backend();
    }

    @Override
    protected void close() {
        ops.close();
    }
}
