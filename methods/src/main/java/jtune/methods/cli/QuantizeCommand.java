package jtune.methods.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import jtune.engine.backend.Backend;
import jtune.engine.cli.Args;
import jtune.engine.cli.CommandProvider;
import jtune.engine.io.HfExport;
import jtune.engine.io.LoadedModel;
import jtune.engine.io.ModelLoader;
import jtune.engine.model.LlamaModel;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.nn.WeightTransform;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.QuantFormat;
import jtune.methods.quant.Calibration;
import jtune.methods.quant.ModelQuantizer;
import jtune.methods.quant.QuantizedModelFile;

/**
 * {@code jtune quantize --model PATH --method rtn|gptq|nf4 [...] --out DIR}: quantizes every linear layer of the
 * decoder blocks ({@link ModelQuantizer}; the embedding, norms and head stay f32) and writes the model as a folder in
 * {@link QuantizedModelFile}'s format, which {@code jtune eval} and {@code jtune generate} load. GPTQ calibrates on
 * {@code --calib FILE}, tokenized whole with the model's tokenizer, sampled by {@link Calibration}: 128 windows of
 * min(2048, the model's positions) tokens by default, fewer when the text is shorter (said on stderr). DIR must be new
 * or empty; it appears whole or not at all.
 */
public final class QuantizeCommand implements CommandProvider {
    private static final Set<String> VALUED = Set.of("--model", "--tokenizer", "--method", "--bits", "--group",
            "--lorc-rank", "--lorc-bits", "--calib", "--calib-windows", "--calib-seq", "--seed", "--out");
    private static final Set<String> FLAGS = Set.of("--sym", "--bf16-scales", "--double-quant", "--act-order");
    /** GPTQ's damping, as a fraction of the mean Hessian diagonal. */
    private static final double PERCDAMP = 0.01;

    @Override
    public String name() {
        return "quantize";
    }

    @Override
    public String help() {
        return """
                  quantize                  quantize a model's linear layers; writes a model folder jtune reloads
                      --model PATH --tokenizer FILE   as for eval; the tokenizer is copied and reads --calib
                      --method rtn|gptq|nf4 round to nearest, GPTQ (needs --calib) or NF4 (QLoRA's 4-bit NormalFloat)
                      --bits B              rtn, gptq: 2, 3, 4 or 8 (default 4); nf4 is 4
                      --group G             rtn, gptq: 32, 64, 128 or 256 elements per scale, 0 one per row
                                            (default 128); nf4: the absmax block (default 64)
                      --sym --bf16-scales   rtn, gptq: no zero points; scales and zero points in bf16 (default
                                            asymmetric, f32)
                      --double-quant        nf4: absmax values as 8-bit codes (bitsandbytes' double quantization)
                      --lorc-rank R         add the rank-R SVD of each layer's quantization error (LoRC; default 0)
                      --lorc-bits 8|32      store LoRC's factors as int8 (a scale per direction), as ZeroQuant-V2
                                            counts them, or f32 (default 8)
                      --calib FILE          gptq: the calibration text, tokenized whole
                      --calib-windows N --calib-seq T   gptq: N windows of T tokens sampled from it (default 128 of
                                            min(2048, the model's positions); fewer when the text is shorter)
                      --act-order           gptq: quantize columns by decreasing Hessian diagonal
                      --seed S              the calibration sample and LoRC's sketches (default 0)
                      --out DIR             a new or empty folder; written whole or not at all
                """;
    }

    @Override
    public Set<String> valued() {
        return VALUED;
    }

    @Override
    public Set<String> flags() {
        return FLAGS;
    }

