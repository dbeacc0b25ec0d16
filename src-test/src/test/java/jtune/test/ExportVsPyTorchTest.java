package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jtune.cpu.SimdBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.HfExport;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What jtune exports, PyTorch loads: each model is written by {@link HfExport}, then read by
 * src-test/src/test/python/load_hf_export.py (Debian's python3-torch, no transformers: it parses config.json and the
 * safetensors itself, loads the tensors strictly into the reference LLaMA of torch_llama.py and runs it in float32),
 * and its logits are compared with jtune's. Skipped with a message where /usr/bin/python3 cannot import torch.
 *
 * <p>Models: stories260K from its llama2.c file (real weights, GQA, tied; skipped where ../shared/data is absent),
 * a Qwen3-style model (q/k norm, head dim 16 ≠ dim / heads, tied) and a Qwen2-style one (q/k/v bias, untied, Llama 3
 * rope scaling), both with seeded O(1) weights so that attention is far from uniform and every tensor matters. The
 * bound, 1e-5 of the largest logit, leaves room for two float32 implementations summing in different orders (about
 * 1e-6 here); a misread tensor, a transposed matrix or a misplaced RoPE pair errs by 1e-2 or more.
 */
class ExportVsPyTorchTest {
    static final Path SCRIPT = Path.of("src", "test", "python", "load_hf_export.py").toAbsolutePath();
    static final Path STORIES = Path.of("..", "..", "shared", "data", "models", "stories260K", "stories260K.bin")
            .toAbsolutePath().normalize();
    static final int[] IDS = {1, 203, 107, 61, 178, 232, 13, 255, 0, 17};
    static final double BOUND = 1e-5;

    @TempDir
    Path dir;

    private final SimdBackend backend = new SimdBackend(2);
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session session = new Session(backend, pool);

    @AfterEach
    void close() {
        pool.close();
        backend.close();
    }

    static void assumeTorch() throws IOException, InterruptedException {
        Path python = Path.of("/usr/bin/python3");
        assumeTrue(Files.isExecutable(python), "/usr/bin/python3 is absent; skipping the PyTorch check of the export");
        Process p = new ProcessBuilder(python.toString(), "-c", "import torch, numpy").redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        assumeTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0,
                "/usr/bin/python3 cannot import torch and numpy; skipping the PyTorch check of the export");
    }

    private float[] jtuneLogits(LlamaModel m) {
        float[] ids = new float[IDS.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = IDS[i];
        }
        try (Tensor t = session.i32("tokens", Category.WORKSPACE, 1, IDS.length).copyFrom(ids);
             Tensor out = session.f32("logits", Category.WORKSPACE, IDS.length, m.config().vocab())) {
            m.logits(t, out);
            return out.toFloatArray();
        }
    }

    /** Runs the script once on every folder; fails with its output if it fails. */
    private static void runPyTorch(List<Path> folders) throws IOException, InterruptedException {
        StringBuilder ids = new StringBuilder();
        for (int id : IDS) {
            ids.append(ids.isEmpty() ? "" : ",").append(id);
        }
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", SCRIPT.toString(), ids.toString()));
        folders.forEach(f -> cmd.add(f.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).as("the script finishes").isTrue();
        assertThat(p.exitValue()).as("load_hf_export.py failed:%n%s", log).isZero();
        System.out.print(log);
    }

    private static float[] floats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] v = new float[b.remaining() / 4];
        b.asFloatBuffer().get(v);
        return v;
    }

    /**
     * Exports stories260K (when its data is present), a Qwen3-style and a Qwen2-style model, runs PyTorch once on
     * the three folders and compares each one's logits with jtune's.
     */
    @Test
    void pytorchLoadsTheExportsToTheSameLogits() throws IOException, InterruptedException {
        assumeTorch();
        Map<Path, float[]> expected = new LinkedHashMap<>();
        if (Files.isRegularFile(STORIES)) {
            try (LoadedModel m = ModelLoader.load(session, STORIES, null, false, WeightTransform.IDENTITY, false)) {
                expected.put(HfExport.write(m, dir.resolve("stories260K")).dir(), jtuneLogits(m.model()));
            }
        } else {
            System.out.println(STORIES + " is absent; the export check runs on the synthetic models only");
        }
        LlamaConfig qwen3 = new LlamaConfig(32, 48, 2, 4, 2, 16, 256, 64, 1e6, null, 1e-6f, true, false, true);
        LlamaConfig qwen2 = new LlamaConfig(32, 48, 2, 4, 1, 8, 256, 64, 100.0,
                new LlamaConfig.RopeScaling(4.0, 1.0, 4.0, 32), 1e-6f, false, true, false);
        for (LlamaConfig c : List.of(qwen3, qwen2)) {
            try (LlamaModel m = LlamaModel.create(session, c, 0, WeightTransform.IDENTITY, false)) {
                randomize(m, expected.size());
                Path folder = dir.resolve(c.qkNorm() ? "qwen3-style" : "qwen2-style");
                expected.put(HfExport.write(m, new ByteTokenizer(), List.of(), folder, HfExport.SHARD_BYTES).dir(),
                        jtuneLogits(m));
            }
        }
        runPyTorch(List.copyOf(expected.keySet()));
        expected.forEach((folder, got) -> {
            String name = folder.getFileName().toString();
            float[] want;
            try {
                want = floats(folder.resolveSibling(name + ".logits"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            assertThat(want).as("%s: PyTorch's logits", name).hasSize(got.length);
            double maxAbs = 0, scale = 0;
            for (int i = 0; i < got.length; i++) {
                maxAbs = Math.max(maxAbs, Math.abs((double) got[i] - want[i]));
                scale = Math.max(scale, Math.abs(want[i]));
            }
            System.out.printf(Locale.ROOT, "%s: max |jtune - PyTorch| = %.2e, relative to max |logit| %.2f: %.2e%n",
                    name, maxAbs, scale, maxAbs / scale);
            assertThat(maxAbs / scale).as("%s: largest logit error relative to the largest logit", name)
                    .isLessThanOrEqualTo(BOUND);
        });
    }

    /** O(1)-activation weights: matrices N(0, 1/in), the embedding N(0, 1), norms 1 + N(0, 0.1²), biases N(0, 0.1²). */
    static void randomize(LlamaModel m, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (Parameter p : m.parameters()) {
            Tensor t = p.value();
            boolean norm = p.name().endsWith("norm.weight"), bias = p.name().endsWith(".bias");
            boolean embedding = p.name().equals("model.embed_tokens.weight");
            double sd = norm || bias ? 0.1 : embedding ? 1 : 1 / Math.sqrt(t.dim(1));
            float[] v = new float[Math.toIntExact(t.size())];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) ((norm ? 1 : 0) + sd * rng.nextGaussian());
            }
            t.copyFrom(v);
        }
    }
}
