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
     * The backend {@code options} ask for: by name, or with "auto" the usable one of highest priority, among the
     * backends of the device asked for. A named backend or a named device that cannot run here, or an unknown
     * name, fails with the reason and the valid names.
     */
    public static Selection select(BackendOptions options) {
        List<BackendProvider> all = providers();
        List<String> passedOver = new ArrayList<>(), reasons = new ArrayList<>();
        boolean named = !options.backend().equals("auto");
        for (BackendProvider p : all) {
            boolean wanted = !named || options.backend().equals(p.name());
            if (!wanted) {
                continue;
            }
            if (!options.allows(p.device())) {
                if (named) {
                    throw new IllegalArgumentException("--backend " + p.name() + " runs on the "
                            + p.device().name().toLowerCase(java.util.Locale.ROOT) + ", not on the device --device "
                            + options.device() + " asks for");
                }
                continue;
            }
            String why = p.unavailableReason();
            if (why != null) {
                if (named) {
                    throw new IllegalArgumentException("--backend " + p.name() + " cannot run here: " + why);
                }
                passedOver.add(p.name() + ": " + why);
                reasons.add(why);
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
        if (!named && !reasons.isEmpty()) {
            throw new IllegalArgumentException("--device " + options.device() + " cannot run here: "
                    + String.join("; ", reasons));
        }
        if (!named) {
            throw new IllegalArgumentException("--device " + options.device() + ": this build has no backend for it"
                    + (options.device().equals("cuda") ? " (the jtune.gpu module is not on the module path)" : ""));
        }
        List<String> names = all.stream().map(BackendProvider::name).toList();
        throw new IllegalArgumentException("--backend " + options.backend() + " is not one of auto, "
                + String.join(", ", names));
    }
}
