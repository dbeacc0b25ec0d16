package jtune.methods.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.SplittableRandom;
import jtune.engine.backend.Backend;
import jtune.engine.backend.BackendOptions;
import jtune.engine.backend.Backends;
import jtune.engine.backend.ScalarBackend;
import jtune.engine.model.Generator;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.LlamaModel;
import jtune.engine.model.Sampling;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Shape;
import jtune.engine.tensor.Tensor;
import jtune.methods.quant.QuantizedWeight;

/**
 * The weight memory of a LLaMA-7B-shaped model (dim 4096, hidden 11008, 32 layers, 32 heads, vocabulary 32000, untied
 * head) with every decoder linear layer quantized, as the memory ledger counts it, against the formula
 * {@code bits/8 · params + groups · (scale + zero point bytes)}; the f32 embedding, head and norms are counted apart,
 * in a ledger of their own, against {@code 4 · their elements}. The model is built with {@link LlamaModel#create};
 * its quantized layers are {@link QuantizedWeight}s over {@link QuantizedMatrix} tensors filled with random codes,
 * scales and zero points, without any f32 weight ever existing for them. Needs about 4.7 GB of memory for int4 g128
 * with f32 scales and zero points. Used by {@code bench/quant-memory}.
 *
 * <p>With a decode count N &gt; 0 it then times decoding on the best CPU backend: greedy generation of N tokens
 * after a one-token prompt through the whole model and a key/value cache, after a warm-up of 8 tokens, with the f32
 * embedding and head filled with random values and the norms with ones. It prints tokens per second and the weight
 * bytes a token reads (the quantized layers, the f32 head and norms, one row of the embedding) per second.
 *
 * <p>Arguments: {@code [bits [group [sym|asym [f32|bf16 [decode]]]]]}, default {@code 4 128 asym f32 0}. Prints a
 * table; exits 1 when a measured size is not within 3% of its formula.
 */
public final class QuantMemoryBench {
    private static final double TOLERANCE = 0.03;

    private QuantMemoryBench() {
    }

    public static void main(String[] args) {
        int bits = args.length > 0 ? Integer.parseInt(args[0]) : 4;
        int group = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        boolean sym = args.length > 2 && args[2].equals("sym");
        DType scaleType = args.length > 3 && args[3].equals("bf16") ? DType.BF16 : DType.F32;
        int decode = args.length > 4 ? Integer.parseInt(args[4]) : 0;
        QuantFormat format = QuantFormat.integer(bits, group, sym, scaleType);
        LlamaConfig c = LlamaConfig.llama(4096, 11008, 32, 32, 32, 32000, 2048, false);

        MemoryLedger quantLedger = new MemoryLedger(), denseLedger = new MemoryLedger();
        SplittableRandom rng = new SplittableRandom(0);
        long[] linear = new long[3];
        try (Backend backend = decode > 0 ? Backends.select(new BackendOptions("auto", 0, "cpu")).backend()
                : new ScalarBackend();
             MemoryPool quantPool = new MemoryPool(quantLedger); MemoryPool densePool = new MemoryPool(denseLedger)) {
            Session dense = new Session(backend, densePool);
            WeightSource source = (s, name, init, category, dims) -> {
                if (name.startsWith("model.layers.") && dims.length == 2) {
                    return standIn(name, dims);
                }
                Tensor t = dense.f32(name, category, dims);
                if (decode > 0) {
                    randomize(t, dims.length == 1, rng);
                }
                return t;
            };
            WeightTransform quantize = (s, layer, base) -> {
                if (!layer.startsWith("model.layers.")) {
                    return base;
                }
                QuantizedMatrix m = QuantizedMatrix.allocate(quantPool, layer + ".weight", format, base.outFeatures(),
                        base.inFeatures());
                fill(m, rng);
                linear[0]++;
                linear[1] += base.outFeatures() * base.inFeatures();
                linear[2] += base.outFeatures() * format.groups(Math.toIntExact(base.inFeatures()));
                return new QuantizedWeight(m);
            };
            long t0 = System.nanoTime();
            try (LlamaModel model = LlamaModel.create(dense, c, source, false, quantize, false)) {
                double seconds = (System.nanoTime() - t0) * 1e-9;
                long params = linear[1], groups = linear[2];
                int scaleBytes = scaleType.bits() / 8, perGroup = scaleBytes * (format.hasZeros() ? 2 : 1);
                long quantFormula = params * bits / 8 + groups * perGroup;
                long embedding = (long) c.vocab() * c.dim(), norms = (2L * c.layers() + 1) * c.dim();
                long denseFormula = 4 * (2 * embedding + norms);
                long quantMeasured = quantLedger.current(Category.FROZEN_WEIGHTS);
                long denseMeasured = denseLedger.current(Category.FROZEN_WEIGHTS);
                System.out.printf(Locale.ROOT, "LLaMA-7B shape (dim %d, hidden %d, %d layers, %d heads, vocab %d, untied "
                                + "head): %d linear layers, %,d weights, quantized to %s (random codes, built in %.1f s)%n",
                        c.dim(), c.hiddenDim(), c.layers(), c.heads(), c.vocab(), linear[0], params, format, seconds);
                System.out.printf(Locale.ROOT, "%-32s %22s %22s  %s%n", "", "ledger (frozen weights)", "formula",
                        "ledger / formula");
                boolean ok = row("quantized linear layers", quantMeasured, quantFormula);
                System.out.printf(Locale.ROOT, "    formula: %d/8 bits x %,d weights + %,d groups x %d bytes (%s scale%s)%n",
                        bits, params, groups, perGroup, scaleType, format.hasZeros() ? " + zero point" : "");
                ok &= row("f32 embedding, head and norms", denseMeasured, denseFormula);
                System.out.printf(Locale.ROOT, "    formula: 4 bytes x (2 x %d x %d + %d x %d)%n", c.vocab(), c.dim(),
                        2 * c.layers() + 1, c.dim());
                ok &= row("whole model", quantMeasured + denseMeasured, quantFormula + denseFormula);
                System.out.printf(Locale.ROOT, "%.3f bits per quantized weight; the f32 model would take %s%n",
                        8.0 * quantMeasured / params, MemoryLedger.human(4 * (params + 2 * embedding + norms)));
                System.out.println(ok ? "within 3% of the formula: pass" : "not within 3% of the formula: FAIL");
                if (decode > 0) {
                    long perToken = quantMeasured + denseMeasured - 4L * embedding + 4L * c.dim();
                    decode(dense, model, decode, perToken);
                }
                if (!ok) {
                    System.exit(1);
                }
            }
        }
    }

