package jtune.methods.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.Shape;
import jtune.engine.tensor.Tensor;

/**
 * Post-training quantization of a whole LLaMA-family model: every linear layer of the decoder blocks (q, k, v, o,
 * gate, up, down) becomes a frozen {@link QuantizedWeight}, with a {@link LorcWeight} correction when a LoRC rank is
 * given; the embedding, the norms and the output head stay f32 (a tied head is the embedding itself, an untied
 * {@code lm_head} is kept dense too, as GPTQ does).
 *
 * <p>With calibration windows, the blocks are processed in order and, inside a block, in GPTQ's "true sequential"
 * groups {q, k, v} → o → {gate, up} → down: the Hessian of a group's shared input is accumulated from a forward pass
 * of the calibration windows through a model whose earlier layers are already quantized, so each layer is
 * calibrated on the inputs it will see. GPTQ needs this; for RTN and NF4 it only measures each layer's output-error
 * proxy {@code tr(E H Eᵀ)}. Each pass runs the whole model (the later blocks' outputs are not needed), so
 * calibration costs about 4 · layers forward passes over the windows.
 *
 * <p>The input model is left as it was; the result is a new frozen model built with {@link LlamaModel#create}
 * whose non-quantized tensors are copies, so the input may be closed afterwards.
 */
public final class ModelQuantizer {
    /** Windows per calibration forward pass. */
    private static final int CALIBRATION_BATCH = 8;
    /** The true-sequential order of the linear layers inside a block; a group shares its input. */
    private static final List<List<String>> SEQUENCE = List.of(
            List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
            List.of("self_attn.o_proj"),
            List.of("mlp.gate_proj", "mlp.up_proj"),
            List.of("mlp.down_proj"));

    /** The quantizers. */
    public enum Method {
        /** Round to nearest on a min-max integer grid ({@link Rtn}). */
        RTN,
        /** GPTQ with calibration data ({@link Gptq}). */
        GPTQ,
        /** bitsandbytes' NF4 ({@link Nf4Quantizer}). */
        NF4;