    /**
     * The options, checked before anything is loaded.
     *
     * @param calibSeq tokens per calibration window; 0: min(2048, the model's positions)
     */
    record Request(Path model, Path tokenizer, ModelQuantizer.Options options, Path calib, int calibWindows,
                   int calibSeq, long seed, Path out) {
        static Request parse(Args args) {
            if (args.positional().size() > 1) {
                throw new Args.UsageException("unexpected argument '" + args.positional().get(1) + "' after 'quantize'");
            }
            Path model = existing(args, "--model", "the model to quantize");
            String tok = args.string("--tokenizer", null);
            Path tokenizer = tok == null ? null : Path.of(tok);
            if (tokenizer != null && !Files.isRegularFile(tokenizer)) {
                throw new Args.UsageException("--tokenizer: there is no file " + tokenizer);
            }
            String methodName = args.string("--method", null);
            if (methodName == null) {
                throw new Args.UsageException("quantize needs --method rtn, gptq or nf4");
            }
            ModelQuantizer.Method method;
            try {
                method = ModelQuantizer.Method.parse(methodName);
            } catch (IllegalArgumentException e) {
                throw new Args.UsageException("--method must be rtn, gptq or nf4, got '" + methodName + "'");
            }
            boolean nf4 = method == ModelQuantizer.Method.NF4, gptq = method == ModelQuantizer.Method.GPTQ;
            only(args, !nf4, "rtn and gptq", "--sym", "--bf16-scales");
            only(args, nf4, "nf4", "--double-quant");
            only(args, gptq, "gptq", "--calib", "--calib-windows", "--calib-seq", "--act-order");
            int bits = args.integer("--bits", 4, 1);
            int group = args.integer("--group", nf4 ? QuantFormat.NF4_DEFAULT_BLOCK : 128, 0);
            QuantFormat format;
            try {
                format = nf4 ? nf4Format(bits, group, args.flag("--double-quant"))
                        : QuantFormat.integer(bits, group, args.flag("--sym"), args.flag("--bf16-scales") ? DType.BF16
                        : DType.F32);
            } catch (IllegalArgumentException e) {
                throw new Args.UsageException("--bits " + bits + " --group " + group + ": " + e.getMessage());
            }
            int seed = args.integer("--seed", 0, 0);
            int lorcRank = args.integer("--lorc-rank", 0, 0), lorcBits = args.integer("--lorc-bits", 8, 0);
            if (lorcBits != 8 && lorcBits != 32) {
                throw new Args.UsageException("--lorc-bits must be 8 (int8 factors, a scale per singular direction) or "
                        + "32 (f32), not " + lorcBits);
            }
            if (lorcRank == 0 && args.flag("--lorc-bits")) {
                throw new Args.UsageException("--lorc-bits sets how LoRC's factors are stored; it needs --lorc-rank R");
            }
            ModelQuantizer.Options options = new ModelQuantizer.Options(method, format, args.flag("--act-order"),
                    PERCDAMP, lorcRank, lorcBits, seed);
            Path calib = null;
            if (gptq) {
                calib = existing(args, "--calib", "the calibration text GPTQ needs");
                if (!Files.isRegularFile(calib)) {
                    throw new Args.UsageException("--calib: " + calib + " is not a file");
                }
            }
            String out = args.string("--out", null);
            if (out == null) {
                throw new Args.UsageException("quantize needs --out DIR, a new or empty folder to write the model into");
            }
            Path dir = Path.of(out);
            if (Files.exists(dir) && !emptyFolder(dir)) {
                throw new Args.UsageException("--out " + dir + " exists and is not an empty folder; jtune writes only"
                        + " into a new or empty one");
            }
            return new Request(model, tokenizer, options, calib, args.integer("--calib-windows", 128, 1),
                    args.integer("--calib-seq", 0, 2), seed, dir);
        }

        private static QuantFormat nf4Format(int bits, int block, boolean doubleQuant) {
            if (bits != 4) {
                throw new IllegalArgumentException("nf4 is a 4-bit format");
            }
            return QuantFormat.nf4(block, doubleQuant);
        }

        private static Path existing(Args args, String option, String what) {
            String v = args.string(option, null);
            if (v == null) {
                throw new Args.UsageException("quantize needs " + option + ", " + what);
            }
            Path p = Path.of(v);
            if (!Files.exists(p)) {
                throw new Args.UsageException(option + ": there is no file or folder " + p);
            }
            return p;
        }

        private static void only(Args args, boolean allowed, String methods, String... options) {
            for (String o : options) {
                if (!allowed && args.flag(o)) {
                    throw new Args.UsageException(o + " applies to " + methods + " only, not to --method "
                            + args.string("--method", ""));
                }
            }
        }

        private static boolean emptyFolder(Path dir) {
            try (Stream<Path> list = Files.list(dir)) {
                return list.findAny().isEmpty();
            } catch (IOException e) {
                return false;
            }
        }
    }

