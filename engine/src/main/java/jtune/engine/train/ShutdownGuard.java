package jtune.engine.train;

import java.util.concurrent.CountDownLatch;

/**
 * Holds the JVM's shutdown (Ctrl-C, SIGTERM) until closed: a shutdown hook that first runs {@code onShutdown} (to ask
 * a loop to stop), then waits for {@link #close}, so that what the guarded code writes is finished before the JVM
 * halts. Closing removes the hook; while the JVM is already shutting down, closing lets the waiting hook return.
 */
public final class ShutdownGuard implements AutoCloseable {
    private final CountDownLatch closed = new CountDownLatch(1);
    private final Thread hook;

    /** Installs the hook when {@code install}; otherwise the guard does nothing. */
    public ShutdownGuard(boolean install, Runnable onShutdown) {
        if (!install) {
            hook = null;
            return;
        }
        hook = new Thread(() -> {
            onShutdown.run();
            try {
                closed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "jtune-stop");
        Runtime.getRuntime().addShutdownHook(hook);
    }

    @Override
    public void close() {
        closed.countDown();
        if (hook != null) {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running now and returns as soon as the latch is counted down
            }
        }
    }
}
