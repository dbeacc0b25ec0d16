package jtune.engine.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.engine.train.Checkpoint;
import jtune.engine.train.Trainer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of a run folder of {@code jtune train} (a two-step run of a tiny model on the scalar backend) that
 * {@code --resume} then continues to step 3: each metadata value of checkpoint.safetensors replaced by texts of other
 * kinds and ranges, dropped or joined by unknown keys, the fields of its "config" and "options" JSON edited; its
 * tensors dropped, retyped, reshaped, renamed or joined by others; the file cut short or its bytes flipped; and the
 * lines of metrics.jsonl replaced by garbage, cut, reordered or made huge. Every case must resume (the run reaches
 * step 3 with finite losses and a checkpoint of step 3) or fail with one sentence naming the run folder (an
 * {@link IOException}, {@link IllegalArgumentException} or {@link Args.UsageException} without a line break), the
 * checkpoint left byte for byte as it was; any other exception fails the test with the case.
 */
class TrainResumeFuzzTest {
    /** Metadata texts: numbers of every range and spelling, other kinds of value, and the names the checkpoint uses. */
    private static final String[] TEXTS = {"", "0", "2", "3", "-1", "2147483647", "2147483648", "-2147483649",
        "1000000000000", "-1000000000000", "9223372036854775807", "-9223372036854775808", "99999999999999999999", "1.5",
        "1e999", " 2", "+2", "NaN", "Infinity", "true", "{}", "adamw", "jtune-checkpoint-2", "x\ny", "x".repeat(10_000)};
    /** JSON values for the fields of the "config" and "options" JSON. */
    private static final Object[] VALUES = {0L, 1L, 2L, 3L, 16L, 32L, 256L, -1L, 2147483648L, Long.MAX_VALUE,
        Long.MIN_VALUE, 0.5, 16.0, 1e300, -0.0, true, false, null, "", "16", "x", "-1", "1e999", "NaN", "adamw", "sgd",
        "cosine", List.of(), List.of(16L), Map.of(), Map.of("a", 1L)};
    private static final List<DType> TYPES = List.of(DType.U8, DType.I8, DType.F32, DType.BF16, DType.F16, DType.I32);

    @TempDir
    Path tmp;
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final ScalarBackend backend = new ScalarBackend();
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private Map<String, String> metadata;
    private Path good;
    private byte[] checkpoint;
    private List<String> metrics;
    private int folders;
    private int resumed;
    private int refused;
    private int diverged;
    private final List<String> failures = new ArrayList<>();