    private static boolean row(String label, long measured, long formula) {
        double ratio = (double) measured / formula;
        System.out.printf(Locale.ROOT, "%-32s %,16d B %,16d B  %.4f (%s)%n", label, measured, formula, ratio,
                MemoryLedger.human(measured));
        return Math.abs(ratio - 1) <= TOLERANCE;
    }

    /** Times greedy decoding of {@code steps} tokens after a warm-up, and prints tokens/s and weight GB/s. */
    private static void decode(Session s, LlamaModel model, int steps, long bytesPerToken) {
        try (Generator g = new Generator(s, model)) {
            g.generate(new int[]{1}, 8, Sampling.greedy(), new SplittableRandom(1), new int[0], t -> { });
            Generator.Result r = g.generate(new int[]{1}, steps, Sampling.greedy(), new SplittableRandom(1), new int[0],
                    t -> { });
            double perSecond = r.decodeTokensPerSecond();
            System.out.printf(Locale.ROOT, "decode on %s: %d tokens after a 1-token prompt, %.2f tokens/s; %s of "
                            + "weights read a token, %.1f GB/s%n", s.backend().describe(), r.tokens().length, perSecond,
                    MemoryLedger.human(bytesPerToken), perSecond * bytesPerToken / 1e9);
        }
    }

    /** Uniform values in ±0.02, or ones for a vector (the norms' weights). */
    private static void randomize(Tensor t, boolean ones, SplittableRandom rng) {
        long n = t.size();
        for (long i = 0; i < n; i++) {
            t.segment().setAtIndex(ValueLayout.JAVA_FLOAT, t.offset() + i, ones ? 1f : (float) (rng.nextDouble(-0.02, 0.02)));
        }
    }

    /** An (out, in) f32 view of one zero through zero strides: the dense weight the quantized layer replaces. */
    private static Tensor standIn(String name, long[] dims) {
        MemorySegment one = MemorySegment.ofArray(new float[1]);
        return Tensor.wrap(one, name, DType.F32, Shape.of(1)).view(dims, new long[]{0, 0}, 0);
    }

    /** Random codes, positive scales and integer zero points in [0, 2^bits − 1]. */
    private static void fill(QuantizedMatrix m, SplittableRandom rng) {
        MemorySegment codes = m.codes().segment();
        long n = codes.byteSize() / Long.BYTES;
        for (long i = 0; i < n; i++) {
            codes.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, rng.nextLong());
        }
        int max = m.format().maxCode();
        for (Tensor t : new Tensor[]{m.scales(), m.zeros()}) {
            if (t == null) {
                continue;
            }
            long size = t.size();
            for (long i = 0; i < size; i++) {
                float v = t == m.zeros() ? rng.nextInt(max + 1) : (float) (1e-3 * (1 + rng.nextDouble()));
                Tensor.store(t.segment(), t.dtype(), t.offset() + i, v);
            }
        }
    }
}