    @Override
    public int run(Args args, Backend backend, PrintStream out, PrintStream err) throws IOException {
        Request r = Request.parse(args);
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(backend, pool);
            try (LoadedModel loaded = ModelLoader.load(s, r.model(), r.tokenizer(), false, WeightTransform.IDENTITY,
                    false)) {
                quantize(r, s, loaded, out, err);
            }
        }
        return 0;
    }

    /** Quantizes the loaded model as {@code r} asks, writes it, and prints what was done. */
    private static void quantize(Request r, Session s, LoadedModel loaded, PrintStream out, PrintStream err)
            throws IOException {
        ModelQuantizer.Options o = r.options();
        err.println("jtune: " + loaded.description());
        for (Parameter p : loaded.model().parameters()) {
            if (p.value().dtype() != DType.F32) {
                throw new IllegalArgumentException(r.model() + " is already quantized (tensor '" + p.name() + "' is "
                        + p.value().dtype() + "); quantize an f32 model");
            }
        }
        Map<String, Object> provenance = new LinkedHashMap<>();
        List<int[]> windows = List.of();
        String calibration = "";
        if (o.method() == ModelQuantizer.Method.GPTQ) {
            windows = calibration(r, loaded, err);
            calibration = String.format(Locale.ROOT, "%d windows of %d tokens of %s, seed %d", windows.size(),
                    windows.getFirst().length, r.calib(), r.seed());
            provenance.put("act_order", o.actOrder());
            provenance.put("damp_percent", o.percdamp());
            provenance.put("calibration", Map.of("file", r.calib().toString(), "windows", windows.size(),
                    "tokens", windows.getFirst().length, "seed", r.seed()));
        }
        long t0 = System.nanoTime();
        ModelQuantizer.Result q = ModelQuantizer.quantize(s, loaded.model(), o, windows);
        double seconds = (System.nanoTime() - t0) * 1e-9;
        QuantizedModelFile.Spec spec = new QuantizedModelFile.Spec(o.method(), o.format(), o.lorcRank(), o.lorcBits(),
                provenance);
        try (LlamaModel model = q.model()) {
            HfExport.Result w = QuantizedModelFile.write(model, q.weights(), spec, loaded.tokenizer(),
                    loaded.tokenizerFiles(), r.out());
            long dense = 0, packed = 0;
            double error = 0;
            for (ModelQuantizer.LayerResult l : q.layers()) {
                dense += (long) Float.BYTES * l.rows() * l.cols();
                packed += l.bytes();
                error += l.relativeWeightError();
            }
            out.printf(Locale.ROOT, "quantized   %d linear layers: %s, in %.1f s%n", q.layers().size(), spec.describe(),
                    seconds);
            if (!calibration.isEmpty()) {
                out.println("calibration " + calibration);
            }
            out.printf(Locale.ROOT, "weights     linear layers %s f32 -> %s; mean relative weight error "
                            + "|W - Q|^2 / |W|^2 %.3g%n", MemoryLedger.human(dense), MemoryLedger.human(packed),
                    error / Math.max(1, q.layers().size()));
            out.println("wrote       " + w.dir() + ": " + String.join(", ", w.files()));
            out.println(w.tokenizerNote());
        }
    }

    /** The calibration windows of {@code --calib}, tokenized whole (CRLF read as LF) with the model's tokenizer. */
    private static List<int[]> calibration(Request r, LoadedModel loaded, PrintStream err) throws IOException {
        if (loaded.tokenizer() == null) {
            throw new Args.UsageException("gptq tokenizes --calib with the model's tokenizer, but none was found for "
                    + r.model() + "; name one with --tokenizer FILE");
        }
        int maxSeq = loaded.model().config().maxSeq();
        int seq = r.calibSeq() == 0 ? Math.min(2048, maxSeq) : r.calibSeq();
        if (seq > maxSeq) {
            throw new Args.UsageException("--calib-seq " + seq + " exceeds the model's " + maxSeq + " positions");
        }
        String text = new String(Files.readAllBytes(r.calib()), StandardCharsets.UTF_8).replace("\r\n", "\n");
        int[] tokens = loaded.tokenizer().encode(text, true);
        List<int[]> windows = Calibration.windows(tokens, r.calibWindows(), seq, r.seed());
        if (windows.size() < r.calibWindows() || windows.getFirst().length < seq) {
            err.printf(Locale.ROOT, "jtune: %s has %d tokens, fewer than %d windows of %d; calibrating on %d "
                            + "window%s of %d tokens (all of it, without overlap)%n", r.calib(), tokens.length,
                    r.calibWindows(), seq, windows.size(), windows.size() == 1 ? "" : "s", windows.getFirst().length);
        }
        return windows;
    }
}
