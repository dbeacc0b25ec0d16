package jtune.methods.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * GPTQ against the reference's worked example (§10.3), its own error identity, its damping retries, and the
 * objective it minimises: the output-error proxy {@code tr(E H Eᵀ)} below round-to-nearest's at 4, 3 and 2 bits on
 * stories260K's real matrices and on Gaussian ones.
 */
class GptqTest {
    private static final Path STORIES = Path.of("../../shared/data/models/stories260K/stories260K.bin");

    /**
     * §10.3 with a third, decoupled column holding 3, so that the 2-bit min-max grid of the row is exactly the
     * integer grid (s = 1, z = 0) of the example: H = [[1, .5], [.5, 1]], W = [0.4, 0.4] quantizes to [0, 1] (RTN:
     * [0, 0]), with {@code eᵀHe} 0.28 against RTN's 0.48, the optimum over the grid.
     */
    @Test
    void workedExample() {
        double[] h = {1, 0.5, 0, 0.5, 1, 0, 0, 0, 1};
        float[] w = {0.4f, 0.4f, 3f};
        QuantFormat f = QuantFormat.integer(2, 0, false, DType.F32);
        for (double damp : new double[]{0, 0.01}) {
            Gptq.Result r = Gptq.quantize(w, 1, 3, h, new Gptq.Options(f, false, damp, 128));
            IntQuantization q = r.quantization();
            assertThat(new int[]{q.code(0, 0), q.code(0, 1), q.code(0, 2)}).containsExactly(0, 1, 3);
            assertThat(q.scales()).containsExactly(1f);
            assertThat(q.zeros()).containsExactly(0f);
            assertThat(Hessian.outputError(w, q.dequantize(), 1, 3, h)).isCloseTo(0.28, within(1e-7));
        }
        IntQuantization rtn = Rtn.quantize(w, 1, 3, f);
        assertThat(new int[]{rtn.code(0, 0), rtn.code(0, 1), rtn.code(0, 2)}).containsExactly(0, 0, 3);
        assertThat(Hessian.outputError(w, rtn.dequantize(), 1, 3, h)).isCloseTo(0.48, within(1e-7));
    }

    /** GPTQ's accumulated loss is exactly half the damped proxy: {@code e = Uᵀ err}, so {@code eᵀ H e = ‖err‖²}. */
    @Test
    void lossIsHalfTheDampedProxy() {
        SplittableRandom rng = new SplittableRandom(3);
        int rows = 12, cols = 40;
        float[] w = gaussian(rng, rows * cols, 1);
        double[] h = hessian(rng, cols, 160);
        for (boolean act : new boolean[]{false, true}) {
            Gptq.Result r = Gptq.quantize(w, rows, cols, h, new Gptq.Options(QuantFormat.integer(3, 32, false, DType.F32),
                    act, 0.05, 16));
            double mean = 0;
            for (int j = 0; j < cols; j++) {
                mean += h[j * cols + j] / cols;
            }
            double[] damped = h.clone();
            for (int j = 0; j < cols; j++) {
                damped[j * cols + j] += 0.05 * mean;
            }
            double proxy = Hessian.outputError(w, r.quantization().dequantize(), rows, cols, damped);
            assertThat(r.loss()).isCloseTo(proxy / 2, within(1e-6 * proxy));
        }
    }

    @Test
    void dampingRetriesWhenTheHessianIsNotPositiveDefinite() {
        float[] w = {0.3f, -0.2f, 0.1f, 0.5f};
        QuantFormat f = QuantFormat.integer(4, 0, false, DType.F32);
        // eigenvalues 2.05 and -0.05: damping 0.01 fails, 0.1 succeeds
        assertThat(Gptq.quantize(w, 2, 2, new double[]{1, 1.05, 1.05, 1}, Gptq.Options.of(f, false)).percdamp())
                .isEqualTo(0.1);
        // eigenvalues 2.5 and -0.5: only 1 succeeds
        assertThat(Gptq.quantize(w, 2, 2, new double[]{1, 1.5, 1.5, 1}, Gptq.Options.of(f, false)).percdamp())
                .isEqualTo(1.0);
        // rank one with no damping asked for: the first retry, 0.1
        assertThat(Gptq.quantize(w, 2, 2, new double[]{1, 1, 1, 1}, new Gptq.Options(f, false, 0, 128)).percdamp())
                .isEqualTo(0.1);
        assertThatThrownBy(() -> Gptq.quantize(w, 2, 2, new double[]{1, Double.NaN, Double.NaN, 1},
                Gptq.Options.of(f, false))).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("positive");
    }

    @Test
    void deadInputsGetZeroWeights() {
        float[] w = {0.3f, -0.9f, 0.1f, 0.5f, 0.7f, -0.2f};
        double[] h = {2, 0, 0.5, 0, 0, 0, 0.5, 0, 1};
        IntQuantization q = Gptq.quantize(w, 2, 3, h, Gptq.Options.of(QuantFormat.integer(4, 0, false, DType.F32), true))
                .quantization();
        float[] d = q.dequantize();
        assertThat(d[1]).isZero();
        assertThat(d[4]).isZero();
    }

    @Test
    void gptqBeatsRtnOnStoriesMatrices() throws IOException {
        Assumptions.assumeTrue(Files.isRegularFile(STORIES), "stories260K.bin is not in ../../shared/data; skipped");
        Map<String, float[]> m = storiesMatrices();
        Map<String, int[]> shapes = Map.of("wq", new int[]{64, 64}, "wk", new int[]{32, 64}, "wo", new int[]{64, 64},
                "w1", new int[]{172, 64}, "w2", new int[]{64, 172}, "w3", new int[]{172, 64});
        SplittableRandom rng = new SplittableRandom(11);
        StringBuilder table = new StringBuilder("stories260K layer 0, tr(EHEᵀ)/tr(WHWᵀ), per channel and g32:\n");
        for (Map.Entry<String, float[]> e : m.entrySet()) {
            int[] s = shapes.get(e.getKey());
            compare(e.getKey(), e.getValue(), s[0], s[1], hessian(rng, s[1], 4 * s[1]), table);
        }
        System.out.print(table);
    }