        /** "rtn", "gptq" or "nf4", any case. */
        public static Method parse(String name) {
            for (Method m : values()) {
                if (m.name().equalsIgnoreCase(name)) {
                    return m;
                }
            }
            throw new IllegalArgumentException("unknown quantization method '" + name + "'; use rtn, gptq or nf4");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * @param method   the quantizer
     * @param format   INT for RTN and GPTQ, NF4 for NF4
     * @param actOrder GPTQ: visit columns by descending Hessian diagonal
     * @param percdamp GPTQ: damping as a fraction of the mean Hessian diagonal
     * @param lorcRank rank of the LoRC correction, 0 for none
     * @param lorcBits storage of the LoRC factors: 8 (per-row int8, as the paper counts them) or 32 (f32)
     * @param seed     seeds the LoRC sketches
     */
    public record Options(Method method, QuantFormat format, boolean actOrder, double percdamp, int lorcRank,
                          int lorcBits, long seed) {
        public Options {
            boolean nf4 = format.kind() == QuantFormat.Kind.NF4;
            if (nf4 != (method == Method.NF4)) {
                throw new IllegalArgumentException("quantization method " + method + " cannot produce the format "
                        + format + "; rtn and gptq make integer formats, nf4 makes NF4");
            }
            if (lorcRank < 0) {
                throw new IllegalArgumentException("the LoRC rank must be 0 (none) or more, not " + lorcRank);
            }
            LorcWeight.checkBits(lorcBits);
        }

        /**
         * The usual settings: RTN and GPTQ asymmetric with f32 scales, per channel when {@code groupSize} is 0; NF4
         * (bits must be 4) in blocks of {@code groupSize}, 64 when it is 0, without double quantization; GPTQ
         * without act-order, percdamp 0.01; 8-bit LoRC factors.
         */
        public static Options of(Method method, int bits, int groupSize, int lorcRank) {
            QuantFormat f = method == Method.NF4 ? nf4(bits, groupSize) : QuantFormat.integer(bits, groupSize, false, DType.F32);
            return new Options(method, f, false, 0.01, lorcRank, 8, 0);
        }

        private static QuantFormat nf4(int bits, int groupSize) {
            if (bits != 4) {
                throw new IllegalArgumentException("nf4 is a 4-bit format; --bits must be 4 (or left out), not " + bits);
            }
            return QuantFormat.nf4(groupSize == 0 ? QuantFormat.NF4_DEFAULT_BLOCK : groupSize, false);
        }
    }

    /**
     * What happened to one linear layer.
     *
     * @param layer       Hugging Face name without ".weight" ("model.layers.3.mlp.down_proj")
     * @param weightError {@code ‖W − W_eff‖²_F}, W_eff the quantized weight plus its LoRC correction
     * @param weightNorm  {@code ‖W‖²_F}
     * @param outputError {@code tr(E H Eᵀ)} with {@code E = W − W_eff} and the layer's calibration Hessian; NaN
     *                    without calibration
     * @param gptqLoss    GPTQ's own estimate (NaN for the other methods)
     * @param percdamp    the damping GPTQ used (NaN for the other methods)
     * @param bytes       storage of the quantized weight and its LoRC factors
     */
    public record LayerResult(String layer, int rows, int cols, QuantFormat format, int lorcRank, double weightError,
                              double weightNorm, double outputError, double gptqLoss, double percdamp, long bytes) {
        /** {@code weightError / weightNorm}. */
        public double relativeWeightError() {
            return weightError / weightNorm;
        }
    }

    /**
     * The quantized model (the caller closes it), one result per quantized layer, and the quantized layers' weights
     * by layer name, in model order (a {@link QuantizedWeight}, or a {@link LorcWeight} over one; the model owns
     * them).
     */
    public record Result(LlamaModel model, List<LayerResult> layers, Map<String, LinearWeight> weights) {
    }

    private ModelQuantizer() {
    }

    /**
     * Quantizes {@code model}'s linear layers (see the class comment). {@code calibration}: token windows of one
     * length within the model's positions (GPTQ needs at least one; may be empty for RTN and NF4).
     */
    public static Result quantize(Session s, LlamaModel model, Options o, List<int[]> calibration) {
        LlamaConfig c = model.config();
        checkWindows(calibration, c);
        if (o.method() == Method.GPTQ && calibration.isEmpty()) {
            throw new IllegalArgumentException("GPTQ needs calibration text: give at least one window of tokens");
        }
        Map<String, Parameter> byName = new LinkedHashMap<>();
        for (Parameter p : model.parameters()) {
            byName.put(p.name(), p);
        }
        List<String> layers = linearLayers(byName);
        Map<String, LinearWeight> done = new LinkedHashMap<>();
        List<LayerResult> results = new ArrayList<>();
        try {
            if (calibration.isEmpty()) {
                for (String layer : layers) {
                    quantizeLayer(s, layer, byName.get(layer + ".weight"), null, o, done, results);
                }
            } else {
                sequential(s, model, byName, layers, o, calibration, done, results);
            }
            Map<String, LinearWeight> handed = new LinkedHashMap<>(done);
            LlamaModel out = LlamaModel.create(s, c, copies(byName, done.keySet()), false, (s2, layer, base) -> {
                LinearWeight q = handed.remove(layer);
                if (q == null) {
                    return base;
                }
                base.close();
                return q;
            }, model.checkpointing());
            return new Result(out, List.copyOf(results), Collections.unmodifiableMap(done));
        } catch (RuntimeException e) {
            done.values().forEach(LinearWeight::close);
            throw e;
        }
    }

    /** Block by block, group by group: capture the group's input Hessian, then quantize its members. */
    private static void sequential(Session s, LlamaModel model, Map<String, Parameter> byName, List<String> layers,
                                   Options o, List<int[]> calibration, Map<String, LinearWeight> done,
                                   List<LayerResult> results) {
        Map<String, Capture> captures = new LinkedHashMap<>();
        WeightTransform capture = (s2, layer, base) -> {
            Capture cw = new Capture(base);
            captures.put(layer, cw);
            return cw;
        };
        LlamaConfig c = model.config();
        try (LlamaModel calib = LlamaModel.create(s, c, views(byName), false, capture, false)) {
            int covered = 0;
            for (int l = 0; l < c.layers(); l++) {
                String prefix = "model.layers." + l + ".";
                for (List<String> group : SEQUENCE) {
                    List<String> members = group.stream().map(g -> prefix + g)
                            .filter(captures::containsKey).toList();
                    if (members.isEmpty()) {
                        continue;
                    }
                    Capture feeder = captures.get(members.getFirst());
                    feeder.hessian = new Hessian(Math.toIntExact(feeder.inFeatures()));
                    run(s, calib, calibration);
                    double[] h = feeder.hessian.matrix();
                    feeder.hessian = null;
                    for (String layer : members) {
                        captures.get(layer).current = quantizeLayer(s, layer, byName.get(layer + ".weight"), h, o, done,
                                results);
                        covered++;
                    }
                }
            }
            if (covered != layers.size()) {
                throw new IllegalStateException("the model has linear layers outside q/k/v/o/gate/up/down: " + layers);
            }
        }
    }

    /** One forward pass of every calibration window, in batches, for the captures to see the inputs. */
    private static void run(Session s, LlamaModel model, List<int[]> windows) {
        int seq = windows.getFirst().length;
        for (int b0 = 0; b0 < windows.size(); b0 += CALIBRATION_BATCH) {
            int b = Math.min(CALIBRATION_BATCH, windows.size() - b0);
            try (Tensor tokens = s.i32("calibration.tokens", Category.WORKSPACE, b, seq);
                 Tensor targets = s.i32("calibration.targets", Category.WORKSPACE, b, seq)) {
                MemorySegment ts = tokens.segment(), gs = targets.segment();
                for (int i = 0; i < b; i++) {
                    MemorySegment.copy(windows.get(b0 + i), 0, ts, ValueLayout.JAVA_INT, (long) i * seq * Integer.BYTES, seq);
                }
                gs.fill((byte) -1);
                model.loss(tokens, targets);
            }
        }
    }

    /** Quantizes one layer's weight, records the result, and returns the new weight (also kept in {@code done}). */
    private static LinearWeight quantizeLayer(Session s, String layer, Parameter weight, double[] h, Options o,
                                              Map<String, LinearWeight> done, List<LayerResult> results) {
        int rows = Math.toIntExact(weight.value().dim(0)), cols = Math.toIntExact(weight.value().dim(1));
        float[] w = weight.value().toFloatArray();
        double loss = Double.NaN, damp = Double.NaN;
        QuantizedArrays q = switch (o.method()) {
            case RTN -> Rtn.quantize(w, rows, cols, o.format());
            case NF4 -> Nf4Quantizer.quantize(w, rows, cols, o.format());
            case GPTQ -> {
                Gptq.Result r = Gptq.quantize(w, rows, cols, h, new Gptq.Options(o.format(), o.actOrder(), o.percdamp(),
                        128));
                loss = r.loss();
                damp = r.percdamp();
                yield r.quantization();
            }
        };
        float[] effective = q.dequantize();
        QuantizedWeight base = new QuantizedWeight(q.toMatrix(s.pool(), layer + ".weight"));
        LinearWeight result = base;
        long bytes = base.matrix().bytes();
        if (o.lorcRank() > 0) {
            float[] e = new float[w.length];
            for (int i = 0; i < w.length; i++) {
                e[i] = w[i] - effective[i];
            }
            LowRank f = LowRank.of(e, rows, cols, o.lorcRank(), o.seed() ^ layer.hashCode());
            LorcWeight lorc;
            try {
                lorc = LorcWeight.of(s, layer, base, f, o.lorcBits());
            } catch (RuntimeException ex) {
                base.close();
                throw ex;
            }
            double[] uv = lorc.product();
            for (int i = 0; i < w.length; i++) {
                effective[i] = (float) (effective[i] + uv[i]);
            }
            result = lorc;
            bytes += lorc.u().bytes() + lorc.v().bytes();
        }
        done.put(layer, result);
        double err = 0, norm = 0;
        for (int i = 0; i < w.length; i++) {
            double d = (double) w[i] - effective[i];
            err += d * d;
            norm += (double) w[i] * w[i];
        }
        double out = h == null ? Double.NaN : Hessian.outputError(w, effective, rows, cols, h);
        results.add(new LayerResult(layer, rows, cols, o.format(), Math.min(o.lorcRank(), Math.min(rows, cols)), err,
                norm, out, loss, damp, bytes));
        return result;
    }

    /** The decoder blocks' linear layers, by the names of their rank-2 weights, in model order. */
    private static List<String> linearLayers(Map<String, Parameter> byName) {
        List<String> out = new ArrayList<>();
        for (Parameter p : byName.values()) {
            if (p.name().startsWith("model.layers.") && p.name().endsWith(".weight") && p.value().rank() == 2) {
                if (p.value().dtype() != DType.F32) {
                    throw new IllegalArgumentException("cannot quantize '" + p.name() + "': it is " + p.value().dtype()
                            + ", not a dense f32 weight (is the model already quantized?)");
                }
                out.add(p.name().substring(0, p.name().length() - ".weight".length()));
            }
        }
        return out;
    }

    /** The model's own tensors as non-owning views: the calibration model computes with them and frees nothing. */
    private static WeightSource views(Map<String, Parameter> byName) {
        return (s, name, init, category, dims) -> source(byName, name, dims).named(name);
    }

    /** Copies of the model's tensors, except the weights of the quantized layers (views, discarded at once). */
    private static WeightSource copies(Map<String, Parameter> byName, Set<String> quantized) {
        return (s, name, init, category, dims) -> {
            Tensor src = source(byName, name, dims);
            if (name.endsWith(".weight") && quantized.contains(name.substring(0, name.length() - ".weight".length()))) {
                return src.named(name);
            }
            Tensor t = s.f32(name, category, dims);
            s.backend().copy(src, t);
            return t;
        };
    }

    private static Tensor source(Map<String, Parameter> byName, String name, long[] dims) {
        Parameter p = byName.get(name);
        if (p == null || !p.value().shape().equals(Shape.of(dims))) {
            throw new IllegalArgumentException("cannot quantize: the model has no plain tensor '" + name + "' of shape "
                    + Shape.of(dims) + "; quantize a model whose linear layers are dense f32 weights");
        }
        return p.value();
    }

    private static void checkWindows(List<int[]> windows, LlamaConfig c) {
        for (int[] w : windows) {
            if (w.length == 0 || w.length != windows.getFirst().length || w.length > c.maxSeq()) {
                throw new IllegalArgumentException("calibration windows must all have one length from 1 to the model's "
                        + c.maxSeq() + " positions; got lengths " + windows.getFirst().length + " and " + w.length);
            }
            for (int t : w) {
                if (t < 0 || t >= c.vocab()) {
                    throw new IllegalArgumentException("calibration token " + t + " is outside the model's vocabulary"
                            + " of " + c.vocab());
                }
            }
        }
    }

    /**
     * Stands in for a linear layer of the calibration model: forwards to the current weight (the dense original,
     * then its quantized replacement) and, while {@link #hessian} is set, adds the inputs it sees. It owns nothing.
     */
    private static final class Capture implements LinearWeight {
        private LinearWeight current;
        private Hessian hessian;

        Capture(LinearWeight current) {
            this.current = current;
        }

        @Override
        public long inFeatures() {
            return current.inFeatures();
        }

        @Override
        public long outFeatures() {
            return current.outFeatures();
        }

        @Override
        public void forward(Session s, Tensor x, Tensor y) {
            if (hessian != null) {
                hessian.add(s, x);
            }
            current.forward(s, x, y);
        }

        @Override
        public void backward(Session s, Tensor x, Tensor dy, Tensor dx) {
            current.backward(s, x, dy, dx);
        }

        @Override
        public List<Parameter> parameters() {
            return current.parameters();
        }

        @Override
        public void close() {
        }
    }
}
