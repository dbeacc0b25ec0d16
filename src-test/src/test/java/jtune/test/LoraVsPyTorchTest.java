package jtune.test;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jtune.cpu.SimdBackend;
import jtune.engine.data.ByteTokenizer;
import jtune.engine.io.HfExport;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;
import jtune.methods.peft.LoraAdapters;
import jtune.methods.peft.LoraConfig;
import jtune.methods.peft.LoraWeight;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A LoRA adapter written by jtune loads in PyTorch: the base model is exported as a Hugging Face folder, jtune builds
 * it again from that folder with adapters (their B made non-zero, so that every adapter changes the logits), saves
 * them in PEFT's format, and methods/src/test/python/load_peft_adapter.py applies PEFT's formula to the folder and the
 * adapter and must reproduce jtune's logits. Skipped with a message where /usr/bin/python3 cannot import torch.
 *
 * <p>Two cases: stories260K (real weights, from ../shared/data, skipped where absent) with adapters on all seven
 * modules, r 4, alpha 8; and a Qwen2-style model (q/k/v bias, untied head) with rsLoRA, r 8, alpha 16, on q, v and
 * down only. The bound is {@link ExportVsPyTorchTest}'s: 1e-5 of the largest logit.
 */
class LoraVsPyTorchTest {
    static final Path SCRIPT = Path.of("..", "methods", "src", "test", "python", "load_peft_adapter.py")
            .toAbsolutePath().normalize();

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

    @Test
    void pytorchAppliesTheAdapterToTheSameLogits() throws IOException, InterruptedException {
        ExportVsPyTorchTest.assumeTorch();
        if (Files.isRegularFile(ExportVsPyTorchTest.STORIES)) {
            try (LoadedModel m = ModelLoader.load(session, ExportVsPyTorchTest.STORIES, null, false,
                    WeightTransform.IDENTITY, false)) {
                HfExport.write(m, dir.resolve("stories260K"));
            }
            check("stories260K", new LoraConfig(4, 8, 0.05, false, LoraConfig.MODULES));
        } else {
            System.out.println(ExportVsPyTorchTest.STORIES + " is absent; the LoRA check runs on the synthetic model "
                    + "only");
        }
        LlamaConfig qwen2 = new LlamaConfig(32, 48, 2, 4, 1, 8, 256, 64, 100.0, null, 1e-6f, false, true, false);
        try (LlamaModel m = LlamaModel.create(session, qwen2, 0, WeightTransform.IDENTITY, false)) {
            ExportVsPyTorchTest.randomize(m, 5);
            HfExport.write(m, new ByteTokenizer(), List.of(), dir.resolve("qwen2-style"), HfExport.SHARD_BYTES);
        }
        check("qwen2-style", new LoraConfig(8, 16, 0.1, true, List.of("q_proj", "v_proj", "down_proj")));
    }

    /** Builds the folder's model with adapters {@code c}, saves them, and compares PyTorch's logits with jtune's. */
    private void check(String name, LoraConfig c) throws IOException, InterruptedException {
        Path folder = dir.resolve(name), adapter = dir.resolve(name + "-adapter");
        LoraAdapters adapters = new LoraAdapters(c, 1);
        float[] got;
        try (LoadedModel m = ModelLoader.load(session, folder, null, false, adapters.over(WeightTransform.IDENTITY, 2),
                false)) {
            SplittableRandom rng = new SplittableRandom(3);
            for (LoraWeight w : adapters.weights().values()) {
                float[] b = new float[Math.toIntExact(w.b().value().size())];
                for (int i = 0; i < b.length; i++) {
                    b[i] = (float) (rng.nextGaussian() / Math.sqrt(c.rank()));
                }
                w.b().value().copyFrom(b);
            }
            got = logits(m.model());
            adapters.save(adapter, name);
        }
        Path out = dir.resolve(name + ".logits");
        StringBuilder ids = new StringBuilder();
        for (int id : ExportVsPyTorchTest.IDS) {
            ids.append(ids.isEmpty() ? "" : ",").append(id);
        }
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", SCRIPT.toString(), ids.toString(),
                folder.toString(), adapter.toString(), out.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(300, TimeUnit.SECONDS)).as("the script finishes").isTrue();
        assertThat(p.exitValue()).as("load_peft_adapter.py failed:%n%s", log).isZero();
        System.out.print(log);
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
        float[] want = new float[bytes.remaining() / 4];
        bytes.asFloatBuffer().get(want);
        assertThat(want).as("%s: PyTorch's logits", name).hasSize(got.length);
        double maxAbs = 0, scale = 0;
        for (int i = 0; i < got.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs((double) got[i] - want[i]));
            scale = Math.max(scale, Math.abs(want[i]));
        }
        System.out.printf(Locale.ROOT, "%s + LoRA: max |jtune - PyTorch| = %.2e, relative to max |logit| %.2f: %.2e%n",
                name, maxAbs, scale, maxAbs / scale);
        assertThat(maxAbs / scale).as("%s: largest logit error relative to the largest logit", name)
                .isLessThanOrEqualTo(ExportVsPyTorchTest.BOUND);
    }

    private float[] logits(LlamaModel m) {
        int[] idList = ExportVsPyTorchTest.IDS;
        float[] ids = new float[idList.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = idList[i];
        }
        try (Tensor t = session.i32("tokens", Category.WORKSPACE, 1, ids.length).copyFrom(ids);
             Tensor out = session.f32("logits", Category.WORKSPACE, ids.length, m.config().vocab())) {
            m.logits(t, out);
            return out.toFloatArray();
        }
    }
}
