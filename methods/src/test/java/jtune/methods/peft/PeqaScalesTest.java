package jtune.methods.peft;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.io.Json;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Session;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A task's scale set is saved apart from the model and swapped into a freshly quantized one, which then computes what
 * the trained model did; a set is refused by a model quantized in another format or over other codes.
 */
class PeqaScalesTest {
    private final MemoryPool pool = new MemoryPool(new MemoryLedger());
    private final Session s = new Session(new ScalarBackend(), pool);
    private static final QuantFormat INT4_G32 = QuantFormat.integer(4, 32, false, DType.F32);

    @TempDir
    Path dir;

    @AfterEach
    void close() {
        pool.close();
    }

    private LlamaModel model(long seed, QuantFormat f, Map<String, PeqaWeight> made) {
        return LlamaModel.create(s, PeqaWeightTest.TINY, WeightSource.random(seed), false,
                PeqaWeight.rtn(f, l -> !l.endsWith("k_proj"), made), false);
    }

    @Test
    void scaleSetSwapsIntoAFreshlyQuantizedModel() throws IOException {
        Map<String, PeqaWeight> a = new LinkedHashMap<>();
        float[] tuned;
        try (LlamaModel m = model(3, INT4_G32, a)) {
            int i = 0;
            for (PeqaWeight w : a.values()) {
                float[] v = w.scales().value().toFloatArray();
                for (int e = 0; e < v.length; e++) {
                    v[e] *= 1 + 0.01f * ((i++ * 7) % 13 - 6);
                }
                w.scales().value().copyFrom(v);
            }
            tuned = PeqaWeightTest.logits(s, m);
            PeqaScales.save(dir, a, "stories.bin", "rtn int4 g32");
        }
        assertThat(a).hasSize(12);
        Map<String, Object> c = Json.parseObject(Files.readString(dir.resolve(PeqaScales.CONFIG)));
        assertThat(c).containsEntry("base_model", "stories.bin").containsEntry("bits", 4L)
                .containsEntry("group_size", 32L).containsEntry("symmetric", false)
                .containsEntry("layers", List.copyOf(a.keySet()));
        try (SafeTensorsReader r = SafeTensorsReader.open(dir.resolve(PeqaScales.SCALES))) {
            assertThat(r.entries()).extracting(SafeTensors.Entry::name).first()
                    .isEqualTo("model.layers.0.self_attn.q_proj.scales");
            assertThat(r.entry("model.layers.0.mlp.down_proj.scales").dims()).containsExactly(64, 3);
        }

        Map<String, PeqaWeight> b = new LinkedHashMap<>();
        try (LlamaModel m = model(3, INT4_G32, b)) {
            assertThat(PeqaWeightTest.logits(s, m)).isNotEqualTo(tuned);
            PeqaScales.load(dir, b);
            assertThat(PeqaWeightTest.logits(s, m)).containsExactly(tuned);
        }
        Map<String, PeqaWeight> other = new LinkedHashMap<>();
        try (LlamaModel m = model(4, INT4_G32, other)) {
            assertThatThrownBy(() -> PeqaScales.load(dir, other)).isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageContaining("trained over other integer codes");
        }
        Map<String, PeqaWeight> grouped = new LinkedHashMap<>();
        try (LlamaModel m = model(3, QuantFormat.integer(4, 64, false, DType.F32), grouped)) {
            assertThatThrownBy(() -> PeqaScales.load(dir, grouped)).isInstanceOf(SafeTensors.FormatException.class)
                    .hasMessageContaining("4-bit, group 32, asymmetric base");
        }
    }
}