    @Test
    void gptqBeatsRtnOnGaussianMatrices() {
        SplittableRandom rng = new SplittableRandom(5);
        StringBuilder table = new StringBuilder("Gaussian, tr(EHEᵀ)/tr(WHWᵀ), per channel and g32:\n");
        compare("gauss 96x128", gaussian(rng, 96 * 128, 0.02), 96, 128, hessian(rng, 128, 512), table);
        compare("gauss 64x64", gaussian(rng, 64 * 64, 1), 64, 64, hessian(rng, 64, 256), table);
        System.out.print(table);
    }

    /** Asserts GPTQ's proxy below RTN's for 4, 3 and 2 bits, per channel and in groups of 32; adds a table row. */
    private static void compare(String name, float[] w, int rows, int cols, double[] h, StringBuilder table) {
        double scale = Hessian.outputError(w, new float[w.length], rows, cols, h);
        for (int group : new int[]{0, 32}) {
            table.append(String.format(Locale.ROOT, "  %-14s %-4s", name, group == 0 ? "ch" : "g" + group));
            for (int bits : new int[]{4, 3, 2}) {
                QuantFormat f = QuantFormat.integer(bits, group, false, DType.F32);
                double rtn = Hessian.outputError(w, Rtn.quantize(w, rows, cols, f).dequantize(), rows, cols, h);
                double gptq = Hessian.outputError(w, Gptq.quantize(w, rows, cols, h, Gptq.Options.of(f, false))
                        .quantization().dequantize(), rows, cols, h);
                double act = Hessian.outputError(w, Gptq.quantize(w, rows, cols, h, Gptq.Options.of(f, true))
                        .quantization().dequantize(), rows, cols, h);
                assertThat(gptq).as("%s %s: GPTQ vs RTN", name, f).isLessThan(rtn);
                assertThat(act).as("%s %s: GPTQ act-order vs RTN", name, f).isLessThan(rtn);
                table.append(String.format(Locale.ROOT, "  %db rtn %.4f gptq %.4f act %.4f", bits, rtn / scale,
                        gptq / scale, act / scale));
            }
            table.append('\n');
        }
    }

    /**
     * {@code (2/N) XᵀX} of N inputs with correlated features of unequal scale, as activations have: X = Z·A with a
     * random mixing A whose rows decay, times a log-normal scale per feature.
     */
    static double[] hessian(SplittableRandom rng, int n, int tokens) {
        double[] mix = new double[n * n], scale = new double[n];
        for (int i = 0; i < n; i++) {
            scale[i] = Math.exp(rng.nextGaussian());
            for (int j = 0; j < n; j++) {
                mix[i * n + j] = rng.nextGaussian() * Math.exp(-i / (n / 4.0));
            }
        }
        float[] x = new float[tokens * n];
        double[] z = new double[n];
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < n; i++) {
                z[i] = rng.nextGaussian();
            }
            for (int j = 0; j < n; j++) {
                double v = 0.3 * rng.nextGaussian();
                for (int i = 0; i < n; i++) {
                    v += z[i] * mix[i * n + j];
                }
                x[t * n + j] = (float) (v * scale[j]);
            }
        }
        Hessian h = new Hessian(n);
        h.add(x, tokens);
        return h.matrix();
    }

    static float[] gaussian(SplittableRandom rng, int n, double std) {
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) (std * rng.nextGaussian());
        }
        return w;
    }

    /**
     * Layer 0's q, k, o, gate (w1), down (w2) and up (w3) matrices of stories260K.bin, read at their offsets in the
     * llama2.c legacy layout (shared/data/README.md): a 7-int header, then embedding, rms_att, wq, wk, wv, wo,
     * rms_ffn, w1, w2, w3, each for all 5 layers, f32 little-endian, rows = out.
     */
    static Map<String, float[]> storiesMatrices() throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(STORIES)).order(ByteOrder.LITTLE_ENDIAN);
        int dim = b.getInt(0), hidden = b.getInt(4), layers = b.getInt(8), heads = b.getInt(12), kvHeads = b.getInt(16);
        int vocab = b.getInt(20), kv = dim / heads * kvHeads;
        long at = 28L + 4L * ((long) vocab * dim + (long) layers * dim);
        long wq = at, wk = wq + 4L * layers * dim * dim, wv = wk + 4L * layers * kv * dim, wo = wv + 4L * layers * kv * dim;
        long w1 = wo + 4L * layers * dim * dim + 4L * layers * dim, w2 = w1 + 4L * layers * hidden * dim;
        long w3 = w2 + 4L * layers * dim * hidden;
        Map<String, float[]> m = new LinkedHashMap<>();
        m.put("wq", floats(b, wq, dim * dim));
        m.put("wk", floats(b, wk, kv * dim));
        m.put("wo", floats(b, wo, dim * dim));
        m.put("w1", floats(b, w1, hidden * dim));
        m.put("w2", floats(b, w2, dim * hidden));
        m.put("w3", floats(b, w3, hidden * dim));
        return m;
    }

    private static float[] floats(ByteBuffer b, long at, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = b.getFloat(Math.toIntExact(at + 4L * i));
        }
        return out;
    }
}
