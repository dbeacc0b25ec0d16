package jtune.methods.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.cli.Args;
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
 * Seeded mutations of a run folder of {@code jtune finetune} (two LoRA steps over stories260K on the scalar backend)
 * that {@code --resume} then continues to step 3: the metadata finetune adds to the checkpoint ("finetune",
 * "base_model", "data_crc32", "backend", "threads" and the stored "options", field by field) and the trainer's keys
 * replaced, dropped or joined by unknown ones; its tensors dropped, retyped, reshaped, renamed or joined by others;
 * the file cut short or its bytes flipped; metrics.jsonl garbled. Every case must resume (step 3, finite losses) or
 * fail with one sentence naming the run folder or an option, the checkpoint left byte for byte as it was; any other
 * exception fails the test with the case.
 */
class FinetuneResumeFuzzTest {
    private static final String[] TEXTS = {"", "0", "2", "3", "-1", "2147483648", "99999999999999999999", "1.5",
        "1e999", " 2", "NaN", "true", "{}", "lora", "qlora", "peqa", "LORA", "scalar", "x\ny", "x".repeat(10_000)};
    private static final Object[] VALUES = {0L, 1L, 2L, 3L, 64L, -1L, 2147483648L, Long.MAX_VALUE, 0.5, 1e300, -0.0,
        true, false, null, "", "x", "-1", "1e999", "NaN", "lora", "peqa", "qlora", "q,k", "nope", List.of(), Map.of()};
    private static final List<DType> TYPES = List.of(DType.U8, DType.I8, DType.F32, DType.BF16, DType.F16, DType.I32);

    @TempDir
    Path tmp;
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final ScalarBackend backend = new ScalarBackend();
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private Map<String, String> metadata;
    private byte[] checkpoint;
    private byte[] metrics;
    private Path text;
    /** Options that name a file: a sentence may name that file instead of the option. */
    private static final List<String> FILES = List.of("--model", "--tokenizer", "--data", "--scales");
    /** The file a mutated option names, which the sentence may name instead; null: none. */
    private String named;
    /** The case's sentence must name the run folder, an option is not enough. */
    private boolean folderOnly;
    private int folders;
    private int resumed;
    private int refused;
    private final List<String> failures = new ArrayList<>();

