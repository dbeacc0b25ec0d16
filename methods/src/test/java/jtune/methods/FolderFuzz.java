package jtune.methods;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.cli.LoadOptionProvider;
import jtune.engine.io.Json;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/**
 * What the seeded folder fuzz tests of this module share: the tensor types and number texts they draw, random and
 * systematic edits of a config, copies of a valid folder with its config text replaced and its safetensors file
 * mutated ({@link Mutation}), and {@link #check}: a case loads a model that computes finite logits, or fails with one
 * sentence, and leaves nothing counted in the ledger either way.
 */
public final class FolderFuzz {
    /** The types a tensor is retyped to. */
    private static final List<DType> TYPES = List.of(DType.U8, DType.I8, DType.F32, DType.BF16, DType.F16, DType.I32);
    /** Number texts that no value of Json.write gives: beyond a double's range, or in other spellings. */
    private static final String[] RAW = {"1e999", "-1e999", "1e-999", "2E0", "-0", "99999999999999999999"};

    private FolderFuzz() {
    }

    /** A tensor dropped (all null), retyped, reshaped to dims (keeping its type), or renamed. */
    public record Mutation(DType type, long[] dims, String name) {
        public static Mutation dropped() {
            return new Mutation(null, null, null);
        }

        /** Retyped to one of U8, I8, F32, BF16, F16 and I32, drawn from {@code rng}. */
        public static Mutation retyped(SplittableRandom rng) {
            return new Mutation(TYPES.get(rng.nextInt(TYPES.size())), null, null);
        }

        public static Mutation reshaped(long... dims) {
            return new Mutation(null, dims, null);
        }

        public static Mutation renamed(String name) {
            return new Mutation(null, null, name);
        }

        @Override
        public String toString() {
            return name != null ? "renamed to " + name : type == null && dims == null ? "dropped"
                    : type != null ? "as " + type : "reshaped to " + Arrays.toString(dims);
        }
    }

