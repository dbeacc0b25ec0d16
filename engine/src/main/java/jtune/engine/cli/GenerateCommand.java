package jtune.engine.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;
import jtune.engine.backend.Backend;
import jtune.engine.io.LoadedModel;
import jtune.engine.model.Generator;
import jtune.engine.model.Sampling;
import jtune.engine.nn.Session;
import jtune.engine.tensor.MemoryLedger;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tokenizer.Tokenizer;

/**
 * {@code jtune generate}: continues a prompt with a {@link Generator} (key/value cache) and streams the text to
 * stdout as raw UTF-8 bytes while it is drawn: the prompt as the tokenizer decodes it, then after each token the
 * bytes that decoding the whole sequence so far adds (raw bytes, so a character split over byte tokens is written
 * byte by byte and whole once its last byte has come), then a newline. The prompt is encoded with the tokenizer's
 * special tokens (Llama's BOS), so an empty prompt starts from BOS alone. Generation stops after {@code --steps} new
 * tokens, at the end-of-sequence or a new beginning-of-sequence token (as llama2.c's run.c does), or when the model's
 * positions are full. One line on stderr then gives the prefill and decode speeds (the first run of a JVM includes
 * the JIT's compilation of the kernels, most visibly in the prefill of a short prompt).
 */
final class GenerateCommand {
    static final Set<String> VALUED = ModelOptions.valuedWith("--prompt", "--steps", "--temperature",
            "--top-p", "--top-k", "--seed");

    private GenerateCommand() {
    }

    /** The options, checked before any model is loaded. */
    record Options(ModelOptions model, String prompt, int steps, Sampling sampling, long seed) {
        static Options parse(Args args) {
            if (args.positional().size() > 1) {
                throw new Args.UsageException("unexpected argument '" + args.positional().get(1) + "' after 'generate'");
            }
            ModelOptions model = ModelOptions.parse(args, "generate");
            Sampling sampling = new Sampling((float) args.number("--temperature", 1.0, 0, 1e6),
                    (float) args.number("--top-p", 0.9, Double.MIN_VALUE, 1), args.integer("--top-k", 0, 0));
            long seed = args.flag("--seed") ? args.integer("--seed", 0, 0) : System.nanoTime() & Integer.MAX_VALUE;
            return new Options(model, args.string("--prompt", ""), args.integer("--steps", 256, 1), sampling, seed);
        }
    }

    static int run(Options o, Backend backend, PrintStream out, PrintStream err) throws IOException {
        int steps = o.steps();
        try (MemoryPool pool = new MemoryPool(new MemoryLedger())) {
            Session s = new Session(backend, pool);
            try (LoadedModel loaded = o.model().load(s, err);
                 Generator generator = new Generator(s, loaded.model())) {
                Tokenizer tok = loaded.tokenizer();
                int[] ids = tok.encode(o.prompt(), true);
                if (ids.length == 0) {
                    throw new Args.UsageException("--prompt is empty and this tokenizer has no beginning-of-sequence token "
                            + "to start from; give a prompt");
                }
                int maxSeq = loaded.model().config().maxSeq();
                if (ids.length > maxSeq) {
                    throw new Args.UsageException("--prompt is " + ids.length + " tokens long, more than the model's "
                            + maxSeq + " positions");
                }
                int vocab = loaded.model().config().vocab();
                for (int id : ids) {
                    if (id >= vocab) {
                        throw new IllegalArgumentException("the tokenizer gave id " + id + " for the prompt, outside the "
                                + "model's vocabulary of " + vocab + "; use the model's own tokenizer");
                    }
                }
                TextStream stream = new TextStream(tok, ids, out);
                int[] stops = Arrays.stream(new int[]{tok.eos(), tok.bos()}).filter(id -> id >= 0).toArray();
                Generator.Result r = generator.generate(ids, steps, o.sampling(), new SplittableRandom(o.seed()), stops,
                        stream::add);
                out.write('\n');
                out.flush();
                err.printf(Locale.ROOT, "jtune: prefill %d tokens in %.3f s (%.1f tokens/s); decode %d tokens in %.3f s "
                                + "(%.1f tokens/s); stopped: %s; seed %d%n", r.promptTokens(), r.prefillNanos() * 1e-9,
                        r.prefillTokensPerSecond(), r.tokens().length, r.decodeNanos() * 1e-9, r.decodeTokensPerSecond(),
                        switch (r.stop()) {
                            case STEPS -> steps + " steps";
                            case STOP_TOKEN -> "end- or beginning-of-sequence token";
                            case LENGTH -> "the model's " + maxSeq + " positions are full";
                        }, o.seed());
            }
        }
        return 0;
    }

    /** Writes the decoded text of a growing sequence, each byte once. */
    private static final class TextStream {
        private final Tokenizer tokenizer;
        private final PrintStream out;
        private int[] ids;
        private int count;
        private int written;

        TextStream(Tokenizer tokenizer, int[] prompt, PrintStream out) {
            this.tokenizer = tokenizer;
            this.out = out;
            this.ids = Arrays.copyOf(prompt, prompt.length + 64);
            this.count = prompt.length;
            flush();
        }

        void add(int id) {
            if (count == ids.length) {
                ids = Arrays.copyOf(ids, 2 * count);
            }
            ids[count++] = id;
            flush();
        }

        private void flush() {
            byte[] text = tokenizer.decodeBytes(Arrays.copyOf(ids, count), true);
            if (text.length > written) {
                out.write(text, written, text.length - written);
                out.flush();
                written = text.length;
            }
        }
    }
}
