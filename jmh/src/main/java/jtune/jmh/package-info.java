/**
 * JMH twins of the {@link jtune.engine.backend.Backend} kernels. Every kernel benchmark runs on the scalar
 * oracle and on cpu-simd ({@code -p backend=...}), on {@code -p threads=N} threads (0: all cores), at
 * parameterized sizes that include awkward ones and a 64 MB one for the bandwidth-bound kernels.
 *
 * <p>Units: the benchmarks run in throughput mode and each call adds its work to an auxiliary counter, so
 * besides calls per second JMH reports {@code <benchmark>:GB} (bytes read plus written, in units of 10⁹,
 * per second: GB/s; see {@link jtune.jmh.Traffic}) or {@code <benchmark>:GFLOP} (GFLOP/s; see
 * {@link jtune.jmh.Work}). JMH prints both with the label "ops/s". The byte count of each kernel is stated in
 * its class comment. {@link jtune.jmh.CopyBandwidth} measures the machine's copy bandwidth the same way, so
 * a kernel's share of the roofline is the ratio of the two in one run; {@code bench/ops} prints that table.
 *
 * <p>Run: {@code java -jar jmh/target/jtune-benchmarks.jar <regex> [JMH options]}; the forks add the JVM
 * flags themselves.
 */
package jtune.jmh;