    /** The names of the tensors in the safetensors file {@code file}, in header order. */
    public static List<String> tensorNames(Path file) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            return r.entries().stream().map(SafeTensors.Entry::name).toList();
        }
    }

    /** A config text to try: the name of its folder, what it is, and the text. */
    public record ConfigCase(String dir, String what, String text) {
    }

    /**
     * Makes 1 to {@code maxEdits} random edits to {@code config}: each picks a field of {@code fields} (one time in
     * {@code unknownOneIn} instead {@code unknown} and 0, 1 or 2) and drops it one time in five, else sets it to one of
     * {@code values}. Returns "config" and the edits, as " -field" and " field=json".
     */
    public static String edit(Map<String, Object> config, SplittableRandom rng, int maxEdits, int unknownOneIn,
                              String unknown, String[] fields, List<?> values) {
        int edits = 1 + rng.nextInt(maxEdits);
        StringBuilder what = new StringBuilder("config");
        for (int e = 0; e < edits; e++) {
            String field = rng.nextInt(unknownOneIn) == 0 ? unknown + rng.nextInt(3)
                    : fields[rng.nextInt(fields.length)];
            if (rng.nextInt(5) == 0) {
                config.remove(field);
                what.append(" -").append(field);
            } else {
                Object v = values.get(rng.nextInt(values.size()));
                config.put(field, v);
                what.append(' ').append(field).append('=').append(Json.write(v));
            }
        }
        return what.toString();
    }

    /** {@code config} with each of {@code values} in turn as {@code field}, in folders field and the value's index. */
    public static List<ConfigCase> everyValue(Map<String, Object> config, String field, List<?> values) {
        List<ConfigCase> cases = new ArrayList<>();
        for (int v = 0; v < values.size(); v++) {
            Map<String, Object> c = new LinkedHashMap<>(config);
            c.put(field, values.get(v));
            cases.add(new ConfigCase(field + v, "config " + field + "=" + Json.write(values.get(v)), Json.write(c)));
        }
        return cases;
    }

    /** {@code config} with each raw number text in turn as each of {@code fields}, in folders "raw-", field, index. */
    public static List<ConfigCase> rawNumbers(Map<String, Object> config, String[] fields) {
        List<ConfigCase> cases = new ArrayList<>();
        for (String field : fields) {
            for (int t = 0; t < RAW.length; t++) {
                Map<String, Object> c = new LinkedHashMap<>(config);
                c.put(field, "@RAW@");
                cases.add(new ConfigCase("raw-" + field + t, "config " + field + "=" + RAW[t] + " (raw)",
                        Json.write(c).replace("\"@RAW@\"", RAW[t])));
            }
        }
        return cases;
    }

    /** {@code count} random cuts of {@code text}'s UTF-8 bytes, in folders "cut" and n. */
    public static List<ConfigCase> cuts(String text, SplittableRandom rng, int count) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        List<ConfigCase> cases = new ArrayList<>();
        for (int n = 0; n < count; n++) {
            int cut = rng.nextInt(bytes.length);
            cases.add(new ConfigCase("cut" + n, "config cut to " + cut + " bytes",
                    new String(Arrays.copyOf(bytes, cut), StandardCharsets.UTF_8)));
        }
        return cases;
    }

    /** {@code count} copies of {@code text}'s UTF-8 bytes with one random bit flipped, in folders "flip" and n. */
    public static List<ConfigCase> flips(String text, SplittableRandom rng, int count) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        List<ConfigCase> cases = new ArrayList<>();
        for (int n = 0; n < count; n++) {
            byte[] m = bytes.clone();
            int at = rng.nextInt(m.length);
            m[at] ^= (byte) (1 << rng.nextInt(8));
            cases.add(new ConfigCase("flip" + n, "config with a bit flipped at " + at,
                    new String(m, StandardCharsets.UTF_8)));
        }
        return cases;
    }

    /**
     * The new folder {@code dir}: {@code configFile} with the text {@code config}, and {@code weightsFile} of
     * {@code good} linked, or, with mutations or extras, rewritten (metadata kept) with the tensors of
     * {@code mutations} changed and the f32 tensors of {@code extras} (zero, by name and dims) added.
     */
    public static Path copy(Path good, Path dir, String configFile, String config, String weightsFile,
                            Map<String, Mutation> mutations, Map<String, long[]> extras, MemoryPool pool)
            throws IOException {
        Files.createDirectory(dir);
        Files.writeString(dir.resolve(configFile), config);
        if (mutations.isEmpty() && extras.isEmpty()) {
            Files.createSymbolicLink(dir.resolve(weightsFile), good.resolve(weightsFile));
            return dir;
        }
        List<Tensor> made = new ArrayList<>();
        try (SafeTensorsReader r = SafeTensorsReader.open(good.resolve(weightsFile))) {
            SafeTensorsWriter w = new SafeTensorsWriter();
            r.metadata().forEach(w::metadata);
            for (SafeTensors.Entry e : r.entries()) {
                Mutation m = mutations.get(e.name());
                if (m == null || m.name() != null) {
                    w.add(m == null ? e.name() : m.name(), r.tensor(e.name(), pool, Category.WORKSPACE));
                } else if (m.type() != null || m.dims() != null) {
                    Tensor t = pool.allocate(e.name(), m.type() != null ? m.type() : e.type().dtype(),
                            Category.WORKSPACE, m.dims() != null ? m.dims() : e.dims());
                    made.add(t);
                    w.add(e.name(), t);
                }
            }
            extras.forEach((n, dims) -> {
                Tensor t = pool.allocate(n, DType.F32, Category.WORKSPACE, dims);
                made.add(t);
                w.add(n, t);
            });
            w.write(dir.resolve(weightsFile));
        } finally {
            made.forEach(Tensor::close);
        }
        return dir;
    }

    /** One case: loads a model and checks it, closing it again. */
    @FunctionalInterface
    public interface Load {
        void run() throws IOException;
    }

    /**
     * Runs {@code load}: true when it ends normally, false when it fails with one sentence (an {@link IOException}
     * or {@link IllegalArgumentException} whose message is not null or blank, has no line break and, unless
     * {@code named} is null, contains {@code named}); any other exception fails with {@code what}. Either way no
     * category of {@code ledger} may have anything left counted.
     */
    public static boolean check(String what, Path named, MemoryLedger ledger, Load load) {
        boolean loaded = false;
        try {
            load.run();
            loaded = true;
        } catch (IOException | IllegalArgumentException e) {
            String message = String.valueOf(e.getMessage());
            if (message.contains("\n") || message.equals("null") || message.isBlank()) {
                fail(shorten(what) + ": not one sentence: " + message, e);
            }
            if (named != null && !message.contains(named.toString())) {
                fail(shorten(what) + ": the sentence does not name the file: " + message, e);
            }
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            fail(shorten(what) + ": " + e, e);
        }
        for (Category c : Category.values()) {
            assertThat(ledger.current(c)).as("%s: nothing left counted as %s", shorten(what), c).isZero();
        }
        return loaded;
    }

    /**
     * Loads {@code model} with {@code option}'s folder {@code dir} as {@code jtune eval} does: the load description
     * must start with {@code description} and dir, and the model must compute finite logits.
     */
    public static void loadWith(String what, Session s, Path model, LoadOptionProvider option, Path dir,
                                String description) throws IOException {
        LoadedModel m = null;
        try {
            LoadOptionProvider.Attachment a = option.open(dir);
            m = ModelLoader.load(s, model, null, false, a.transform(), false);
            String note = a.finish().run();
            assertThat(note).as("%s: the load description", what).startsWith(description + dir);
            assertFiniteLogits(what, s, m.model());
        } finally {
            if (m != null) {
                m.close();
            }
        }
    }

    /** Fails with {@code what} unless {@code m}'s logits of six fixed tokens are all finite. */
    public static void assertFiniteLogits(String what, Session s, LlamaModel m) {
        int seq = 6;
        try (Tensor tokens = s.i32("tokens", Category.WORKSPACE, 1, seq);
             Tensor out = s.f32("logits", Category.WORKSPACE, seq, m.config().vocab())) {
            for (int i = 0; i < seq; i++) {
                tokens.set(1 + 37 * i % 500, 0, i);
            }
            m.logits(tokens, out);
            for (float v : out.toFloatArray()) {
                if (!Float.isFinite(v)) {
                    fail("%s: loaded, but computes a non-finite logit", what);
                }
            }
        }
    }

    /** {@code s} cut to 300 characters and "...", if longer. */
    public static String shorten(String s) {
        return s.length() > 300 ? s.substring(0, 300) + "..." : s;
    }
}