    @BeforeEach
    void goodRun() throws IOException {
        Run.assumeStories();
        text = Run.textHead(tmp.resolve("text.txt"), 4_000);
        Path good = tmp.resolve("good");
        Map<String, String> argv = new LinkedHashMap<>();
        String[] a = {"--model", Run.STORIES.toString(), "--data", text.toString(), "--method", "lora", "--rank", "2",
            "--seq", "32", "--batch", "1", "--lr", "1e-2", "--warmup", "0", "--steps", "2", "--eval-every", "1",
            "--eval-batches", "1", "--out", good.toString()};
        for (int i = 0; i < a.length; i += 2) {
            argv.put(a[i], a[i + 1]);
        }
        assertThat(finetune(Args.of(argv))).isZero();
        checkpoint = Files.readAllBytes(good.resolve(Checkpoint.FILE));
        metrics = Files.readAllBytes(good.resolve(Trainer.METRICS));
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

    private int finetune(Args args) throws IOException {
        PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        return new FinetuneCommand().run(args, backend, sink, sink);
    }

    @Test
    void everyMutationResumesOrFailsWithOneSentence() throws IOException {
        long started = System.nanoTime();
        SplittableRandom rng = new SplittableRandom(20261126);
        check("the run as written", checkpoint, metrics);
        assertThat(resumed).as(String.join("; ", failures)).isEqualTo(1);

        for (String key : new ArrayList<>(metadata.keySet())) {
            Map<String, String> m = new LinkedHashMap<>(metadata);
            m.remove(key);
            check("-" + key, write(m, Map.of(), Map.of()), metrics);
            String was = metadata.get(key);
            for (String v : new String[]{was.substring(0, was.length() / 2), was + "x"}) {
                m.put(key, v);
                check(key + "=" + shorten(v), write(m, Map.of(), Map.of()), metrics);
            }
        }
        for (String key : new String[]{"finetune", "base_model", "data_crc32", "backend", "threads"}) {
            for (int n = 0; n < 4; n++) {
                String v = TEXTS[rng.nextInt(TEXTS.length)];
                check(key + "=" + shorten(v), write(with(key, v), Map.of(), Map.of()), metrics);
            }
        }
        check("base_model elsewhere", write(with("base_model", tmp.resolve("other.bin").toString()), Map.of(),
                Map.of()), metrics);
        Map<String, Object> options = Json.parseObject(metadata.get("options"));
        folderOnly = true;
        for (String v : new String[]{"", "{}", "[]", "null", "1", "{", "{\"--seq\":", "[".repeat(100_000)}) {
            check("options=" + shorten(v), write(with("options", v), Map.of(), Map.of()), metrics);
        }
        folderOnly = false;
        List<String> fields = new ArrayList<>(options.keySet());
        fields.addAll(List.of("--tokenizer", "--scales", "--bits", "--group", "--alpha", "--dropout", "--rslora",
                "--targets", "--clip", "--weight-decay", "--eval-fraction", "--seed", "--checkpoint-every",
                "--checkpointing", "--out", "--resume", "--unknown"));
        for (String field : fields) {
            Map<String, Object> o = new LinkedHashMap<>(options);
            named = null;
            if (o.remove(field) != null) {
                // Options a resume cannot supply: their absence is the checkpoint's fault, so the sentence names it.
                folderOnly = field.equals("--model") || field.equals("--method");
                check("options -" + field, write(with("options", Json.write(o)), Map.of(), Map.of()), metrics);
            }
            folderOnly = false;
            for (int n = 0; n < 2; n++) {
                Object v = VALUES[rng.nextInt(VALUES.length)];
                o.put(field, v);
                named = FILES.contains(field) ? String.valueOf(v) : null;
                check("options " + field + "=" + Json.write(v), write(with("options", Json.write(o)), Map.of(),
                        Map.of()), metrics);
            }
        }
        for (Map.Entry<String, String> odd : Map.of("--lora-rank", "8", "--checkpointing", "false").entrySet()) {
            Map<String, Object> o = new LinkedHashMap<>(options);
            o.put(odd.getKey(), odd.getValue());
            int before = refused;
            folderOnly = true;
            check("options " + odd, write(with("options", Json.write(o)), Map.of(), Map.of()), metrics);
            folderOnly = false;
            assertThat(refused).as("a stored option %s is refused", odd).isEqualTo(before + 1);
        }
        Object[][] chosen = {{"--method", "peqa"}, {"--method", "qlora"}, {"--rank", 4L}, {"--targets", "q,k"},
            {"--seq", 16L}, {"--seq", 100000L}, {"--model", tmp.resolve("none.bin").toString()},
            {"--model", text.toString()}, {"--data", tmp.resolve("none.txt").toString()},
            {"--data", tmp.toString()}, {"--tokenizer", text.toString()}, {"--lr", "1e300"}, {"--lr", "1"},
            {"--steps", 1L}, {"--steps", 0L}, {"--eval-fraction", 0.5}, {"--batch", 3L}};
        for (Object[] c : chosen) {
            Map<String, Object> o = new LinkedHashMap<>(options);
            o.put((String) c[0], c[1]);
            named = FILES.contains((String) c[0]) ? String.valueOf(c[1]) : null;
            check("options " + c[0] + "=" + Json.write(c[1]), write(with("options", Json.write(o)), Map.of(),
                    Map.of()), metrics);
        }
        named = null;
        for (String method : new String[]{"peqa", "qlora"}) {
            Map<String, Object> o = new LinkedHashMap<>(options);
            o.put("--method", method);
            Map<String, String> m = with("options", Json.write(o));
            m.put("finetune", method);
            check("options --method and finetune " + method, write(m, Map.of(), Map.of()), metrics);
        }
        for (int n = 0; n < 10; n++) {
            Map<String, String> m = new LinkedHashMap<>(metadata);
            StringBuilder what = new StringBuilder("metadata");
            for (int e = 1 + rng.nextInt(3); e > 0; e--) {
                List<String> keys = new ArrayList<>(metadata.keySet());
                String key = rng.nextInt(6) == 0 ? "unknown" : keys.get(rng.nextInt(keys.size()));
                String v = TEXTS[rng.nextInt(TEXTS.length)];
                m.put(key, v);
                what.append(' ').append(key).append('=').append(shorten(v));
            }
            check(what.toString(), write(m, Map.of(), Map.of()), metrics);
        }

        List<String> names = new ArrayList<>(tensors.keySet());
        for (int n = 0; n < 24; n++) {
            String name = names.get(rng.nextInt(names.size()));
            long[] dims = tensors.get(name).shape().toArray();
            DType type = TYPES.get(rng.nextInt(TYPES.size()));
            long[] other = dims.length == 1 ? new long[]{dims[0] + 1} : new long[]{dims[1], dims[0] + 1};
            switch (rng.nextInt(5)) {
                case 0 -> check("tensor " + name + " dropped", write(metadata, Map.of(name, "drop"), Map.of()), metrics);
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
        for (String extra : new String[]{"base_model.model.layers.9.self_attn.q_proj.lora_A.weight",
            "optimizer.exp_avg.extra", "model.layers.0.attention.wq.weight", "x"}) {
            check("an extra tensor " + extra, write(metadata, Map.of(), Map.of(extra, new long[]{4})), metrics);
        }

        int header = 8 + (int) ByteBuffer.wrap(checkpoint, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        for (int n = 0; n < 10; n++) {
            int cut = n < 5 ? rng.nextInt(header + 1) : header + rng.nextInt(checkpoint.length - header);
            check("checkpoint cut to " + cut + " bytes", Arrays.copyOf(checkpoint, cut), metrics);
        }
        for (int n = 0; n < 20; n++) {
            byte[] b = checkpoint.clone();
            int at = n < 15 ? rng.nextInt(header) : header + rng.nextInt(checkpoint.length - header);
            b[at] ^= (byte) (1 << rng.nextInt(8));
            check("checkpoint with a bit flipped at " + at, b, metrics);
        }
        for (int n = 0; n < 6; n++) {
            int cut = rng.nextInt(metrics.length);
            check("metrics cut to " + cut + " bytes", checkpoint, Arrays.copyOf(metrics, cut));
        }
        check("metrics garbage", checkpoint, "garbage\n{\"step\":".getBytes(StandardCharsets.UTF_8));
        check("metrics.jsonl a folder", checkpoint, null);

        double seconds = (System.nanoTime() - started) / 1e9;
        System.err.printf("FinetuneResumeFuzzTest: %d cases, %d resumed, %d refused, %.1f s%n", folders, resumed,
                refused, seconds);
        assertThat(failures).as("cases that neither resume nor fail with one sentence").isEmpty();
        assertThat(resumed).as("cases that resume").isGreaterThan(10);
        assertThat(refused).as("cases refused").isGreaterThan(50);
    }

    private Map<String, String> with(String key, String value) {
        Map<String, String> m = new LinkedHashMap<>(metadata);
        m.put(key, value);
        return m;
    }

    /** The checkpoint with metadata {@code meta}, its tensors changed by {@code changes} and {@code extras} added. */
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

    /**
     * A run folder of checkpoint bytes {@code ckpt} and metrics.jsonl bytes {@code metricsBytes} (null: a folder in
     * its place) resumed to step 3.
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
            Map<String, String> argv = new LinkedHashMap<>();
            argv.put("--resume", "true");
            argv.put("--out", dir.toString());
            argv.put("--steps", "3");
            assertThat(finetune(Args.of(argv))).as(what).isZero();
            assertThat(Checkpoint.metadata(file).get("step")).as("%s: the step of the new checkpoint", what)
                    .isEqualTo("3");
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
            if (folderOnly && !message.contains(dir.toString())) {
                failures.add(shorten(what) + ": the sentence does not name the run folder: " + shorten(message));
            }
            if (!message.contains(dir.toString()) && !message.matches("(?s).*--[a-z].*")
                    && (named == null || named.isEmpty() || !message.contains(named))) {
                failures.add(shorten(what) + ": the sentence names neither the run folder nor an option: "
                        + shorten(message));
            }
            if (!Arrays.equals(Files.readAllBytes(file), ckpt)) {
                failures.add(shorten(what) + ": refused (" + shorten(message) + "), but the checkpoint was changed");
            }
            refused++;
        } catch (IllegalStateException e) {
            String message = String.valueOf(e.getMessage());
            if (!message.matches("the (training|evaluation) loss became [^\n]*")
                    || !Arrays.equals(Files.readAllBytes(file), ckpt)) {
                failures.add(shorten(what) + ": " + e + " at " + Arrays.toString(Arrays.copyOf(e.getStackTrace(), 3)));
            }
            refused++;
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            failures.add(shorten(what) + ": " + e + " at " + Arrays.toString(Arrays.copyOf(e.getStackTrace(), 4)));
        }
        try (var walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }

    private static String shorten(String s) {
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }
}
