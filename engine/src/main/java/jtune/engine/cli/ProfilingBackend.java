package jtune.engine.cli;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jtune.engine.backend.Backend;
import jtune.engine.tensor.Tensor;

/**
 * {@code jtune bench train --profile}: a {@link Backend} that forwards every call to a real one and, while
 * {@linkplain #recording(boolean) recording}, times each call of an operation (a method with at least one
 * {@link Tensor} parameter): the call itself on the host, then the call plus the real backend's
 * {@link Backend#synchronize()} made right after it, so that a GPU's queued work is charged to the operation that
 * queued it. Accessors (name, threads, memory, synchronize itself, ...) pass through untimed.
 *
 * <p>Syncing after each operation removes the overlap of host and device work and adds a round trip per call: a
 * profiled run is slower, and its tokens/s are not the benchmark's figures. The table tells where a step's time
 * goes, and how much of it lies outside backend calls.
 *
 * <p>Meant for one calling thread, as training steps are; the counters are guarded all the same.
 */
final class ProfilingBackend implements InvocationHandler {
    private final Backend real;
    private final Backend proxy;
    private final Map<String, Stat> stats = new HashMap<>();
    /** Matrix products again, by layout and shape ("matmul tn 512x512x4096"), where one size can hide another. */
    private final Map<String, Stat> products = new HashMap<>();
    private volatile boolean recording;

    /** Calls, host nanoseconds and host + synchronize nanoseconds of one method, over the recorded calls. */
    record Stat(String method, long calls, long hostNanos, long totalNanos) {
        Stat add(long host, long total) {
            return new Stat(method, calls + 1, hostNanos + host, totalNanos + total);
        }
    }

    ProfilingBackend(Backend real) {
        this.real = real;
        this.proxy = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[]{Backend.class},
                this);
    }

    /** The profiling view of the real backend: give this to the code to profile. */
    Backend backend() {
        return proxy;
    }

    /** Starts or stops recording; calls made while it is off pass through untimed. */
    void recording(boolean on) {
        recording = on;
    }

    /** Recorded calls of the method named so; 0 if none. */
    synchronized long calls(String method) {
        Stat s = stats.get(method);
        return s == null ? 0 : s.calls();
    }

    /** The recorded methods, by total time, largest first. */
    synchronized List<Stat> stats() {
        return byTotal(stats.values());
    }

    private static List<Stat> byTotal(Collection<Stat> stats) {
        List<Stat> list = new ArrayList<>(stats);
        list.sort(Comparator.comparingLong(Stat::totalNanos).reversed().thenComparing(Stat::method));
        return list;
    }

    /** Counts one call of {@code key} in {@code map}. */
    private static void add(Map<String, Stat> map, String key, long hostNanos, long totalNanos) {
        map.compute(key, (name, s) -> (s == null ? new Stat(name, 0, 0, 0) : s).add(hostNanos, totalNanos));
    }

    @Override
    public Object invoke(Object self, Method method, Object[] args) throws Throwable {
        switch (method.getName()) {
            case "equals" -> {
                if (method.getParameterCount() == 1 && method.getParameterTypes()[0] == Object.class) {
                    return self == args[0];
                }
            }
            case "hashCode" -> {
                if (method.getParameterCount() == 0) {
                    return System.identityHashCode(self);
                }
            }
            case "toString" -> {
                if (method.getParameterCount() == 0) {
                    return "profiling " + real;
                }
            }
            default -> {
            }
        }
        if (!recording || !takesTensor(method)) {
            return call(method, args);
        }
        long t0 = System.nanoTime();
        Object result = call(method, args);
        long t1 = System.nanoTime();
        real.synchronize();
        long t2 = System.nanoTime();
        synchronized (this) {
            add(stats, method.getName(), t1 - t0, t2 - t0);
            if (method.getName().equals("matmul") && args.length == 7 && args[0] instanceof Tensor a
                    && args[1] instanceof Boolean ta && args[3] instanceof Boolean tb && args[4] instanceof Tensor c) {
                add(products, product(a, ta, tb, c), t1 - t0, t2 - t0);
            }
        }
        return result;
    }

    /** "matmul LAYOUT MxNxK", with " xBATCH" for a batch of products. */
    private static String product(Tensor a, boolean transA, boolean transB, Tensor c) {
        long m = c.dim(c.rank() - 2), n = c.dim(c.rank() - 1), k = a.dim(a.rank() - (transA ? 2 : 1));
        long batch = m * n == 0 ? 0 : c.size() / (m * n);
        return String.format(Locale.ROOT, "matmul %s%s %dx%dx%d%s", transA ? "t" : "n", transB ? "t" : "n", m, n, k,
                batch > 1 ? " x" + batch : "");
    }

    private Object call(Method method, Object[] args) throws Throwable {
        try {
            return method.invoke(real, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    private static boolean takesTensor(Method method) {
        for (Class<?> p : method.getParameterTypes()) {
            if (p == Tensor.class) {
                return true;
            }
        }
        return false;
    }

    /**
     * The table of the recorded calls, per step of {@code steps} measured steps, sorted by total time: method, calls,
     * host ms, total ms (host + synchronize) and share of the summed totals; then the sum of the totals against the
     * median measured step time, {@code medianStepMs}, and their difference, the time outside backend calls.
     */
    String table(int steps, double medianStepMs) {
        List<Stat> list = stats();
        double sumTotal = list.stream().mapToLong(Stat::totalNanos).sum() / 1e6 / steps;
        double sumHost = list.stream().mapToLong(Stat::hostNanos).sum() / 1e6 / steps;
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "jtune profile: backend calls per measured step (%d step%s), each followed "
                + "by synchronize; tokens/s under --profile are slowed by it%n", steps, steps == 1 ? "" : "s"));
        b.append(String.format(Locale.ROOT, "%-22s %10s %13s %14s %7s%n", "method", "calls/step", "host ms/step",
                "total ms/step", "share"));
        rows(b, list, "%-22s", steps, sumTotal);
        b.append(String.format(Locale.ROOT, "%-22s %10s %13.3f %14.3f %6.1f%%%n", "total", "", sumHost, sumTotal,
                sumTotal > 0 ? 100.0 : 0));
        b.append(String.format(Locale.ROOT, "median step %.3f ms: %.3f ms (%.1f%%) outside backend calls%n",
                medianStepMs, medianStepMs - sumTotal,
                medianStepMs > 0 ? 100 * (medianStepMs - sumTotal) / medianStepMs : 0));
        List<Stat> shapes;
        synchronized (this) {
            shapes = byTotal(products.values());
        }
        if (!shapes.isEmpty()) {
            b.append(String.format(Locale.ROOT, "%-36s %10s %13s %14s %7s%n", "products: layout, M x N x K",
                    "calls/step", "host ms/step", "total ms/step", "share"));
            rows(b, shapes, "  %-34s", steps, sumTotal);
        }
        return b.toString();
    }

    /** One row a stat, its name in {@code nameFormat}: calls, host and total ms per step, share of {@code sumTotal}. */
    private static void rows(StringBuilder b, List<Stat> list, String nameFormat, int steps, double sumTotal) {
        for (Stat s : list) {
            double total = s.totalNanos() / 1e6 / steps;
            b.append(String.format(Locale.ROOT, nameFormat + " %10.1f %13.3f %14.3f %6.1f%%%n", s.method(),
                    (double) s.calls() / steps, s.hostNanos() / 1e6 / steps, total,
                    sumTotal > 0 ? 100 * total / sumTotal : 0));
        }
    }
}