    /** A run of two steps, with an evaluation after each, whose checkpoint and metrics the cases mutate. */
    @BeforeEach
    void goodRun() throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; sb.length() < 6_000; i++) {
            sb.append("the cat sat on the mat number ").append(i % 17).append(". ");
        }
        Path data = Files.writeString(tmp.resolve("data.txt"), sb);
        Path config = Files.writeString(tmp.resolve("model.json"),
                "{\"dim\": 16, \"hiddenDim\": 32, \"layers\": 1, \"heads\": 2, \"vocab\": 256, \"maxSeq\": 32, "
                        + "\"tiedEmbeddings\": true}");
        good = tmp.resolve("good");
        assertThat(train("train", "--config", config.toString(), "--data", data.toString(), "--seq", "16", "--batch",
                "2", "--steps", "2", "--lr", "1e-2", "--schedule", "constant", "--warmup", "0", "--eval-every", "1",
                "--eval-batches", "1", "--out", good.toString())).isZero();
        checkpoint = Files.readAllBytes(good.resolve(Checkpoint.FILE));
        metrics = Files.readAllLines(good.resolve(Trainer.METRICS));
        assertThat(metrics).hasSize(4);
        try (SafeTensorsReader r = SafeTensorsReader.open(good.resolve(Checkpoint.FILE))) {
            metadata = new LinkedHashMap<>(r.metadata());
            for (SafeTensors.Entry e : r.entries()) {
                Tensor t = pool.allocate(e.name(), e.type().dtype(), Category.WORKSPACE, e.dims());
                r.read(e.name(), t);
                tensors.put(e.name(), t);
            }
        }
    }

    @AfterEach
    void close() {
        tensors.values().forEach(Tensor::close);
        pool.close();
    }

    private int train(String... argv) throws IOException {
        PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        return TrainCommand.run(new Args(List.of(argv), TrainCommand.VALUED, TrainCommand.FLAGS), backend, sink, sink);
    }

    @Test
    void everyMutationResumesOrFailsWithOneSentence() throws IOException {
        SplittableRandom rng = new SplittableRandom(20261201);
        check("the run as written", checkpoint, metrics);
        assertThat(resumed).isEqualTo(1);

        for (String key : new ArrayList<>(metadata.keySet())) {
            Map<String, String> m = new LinkedHashMap<>(metadata);
            m.remove(key);
            check("-" + key, write(m, Map.of(), Map.of()), metrics);
            String was = metadata.get(key);
            for (String v : new String[]{was.substring(0, was.length() / 2), was + "x", was + was}) {
                m.put(key, v);
                check(key + "=" + shorten(v), write(m, Map.of(), Map.of()), metrics);
            }
        }
        for (String key : new String[]{"step", "optimizer_steps", "data_epoch", "data_index", "elapsed_s"}) {
            for (String v : TEXTS) {
                check(key + "=" + shorten(v), write(with(key, v), Map.of(), Map.of()), metrics);
            }
        }
        for (String key : new String[]{"data_rng_state", "frozen_parameters", "format", "optimizer", "threads",
                "data_crc32", "backend"}) {
            for (int n = 0; n < 5; n++) {
                String v = TEXTS[rng.nextInt(TEXTS.length)];
                check(key + "=" + shorten(v), write(with(key, v), Map.of(), Map.of()), metrics);
            }
        }
        for (String json : new String[]{"config", "options"}) {
            Map<String, Object> parsed = Json.parseObject(metadata.get(json));
            for (String v : new String[]{"", "{}", "[]", "null", "1", "{", "{\"a\":", "[".repeat(100_000)}) {
                check(json + "=" + shorten(v), write(with(json, v), Map.of(), Map.of()), metrics);
            }
            List<String> fields = new ArrayList<>(parsed.keySet());
            fields.add("unknown");
            for (String field : fields) {
                Map<String, Object> c = new LinkedHashMap<>(parsed);
                c.remove(field);
                check(json + " -" + field, write(with(json, Json.write(c)), Map.of(), Map.of()), metrics);
                for (int n = 0; n < 2; n++) {
                    Object v = VALUES[rng.nextInt(VALUES.length)];
                    c.put(field, v);
                    String what = json + " " + field + "=" + Json.write(v);
                    check(what, write(with(json, Json.write(c)), Map.of(), Map.of()), metrics);
                }
            }
        }
        Map<String, Object> options = Json.parseObject(metadata.get("options"));
        for (Map.Entry<String, String> odd : Map.of("--lora-rank", "8", "--checkpointing", "false").entrySet()) {
            Map<String, Object> o = new LinkedHashMap<>(options);
            o.put(odd.getKey(), odd.getValue());
            int before = refused;
            check("options " + odd, write(with("options", Json.write(o)), Map.of(), Map.of()), metrics);
            assertThat(refused).as("a stored option %s is refused", odd).isEqualTo(before + 1);
        }
        for (String lr : new String[]{"1e18", "1e300", "3.4028235e38", "0"}) {
            Map<String, Object> o = new LinkedHashMap<>(options);
            o.put("--lr", lr);
            check("options --lr=" + lr, write(with("options", Json.write(o)), Map.of(), Map.of()), metrics);
        }
        for (int n = 0; n < 25; n++) {
            Map<String, String> m = new LinkedHashMap<>(metadata);
            StringBuilder what = new StringBuilder("metadata");
            for (int e = 1 + rng.nextInt(3); e > 0; e--) {
                List<String> keys = new ArrayList<>(metadata.keySet());
                String key = rng.nextInt(8) == 0 ? "unknown" : keys.get(rng.nextInt(keys.size()));
                String v = TEXTS[rng.nextInt(TEXTS.length)];
                m.put(key, v);
                what.append(' ').append(key).append('=').append(shorten(v));
            }
            check(what.toString(), write(m, Map.of(), Map.of()), metrics);
        }

        for (String name : tensors.keySet()) {
            long[] dims = tensors.get(name).shape().toArray();
            DType type = TYPES.get(rng.nextInt(TYPES.size()));
            long[] other = dims.length == 1 ? new long[]{dims[0] + 1} : new long[]{dims[1], dims[0]};
            for (int n = 0; n < 2; n++) {
                switch (rng.nextInt(5)) {
                    case 0 -> check("tensor " + name + " dropped", write(metadata, Map.of(name, "drop"), Map.of()),
                            metrics);
                    case 1 -> check("tensor " + name + " as " + type, write(metadata, Map.of(name, type), Map.of()),
                            metrics);
                    case 2 -> check("tensor " + name + " reshaped to " + Arrays.toString(other),
                            write(metadata, Map.of(name, other), Map.of()), metrics);
                    case 3 -> check("tensor " + name + " as a scalar", write(metadata, Map.of(name, new long[]{1}),
                            Map.of()), metrics);
                    default -> check("tensor " + name + " renamed", write(metadata, Map.of(name, "rename"), Map.of()),
                            metrics);
                }
            }
        }
        for (String extra : new String[]{"model.layers.9.mlp.up.weight", "optimizer.exp_avg.extra", "", "x"}) {
            check("an extra tensor " + extra, write(metadata, Map.of(), Map.of(extra, new long[]{4})), metrics);
        }

        int header = 8 + (int) java.nio.ByteBuffer.wrap(checkpoint, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .getLong();
        for (int n = 0; n < 20; n++) {
            int cut = n < 10 ? rng.nextInt(header + 1) : header + rng.nextInt(checkpoint.length - header);
            check("checkpoint cut to " + cut + " bytes", Arrays.copyOf(checkpoint, cut), metrics);
        }
        for (int n = 0; n < 40; n++) {
            byte[] b = checkpoint.clone();
            int at = n < 30 ? rng.nextInt(header) : header + rng.nextInt(checkpoint.length - header);
            b[at] ^= (byte) (1 << rng.nextInt(8));
            check("checkpoint with a bit flipped at " + at, b, metrics);
        }

        List<Function<List<String>, List<String>>> edits = List.of(
                l -> List.of(),
                l -> List.of(""),
                l -> List.of("garbage"),
                l -> replace(l, 1, "{\"step\":"),
                l -> replace(l, 3, l.get(3).substring(0, l.get(3).length() / 2)),
                l -> replace(l, 0, "[]"),
                l -> replace(l, 0, "null"),
                l -> replace(l, 2, "{}"),
                l -> replace(l, 2, "{\"step\":\"2\",\"loss\":1}"),
                l -> replace(l, 2, "{\"step\":null}"),
                l -> replace(l, 2, "{\"step\":1e300}"),
                l -> replace(l, 2, "{\"step\":1e999}"),
                l -> replace(l, 2, "{\"step\":-1e300}"),
                l -> replace(l, 2, "{\"step\":2.5}"),
                l -> replace(l, 2, "{\"step\":-1}"),
                l -> replace(l, 2, "{\"step\":99999999999999999999}"),
                l -> replace(l, 2, "{\"step\":[2]}"),
                l -> replace(l, 2, "{\"step\":" + "[".repeat(100_000)),
                l -> replace(l, 2, "{\"step\":2," + "\"x\":[".repeat(50_000) + "]".repeat(50_000) + "}"),
                l -> replace(l, 2, "{\"step\":2,\"pad\":\"" + "x".repeat(2_000_000) + "\"}"),
                l -> replace(l, 2, "\u0000\u0001\u00ff\ufffd"),
                l -> l.reversed(),
                l -> append(l, "{\"step\":5,\"loss\":1}", "{\"step\":4,\"loss\":1}", "{\"step\":3,\"loss\":1}"),
                l -> append(l, "{\"step\":3,\"loss\":1}", "{\"step\":1,\"loss\":1}"),
                l -> append(l, "{\"step\":3,\"lo"),
                l -> l.stream().map(s -> s + "\r").toList(),
                l -> l.stream().map(s -> s + " ").toList(),
                l -> l.stream().flatMap(s -> java.util.stream.Stream.of(s, s)).toList());
        for (int n = 0; n < edits.size(); n++) {
            check("metrics edit " + n, checkpoint, edits.get(n).apply(metrics));
        }
        byte[] text = (String.join("\n", metrics) + "\n").getBytes(StandardCharsets.UTF_8);
        for (int n = 0; n < 15; n++) {
            int cut = rng.nextInt(text.length);
            check("metrics cut to " + cut + " bytes", checkpoint, Arrays.copyOf(text, cut));
        }
        for (int n = 0; n < 15; n++) {
            byte[] b = text.clone();
            int at = rng.nextInt(b.length);
            b[at] ^= (byte) (1 << rng.nextInt(8));
            check("metrics with a bit flipped at " + at, checkpoint, b);
        }
        check("metrics with bytes that are not UTF-8", checkpoint,
                (String.join("\n", metrics) + "\n{\"step\":9,\"x\":\"\u00e9").getBytes(StandardCharsets.ISO_8859_1));
        check("metrics.jsonl a folder", checkpoint, (byte[]) null);

        System.err.println("TrainResumeFuzzTest: " + resumed + " resumed, " + refused + " refused, "
                + diverged + " diverged");
        assertThat(failures).as("cases that neither resume nor fail with one sentence").isEmpty();
        assertThat(resumed).as("cases that resume").isGreaterThan(50);
        assertThat(refused).as("cases refused").isGreaterThan(200);
    }

    private static List<String> replace(List<String> lines, int i, String line) {
        List<String> l = new ArrayList<>(lines);
        l.set(i, line);
        return l;
    }

    private static List<String> append(List<String> lines, String... more) {
        List<String> l = new ArrayList<>(lines);
        l.addAll(List.of(more));
        return l;
    }

    private Map<String, String> with(String key, String value) {
        Map<String, String> m = new LinkedHashMap<>(metadata);
        m.put(key, value);
        return m;
    }

    /**
     * The checkpoint's bytes with metadata {@code meta} and its tensors, each of {@code changes} dropped ("drop"),
     * renamed ("rename"), retyped (a DType) or reshaped (long[]), and the zero f32 tensors of {@code extras} added.
     */
    private byte[] write(Map<String, String> meta, Map<String, Object> changes, Map<String, long[]> extras)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter();
        meta.forEach(w::metadata);
        List<Tensor> made = new ArrayList<>();
        try {
            tensors.forEach((name, t) -> {
                Object c = changes.get(name);
                if (c == null) {
                    w.add(name, t);
                } else if (c.equals("rename")) {
                    w.add(name + ".renamed", t);
                } else if (c instanceof DType type) {
                    Tensor m = pool.allocate(name, type, Category.WORKSPACE, t.shape().toArray());
                    made.add(m);
                    w.add(name, m);
                } else if (c instanceof long[] dims) {
                    Tensor m = pool.allocate(name, t.dtype(), Category.WORKSPACE, dims);
                    made.add(m);
                    w.add(name, m);
                }
            });
            extras.forEach((name, dims) -> {
                Tensor m = pool.allocate(name, DType.F32, Category.WORKSPACE, dims);
                made.add(m);
                w.add(name, m);
            });
            Path file = tmp.resolve("written.safetensors");
            w.write(file);
            return Files.readAllBytes(file);
        } finally {
            made.forEach(Tensor::close);
        }
    }

    private void check(String what, byte[] ckpt, List<String> lines) throws IOException {
        check(what, ckpt, (String.join("\n", lines) + (lines.isEmpty() ? "" : "\n")).getBytes(StandardCharsets.UTF_8));
    }

    /**
     * A run folder of checkpoint bytes {@code ckpt} and metrics.jsonl bytes {@code metricsBytes} (null: a folder in
     * its place) resumed to step 3: it must reach step 3 with finite losses, or fail with one sentence naming the folder
     * and leave the checkpoint as it was.
     */
    private void check(String what, byte[] ckpt, byte[] metricsBytes) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("r" + folders++));
        Path file = Files.write(dir.resolve(Checkpoint.FILE), ckpt);
        if (metricsBytes == null) {
            Files.createDirectory(dir.resolve(Trainer.METRICS));
        } else {
            Files.write(dir.resolve(Trainer.METRICS), metricsBytes);
        }
        try {
            assertThat(train("train", "--resume", "--out", dir.toString(), "--steps", "3")).as(what).isZero();
            Map<String, String> m = Checkpoint.metadata(file);
            assertThat(m.get("step")).as("%s: the step of the new checkpoint", what).isEqualTo("3");
            for (String line : Files.readAllLines(dir.resolve(Trainer.METRICS), StandardCharsets.ISO_8859_1)) {
                Object loss = line.startsWith("{\"step\"") ? Json.parseObject(line).get("loss") : null;
                if (loss instanceof Number x && !Double.isFinite(x.doubleValue())) {
                    failures.add(shorten(what) + ": resumed, but logged the loss " + x);
                }
            }
            resumed++;
        } catch (IOException | IllegalArgumentException | Args.UsageException e) {
            String message = String.valueOf(e.getMessage());
            if (message.contains("\n") || message.equals("null") || message.isBlank()) {
                failures.add(shorten(what) + ": not one sentence: " + shorten(message));
            }
            if (!message.contains(dir.toString()) && !message.startsWith("--data") && !message.startsWith("--steps ")) {
                failures.add(shorten(what) + ": the sentence does not name the run folder: " + shorten(message));
            }
            if (!Arrays.equals(Files.readAllBytes(file), ckpt)) {
                failures.add(shorten(what) + ": refused (" + shorten(message) + "), but the checkpoint was changed");
            }
            refused++;
        } catch (IllegalStateException e) {
            // A learning rate stored in the checkpoint can be absurd but valid: the run then stops, one sentence.
            String message = String.valueOf(e.getMessage());
            if (!message.matches("the (training|evaluation) loss became [^\n]*")
                    || !Arrays.equals(Files.readAllBytes(file), ckpt)) {
                failures.add(shorten(what) + ": " + e + " at " + Arrays.toString(Arrays.copyOf(e.getStackTrace(), 3)));
            }
            diverged++;
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            failures.add(shorten(what) + ": " + e + " at " + Arrays.toString(Arrays.copyOf(e.getStackTrace(), 3)));
        }
        deleteTree(dir);
    }

    private static void deleteTree(Path dir) throws IOException {
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static String shorten(String s) {
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }
}
