package jtune.engine.util;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * A fixed set of worker threads for data-parallel kernels. {@link #parallelFor} hands out task indices
 * {@code 0 .. tasks-1} to the workers and the calling thread (which works too), and returns when all are
 * done. A call made from inside a task runs serially on that thread, so kernels may nest freely.
 */
public final class WorkerPool implements AutoCloseable {
    private static final class Job {
        final IntConsumer body;
        final int tasks;
        final Thread caller;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        final AtomicReference<Throwable> error = new AtomicReference<>();

        Job(IntConsumer body, int tasks, Thread caller) {
            this.body = body;
            this.tasks = tasks;
            this.caller = caller;
        }

        void work() {
            int i;
            while ((i = next.getAndIncrement()) < tasks) {
                try {
                    if (error.get() == null) {
                        body.accept(i);
                    }
                } catch (Throwable t) {
                    error.compareAndSet(null, t);
                } finally {
                    if (done.incrementAndGet() == tasks) {
                        LockSupport.unpark(caller);
                    }
                }
            }
        }
    }

    /**
     * How long a worker spins for the next job before it waits on the monitor: kernels come back to back (a decode
     * step makes hundreds of calls of a millisecond or less), and waking a waiting thread took longer than that.
     */
    private static final long SPIN_NANOS = 100_000;

    private static final ThreadLocal<Boolean> INSIDE = ThreadLocal.withInitial(() -> false);

    private final int threads;
    private final Thread[] workers;
    private final Object signal = new Object();
    private final Object submit = new Object();
    private Job job;
    private long generation;
    /** {@link #generation}, published for the workers' spin before they wait. */
    private volatile long published;
    private volatile boolean closed;

    /** A pool of {@code threads} threads in all, the caller included ({@code threads - 1} workers). */
    public WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("--threads must be at least 1, got " + threads);
        }
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int w = 0; w < workers.length; w++) {
            workers[w] = Thread.ofPlatform().daemon().name("jtune-worker-" + (w + 1)).start(this::loop);
        }
    }

    public int threads() {
        return threads;
    }

    /** Runs {@code body.accept(i)} for every {@code i} in {@code [0, tasks)}, spread over the pool. */
    public void parallelFor(int tasks, IntConsumer body) {
        if (closed) {
            throw new IllegalStateException("worker pool is closed");
        }
        if (tasks <= 0) {
            return;
        }
        if (threads == 1 || tasks == 1 || INSIDE.get()) {
            for (int i = 0; i < tasks; i++) {
                body.accept(i);
            }
            return;
        }
        synchronized (submit) {
            if (closed) {
                throw new IllegalStateException("worker pool is closed");
            }
            Job j = new Job(body, tasks, Thread.currentThread());
            synchronized (signal) {
                job = j;
                generation++;
                published = generation;
                signal.notifyAll();
            }
            INSIDE.set(true);
            try {
                j.work();
            } finally {
                INSIDE.set(false);
            }
            int spins = 0;
            while (j.done.get() < tasks) {
                if (++spins < 2000) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 50_000);
                }
            }
            synchronized (signal) {
                job = null;
            }
            Throwable t = j.error.get();
            if (t instanceof RuntimeException re) {
                throw re;
            } else if (t instanceof Error e) {
                throw e;
            } else if (t != null) {
                throw new IllegalStateException(t);
            }
        }
    }

    /**
     * Runs {@code body.accept(i)} for every {@code i} in {@code [0, tasks)} as one contiguous run of tasks per thread
     * (run p is {@code [p · tasks / runs, (p + 1) · tasks / runs)}), in order within a run. For kernels that stream
     * a large operand from memory: threads handed tasks in turn interleave their reads, which streamed 15–20 % slower
     * on this project's 2-core machine. A thread that starts late delays the whole call by as much, since no other
     * thread takes its tasks over.
     */
    public void parallelRuns(int tasks, IntConsumer body) {
        int runs = Math.min(threads, tasks);
        if (runs <= 1) {
            for (int i = 0; i < tasks; i++) {
                body.accept(i);
            }
            return;
        }
        parallelFor(runs, p -> {
            for (int i = (int) ((long) p * tasks / runs), end = (int) ((long) (p + 1) * tasks / runs); i < end; i++) {
                body.accept(i);
            }
        });
    }

    private void loop() {
        INSIDE.set(true);
        long seen = 0;
        while (true) {
            Job j;
            long until = System.nanoTime() + SPIN_NANOS;
            while (published == seen && !closed && System.nanoTime() < until) {
                Thread.onSpinWait();
            }
            synchronized (signal) {
                while (!closed && (generation == seen || job == null)) {
                    try {
                        signal.wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (closed) {
                    return;
                }
                seen = generation;
                j = job;
            }
            j.work();
        }
    }

    @Override
    public void close() {
        closed = true;
        synchronized (signal) {
            signal.notifyAll();
        }
    }
}
