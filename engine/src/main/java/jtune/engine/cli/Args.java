package jtune.engine.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import jtune.engine.io.Json;

/**
 * Command-line options of the form {@code --name value} and {@code --flag}, checked against the options a
 * command knows, so that a typo is named rather than ignored.
 */
public final class Args {
    /** Options every command takes, before or after its name. */
    public static final Set<String> GLOBAL_VALUED = Set.of("--backend", "--threads", "--device");
    /** Flags every command takes. */
    public static final Set<String> GLOBAL_FLAGS = Set.of("--debug", "--help", "-h");

    private final Map<String, String> values = new LinkedHashMap<>();
    private final List<String> positional = new ArrayList<>();

    Args(List<String> argv, Set<String> valued, Set<String> flags) {
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            if (a.startsWith("--")) {
                String name = a;
                String value = null;
                int eq = a.indexOf('=');
                if (eq > 0) {
                    name = a.substring(0, eq);
                    value = a.substring(eq + 1);
                }
                if (flags.contains(name) && value == null) {
                    values.put(name, "true");
                } else if (valued.contains(name)) {
                    if (value == null) {
                        if (i + 1 >= argv.size()) {
                            throw new UsageException("option " + name + " needs a value");
                        }
                        value = argv.get(++i);
                    }
                    values.put(name, value);
                } else {
                    List<String> known = new ArrayList<>(valued);
                    known.addAll(flags);
                    known.sort(null);
                    throw new UsageException("unknown option " + name + "; this command takes " + String.join(", ", known));
                }
            } else {
                positional.add(a);
            }
        }
    }

    private Args(Map<String, String> values, List<String> positional) {
        this.values.putAll(values);
        this.positional.addAll(positional);
    }

    /** Options by name, as {@link #values} gives them (a resumed run's stored ones), without positional arguments. */
    public static Args of(Map<String, String> values) {
        return new Args(values, List.of());
    }

    /** The options given, by name ("--seq" to "64"; a flag to "true"), in the order given. */
    public Map<String, String> values() {
        return Collections.unmodifiableMap(values);
    }

    /** These arguments, with {@code saved}'s options filling in those not given (a resumed run's stored options). */
    public Args withDefaults(Map<String, String> saved) {
        Map<String, String> merged = new LinkedHashMap<>(saved);
        merged.putAll(values);
        return new Args(merged, positional);
    }

    public List<String> positional() {
        return positional;
    }

    public boolean flag(String name) {
        return values.containsKey(name);
    }

    public String string(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    public int integer(String name, int fallback, int min) {
        return integer(name, values.get(name), fallback, min);
    }

    /** {@code value} of option {@code name} as a whole number of at least {@code min}; {@code fallback} if null. */
    static int integer(String name, String value, int fallback, int min) {
        if (value == null) {
            return fallback;
        }
        int n;
        try {
            n = Integer.parseInt(value.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("option " + name + " must be a whole number, got '" + value + "'");
        }
        if (n < min) {
            throw new UsageException("option " + name + " must be at least " + min + ", got " + n);
        }
        return n;
    }

    public double number(String name, double fallback, double min, double max) {
        return number(name, values.get(name), fallback, min, max);
    }

    /** {@code value} of option {@code name} as a number in [min, max]; {@code fallback} if null. */
    static double number(String name, String value, double fallback, double min, double max) {
        if (value == null) {
            return fallback;
        }
        double x;
        try {
            x = Double.parseDouble(value.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("option " + name + " must be a number, got '" + value + "'");
        }
        if (!(x >= min && x <= max)) {
            throw new UsageException("option " + name + " must be a number "
                    + (max == Double.MAX_VALUE ? "of at least " + min : "in [" + min + ", " + max + "]") + ", got " + value);
        }
        return x;
    }

    /**
     * The options a run stored in its checkpoint {@code file} (the metadata "options", a JSON object, given as
     * {@code json}), as texts by name, checked to be ones that {@code command} takes (its {@code valued} options and
     * {@code flags}, and the global ones), each flag stored as "true"; anything else, malformed JSON included, is
     * refused in one sentence, as a checkpoint of another jtune or an edited one.
     */
    public static Map<String, String> storedOptions(Path file, String json, String command, Set<String> valued,
                                                    Set<String> flags) {
        Map<String, String> stored = new LinkedHashMap<>();
        try {
            Json.parseObject(json).forEach((k, v) -> stored.put(k, String.valueOf(v)));
        } catch (Json.JsonException e) {
            throw new UsageException(file + ": metadata \"options\" must be a JSON object of the run's options ("
                    + e.getMessage() + ")");
        }
        for (Map.Entry<String, String> e : stored.entrySet()) {
            String k = e.getKey();
            boolean flag = flags.contains(k) || GLOBAL_FLAGS.contains(k);
            if (!flag && !valued.contains(k) && !GLOBAL_VALUED.contains(k) || flag && !"true".equals(e.getValue())) {
                throw new UsageException(file + ": metadata \"options\" holds " + Json.write(k) + ": "
                        + Json.write(e.getValue()) + ", which jtune " + command + " does not take (its "
                        + "options are named values and flags set to \"true\"); the checkpoint is from another jtune or "
                        + "was edited");
            }
        }
        return stored;
    }

    /**
     * For a resumed run: each row {option, the value it had, the value now} must agree, or the option is named as one
     * that cannot change.
     */
    public static void unchangedOnResume(Object[][] rows) {
        for (Object[] r : rows) {
            if (!Objects.equals(r[1], r[2])) {
                throw new UsageException(r[0] + " cannot change when a run is resumed (it was " + r[1] + ", now " + r[2]
                        + ")");
            }
        }
    }

    /** A mistake in how jtune was called: the message is shown as is, and the exit code is 2. */
    public static final class UsageException extends RuntimeException {
        public UsageException(String message) {
            super(message);
        }
    }
}
