package jtune.test;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.discovery.ClassNameFilter;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;

/**
 * Runs test classes without Maven, for a device machine that has a JVM from {@code bin/device-kit} but no build
 * tools: {@code TestRunner [--require CLASS]... DIR PATTERN...} runs the classes under the test-class folder DIR whose
 * simple names match a PATTERN ({@code *} for any characters, as surefire's {@code -Dtest}), prints each failed or
 * skipped test with its reason and a summary, and exits 1 when a test failed, when no test ran, or when a class named
 * by {@code --require} (a simple name) had a test skipped or none run: a GPU suite that skipped itself has proved
 * nothing.
 */
public final class TestRunner {
    private TestRunner() {
    }

    public static void main(String[] args) {
        List<String> required = new ArrayList<>(), patterns = new ArrayList<>();
        Path dir = null;
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--require")) {
                if (i + 1 == args.length) {
                    System.err.println("TestRunner: --require needs a test class's simple name");
                    System.exit(2);
                }
                required.add(args[++i]);
            } else if (dir == null) {
                dir = Path.of(args[i]);
            } else {
                patterns.add(args[i]);
            }
        }
        if (dir == null || patterns.isEmpty() || !Files.isDirectory(dir)) {
            System.err.println("TestRunner: give a folder of test classes and at least one class-name pattern, such as "
                    + "'TestRunner target/test-classes Gpu*Test'" + (dir != null && !Files.isDirectory(dir)
                    ? "; " + dir + " is not a folder" : ""));
            System.exit(2);
        }
        List<String> regexes = patterns.stream()
                .map(p -> "(.*\\.)?" + p.replace(".", "\\.").replace("*", "[^.]*")).toList();
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(DiscoverySelectors.selectClasspathRoots(Set.of(dir)))
                .filters(ClassNameFilter.includeClassNamePatterns(regexes.toArray(String[]::new)))
                .build();
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        // Per class (simple name): tests run to success, failed, skipped or aborted.
        TreeMap<String, int[]> byClass = new TreeMap<>();
        Set<String> problems = ConcurrentHashMap.newKeySet();
        TestExecutionListener perTest = new TestExecutionListener() {
            @Override
            public void executionSkipped(TestIdentifier id, String reason) {
                record(id, 2);
                System.out.println("SKIPPED " + id.getDisplayName() + " (" + className(id) + "): " + reason);
            }

            @Override
            public void executionFinished(TestIdentifier id, TestExecutionResult result) {
                if (!id.isTest() && result.getStatus() == TestExecutionResult.Status.SUCCESSFUL) {
                    return;
                }
                int kind = switch (result.getStatus()) {
                    case SUCCESSFUL -> 0;
                    case FAILED -> 1;
                    case ABORTED -> 3;
                };
                record(id, kind);
                if (kind != 0) {
                    String why = result.getThrowable().map(Throwable::toString).orElse("");
                    System.out.println((kind == 1 ? "FAILED " : "ABORTED ") + id.getDisplayName() + " ("
                            + className(id) + "): " + why);
                    if (kind == 1) {
                        problems.add(className(id));
                    }
                }
            }

            private void record(TestIdentifier id, int kind) {
                synchronized (byClass) {
                    byClass.computeIfAbsent(className(id), k -> new int[4])[kind]++;
                }
            }
        };
        LauncherFactory.create().execute(request, summary, perTest);
        summary.getSummary().printTo(new PrintWriter(System.out, true));
        byClass.forEach((c, n) -> System.out.printf("%-40s passed %d, failed %d, skipped %d, aborted %d%n", c, n[0],
                n[1], n[2], n[3]));
        Set<String> unproven = new LinkedHashSet<>();
        for (String c : required) {
            int[] n = byClass.get(c);
            if (n == null || n[0] == 0 || n[2] > 0 || n[3] > 0) {
                unproven.add(c);
            }
        }
        boolean failed = summary.getSummary().getTotalFailureCount() > 0 || !problems.isEmpty();
        if (summary.getSummary().getTestsFoundCount() == 0) {
            System.out.println("TestRunner: no test under " + dir + " matches " + patterns);
            failed = true;
        }
        if (!unproven.isEmpty()) {
            System.out.println("TestRunner: " + unproven + " did not run every test (skipped, aborted or absent)");
            failed = true;
        }
        System.exit(failed ? 1 : 0);
    }

    private static String className(TestIdentifier id) {
        return id.getSource().filter(MethodSource.class::isInstance).map(s -> ((MethodSource) s).getClassName())
                .map(n -> n.substring(n.lastIndexOf('.') + 1)).orElse(id.getDisplayName());
    }
}
