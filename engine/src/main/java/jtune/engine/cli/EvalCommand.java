package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import jtune.engine.backend.Backend;
import jtune.engine.io.Json;
import jtune.engine.io.LoadedModel;
import jtune.engine.model.Perplexity;
import jtune.engine.nn.Session;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.train.Progress;

/**
 * {@code jtune eval}: the perplexity of a model on a text file, as the quantization papers measure WikiText-2 (see
 * {@link Perplexity}). The whole file is read as UTF-8, CRLF line ends become LF, and it is tokenized at once with the
 * tokenizer's own special tokens (Llama's BOS at the start), as {@code tokenizer(text)} does in their scripts.
 */
final class EvalCommand {
    static final Set<String> VALUED = ModelOptions.valuedWith("--data", "--seq");
    static final Set<String> FLAGS = Set.of("--json");
    /** Default window: 2048 tokens, or the model's positions if fewer. */
    static final int DEFAULT_SEQ = 2048;

    private EvalCommand() {
    }

    /** The options, checked before any model is loaded: the model and tokenizer paths, the data file, the window. */
    record Options(ModelOptions model, Path data, int seq, boolean json) {
        static Options parse(Args args) {
            if (args.positional().size() > 1) {
                throw new Args.UsageException("unexpected argument '" + args.positional().get(1) + "' after 'eval'");
            }
            ModelOptions model = ModelOptions.parse(args, "eval");
            String data = args.string("--data", null);
            if (data == null) {
                throw new Args.UsageException("eval needs --data FILE, the text to measure the perplexity on");
            }
            Path file = Path.of(data);
            if (!Files.isRegularFile(file)) {
                throw new Args.UsageException("--data: there is no file " + file);
            }
            return new Options(model, file, args.integer("--seq", 0, 2), args.flag("--json"));
        }
    }

    static int run(Options o, Backend backend, PrintStream out, PrintStream err) throws IOException {
        Path file = o.data();
        boolean json = o.json();
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(backend, pool);
            try (LoadedModel loaded = o.model().load(s, err)) {
                int maxSeq = loaded.model().config().maxSeq();
                int seq = o.seq() == 0 ? Math.min(DEFAULT_SEQ, maxSeq) : o.seq();
                if (seq > maxSeq) {
                    throw new Args.UsageException("--seq " + seq + " exceeds the model's maximum of " + maxSeq + " positions");
                }
                byte[] bytes = Files.readAllBytes(file);
                String text = new String(bytes, StandardCharsets.UTF_8).replace("\r\n", "\n");
                long t0 = System.nanoTime();
                int[] tokens = loaded.tokenizer().encode(text, true);
                double tokenizeSeconds = (System.nanoTime() - t0) * 1e-9;
                if (tokens.length < seq) {
                    throw new IllegalArgumentException("--data " + file + " has " + tokens.length + " tokens, fewer than "
                            + "one window of --seq " + seq);
                }
                boolean terminal = Progress.stderrIsTerminal();
                Perplexity.Result r = Perplexity.evaluate(s, loaded.model(), tokens, seq, 1, (done, total) -> {
                    if (terminal) {
                        err.printf(Locale.ROOT, "\rwindow %d/%d", done, total);
                    }
                });
                if (terminal) {
                    err.print("\r\033[K");
                }
                if (json) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("model", o.model().path().toString());
                    if (o.model().addOn() != null) {
                        m.put(o.model().addOn().option().substring(2), o.model().addOnDir().toString());
                    }
                    m.put("data", file.toString());
                    m.put("bytes", bytes.length);
                    m.put("text_tokens", tokens.length);
                    m.put("seq", seq);
                    m.put("windows", r.windows());
                    m.put("tokens", r.tokens());
                    m.put("predictions", r.predictions());
                    m.put("nll", r.meanNll());
                    m.put("perplexity", r.perplexity());
                    m.put("tokens_per_second", r.tokensPerSecond());
                    m.put("seconds", r.nanos() * 1e-9);
                    m.put("tokenize_seconds", tokenizeSeconds);
                    out.println(Json.write(m));
                } else {
                    out.printf(Locale.ROOT, "data        %s: %d bytes, %d tokens (tokenized in %.2f s)%n", file, bytes.length,
                            tokens.length, tokenizeSeconds);
                    out.printf(Locale.ROOT, "windows     %d x %d tokens = %d tokens, %d predictions%n", r.windows(), seq,
                            r.tokens(), r.predictions());
                    out.printf(Locale.ROOT, "nll         %.6f nats/token%n", r.meanNll());
                    out.printf(Locale.ROOT, "perplexity  %.4f%n", r.perplexity());
                    out.printf(Locale.ROOT, "speed       %.0f tokens/s, %.2f s%n", r.tokensPerSecond(), r.nanos() * 1e-9);
                }
            }
        }
        return 0;
    }
}
