package jtune.engine.backend;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;

/** Finds the backends with {@link ServiceLoader} and picks one, once, with a line saying what and why. */
public final class Backends {
    private Backends() {
    }

    /** The backend chosen and the start-up line that names it and the better ones passed over. */
    public record Selection(Backend backend, String logLine) {
    }

    /** Every provider on the module or class path, best first. */
    public static List<BackendProvider> providers() {
        List<BackendProvider> list = new ArrayList<>();
        ServiceLoader.load(BackendProvider.class, Backends.class.getClassLoader()).forEach(list::add);
        list.sort(Comparator.comparingInt(BackendProvider::priority).reversed());
        return list;
    }

    /**
     * The backend {@code options} ask for: by name, or with "auto" the usable one of highest priority. A named
     * backend that cannot run here, or an unknown name, fails with the reason and the valid names.
     */
    public static Selection select(BackendOptions options) {
        List<BackendProvider> all = providers();
        List<String> passedOver = new ArrayList<>();
        for (BackendProvider p : all) {
            boolean wanted = options.backend().equals("auto") || options.backend().equals(p.name());
            if (!wanted) {
                continue;
            }
            String why = p.unavailableReason();
            if (why != null) {
                if (!options.backend().equals("auto")) {
                    throw new IllegalArgumentException("--backend " + p.name() + " cannot run here: " + why);
                }
                passedOver.add(p.name() + ": " + why);
                continue;
            }
            Backend b = p.create(options);
            StringBuilder line = new StringBuilder();
            for (String s : passedOver) {
                line.append(s).append("; ");
            }
            line.append(passedOver.isEmpty() ? "backend " : "using ").append(b.describe());
            return new Selection(b, line.toString());
        }
        List<String> names = all.stream().map(BackendProvider::name).toList();
        throw new IllegalArgumentException("--backend " + options.backend() + " is not one of auto, "
                + String.join(", ", names));
    }
}
