package jtune.engine.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.model.LlamaConfig;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.Tensor;

/**
 * A checkpoint of Karpathy's llama2.c ({@code run.c}), legacy or version 1, as a {@link WeightSource} under Hugging
 * Face's tensor names. All numbers are little-endian.
 *
 * <p>Legacy ("version 0"): a 28-byte header of 7 int32 {@code dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len} (a negative vocab_size means an output head of its own, |vocab_size| wide), then float32
 * arrays in this order: token embedding [V, D], rms_att [L, D], wq [L, D, D], wk [L, KV, D], wv [L, KV, D], wo
 * [L, D, D], rms_ffn [L, D], w1 [L, H, D], w2 [L, D, H], w3 [L, H, D], rms_final [D], the old RoPE tables
 * (seq_len × head_size floats, skipped), and the head [V, D] only when vocab_size was negative.
 *
 * <p>Version 1: a 256-byte header: uint32 magic 0x616b3432 ("24ka"), int32 version 1, the same 7 int32 (vocab
 * positive), uint8 shared_classifier, zero padding; then rms_att, rms_ffn, rms_final, token embedding, wq, wk, wv,
 * wo, w1, w2, w3 (each for all layers) and the head only when it is not shared. Version 2 (Q8_0 quantized, for
 * runq.c) is refused by name.
 *
 * <p>The header is validated (positive sizes, heads a multiple of kv heads, dim a multiple of heads, an even head
 * size) and the file's length must be exactly what it describes, before anything is read. The model is
 * {@code run.c}'s: RMSNorm eps 1e-5, RoPE theta 10000, {@code seq_len} positions, no biases. llama2.c pairs the
 * RoPE dimensions as (2i, 2i+1), Hugging Face as (i, i + head_size/2), so the rows of wq and wk are permuted per
 * head as Hugging Face's conversion does ({@code w.view(heads, hs/2, 2, in).transpose(1, 2).reshape(out, in)}):
 * new row {@code h·hs + j·hs/2 + i} is old row {@code h·hs + 2i + j}. Every tensor is copied out of the mapped file,
 * so the model outlives this object.
 */
public final class Llama2cCheckpoint implements WeightSource, AutoCloseable {
    /** The first four bytes of a versioned file, "24ka" read as a little-endian uint32. */
    public static final int MAGIC = 0x616b3432;
    static final int LEGACY_HEADER = 28;
    static final int V1_HEADER = 256;
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d{1,9})\\.(.+)");

    /** One stored array: its byte offset, the shape of one tensor, once or per layer, and the RoPE permutation. */
    private record Block(long offset, long[] dims, boolean perLayer, int permuteHeads) {
        long elements() {
            return Arrays.stream(dims).reduce(1, Math::multiplyExact);
        }
    }

    private final Path file;
    private final Arena arena;
    private final MemorySegment data;
    private final int version;
    private final LlamaConfig config;
    private final Map<String, Block> blocks;

    private Llama2cCheckpoint(Path file, Arena arena, MemorySegment data, int version, LlamaConfig config,
                              Map<String, Block> blocks) {
        this.file = file;
        this.arena = arena;
        this.data = data;
        this.version = version;
        this.config = config;
        this.blocks = blocks;
    }

    /** Opens, validates and maps {@code file}; the tensors read from it are copies, so close it once the model is built. */
    public static Llama2cCheckpoint open(Path file) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("llama2.c checkpoints are little-endian; this machine is not");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment data = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return parse(file, arena, data);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Llama2cCheckpoint parse(Path file, Arena arena, MemorySegment data) throws FormatException {
        long size = data.byteSize();
        if (size < LEGACY_HEADER) {
            throw new FormatException(file + " is not a llama2.c checkpoint: it holds " + size
                    + " bytes, fewer than the 28 of the smallest header");
        }
        int version = 0;
        long header = LEGACY_HEADER;
        if (readInt(data, 0) == MAGIC) {
            version = readInt(data, 4);
            if (version == 2) {
                throw new FormatException(file + " is a llama2.c version 2 checkpoint (Q8_0 group-quantized, for "
                        + "runq.c), which jtune does not read; it reads the legacy format and version 1");
            }
            if (version != 1) {
                throw new FormatException(file + " is a llama2.c checkpoint of unknown version " + version
                        + "; jtune reads the legacy format and version 1");
            }
            if (size < V1_HEADER) {
                throw new FormatException(file + " is a truncated llama2.c version 1 checkpoint: it holds " + size
                        + " bytes, fewer than the 256 of its header");
            }
            header = V1_HEADER;
        }
        long at = version == 0 ? 0 : 8;
        int dim = readInt(data, at), hidden = readInt(data, at + 4), layers = readInt(data, at + 8);
        int heads = readInt(data, at + 12), kvHeads = readInt(data, at + 16), vocab = readInt(data, at + 20);
        int seq = readInt(data, at + 24);
        String params = String.format(Locale.ROOT, "dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, "
                + "vocab_size %d, seq_len %d", dim, hidden, layers, heads, kvHeads, vocab, seq);
        String kind = version == 0 ? "legacy llama2.c checkpoint" : "llama2.c version 1 checkpoint";
        boolean tied;
        if (version == 0) {
            tied = vocab > 0;
            vocab = vocab == Integer.MIN_VALUE ? 0 : Math.abs(vocab);
        } else {
            byte shared = data.get(ValueLayout.JAVA_BYTE, 36);
            if (shared != 0 && shared != 1) {
                throw new FormatException(file + ": the " + kind + " header's shared_classifier byte is " + shared
                        + "; it must be 0 or 1");
            }
            tied = shared == 1;
        }
        String fault = dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || vocab <= 0 || seq <= 0
                ? "every size must be positive"
                : kvHeads > heads || heads % kvHeads != 0 ? "n_heads must be a multiple of n_kv_heads"
                : dim % heads != 0 ? "dim must be a multiple of n_heads"
                : (dim / heads) % 2 != 0 ? "the head size dim / n_heads must be even for RoPE" : null;
        if (fault != null) {
            throw new FormatException(file + ": the " + kind + " header (" + params + ") is not a valid model: "
                    + fault);
        }
        LlamaConfig config = new LlamaConfig(dim, hidden, layers, heads, kvHeads, dim / heads, vocab, seq, 10000.0,
                null, 1e-5f, tied, false, false);
        Map<String, Block> blocks;
        long end;
        try {
            Layout l = new Layout(header, config);
            if (version == 0) {
                l.add("model.embed_tokens.weight", false, vocab, dim);
                l.add("input_layernorm.weight", true, dim);
                l.attention();
                l.add("post_attention_layernorm.weight", true, dim);
                l.mlp();
                l.add("model.norm.weight", false, dim);
                l.skip((long) seq * (dim / heads));
            } else {
                l.add("input_layernorm.weight", true, dim);
                l.add("post_attention_layernorm.weight", true, dim);
                l.add("model.norm.weight", false, dim);
                l.add("model.embed_tokens.weight", false, vocab, dim);
                l.attention();
                l.mlp();
            }
            if (!tied) {
                l.add("lm_head.weight", false, vocab, dim);
            }
            blocks = l.blocks;
            end = l.offset;
        } catch (ArithmeticException e) {
            throw new FormatException(file + ": the " + kind + " header (" + params + ") describes a model too large "
                    + "to address");
        }
        if (end != size) {
            throw new FormatException(file + " holds " + size + " bytes but a " + kind + " with " + params
                    + (version == 0 ? ", " + (tied ? "shared" : "separate") + " output head" : "") + " holds " + end
                    + "; it is truncated or not such a checkpoint");
        }
        return new Llama2cCheckpoint(file, arena, data, version, config, blocks);
    }

    /** Lays the stored arrays out one after another from the end of the header. */
    private static final class Layout {
        final Map<String, Block> blocks = new LinkedHashMap<>();
        final LlamaConfig c;
        long offset;

        Layout(long header, LlamaConfig c) {
            this.offset = header;
            this.c = c;
        }

        void add(String name, boolean perLayer, long... dims) {
            put(name, new Block(offset, dims, perLayer, 0));
        }

        /** A per-layer projection whose rows are permuted per head for RoPE. */
        void permuted(String name, int heads, long... dims) {
            put(name, new Block(offset, dims, true, heads));
        }

        private void put(String name, Block b) {
            blocks.put(name, b);
            skip(Math.multiplyExact(b.elements(), b.perLayer() ? c.layers() : 1L));
        }

        void attention() {
            permuted("self_attn.q_proj.weight", c.heads(), c.dim(), c.dim());
            permuted("self_attn.k_proj.weight", c.kvHeads(), c.kvDim(), c.dim());
            add("self_attn.v_proj.weight", true, c.kvDim(), c.dim());
            add("self_attn.o_proj.weight", true, c.dim(), c.dim());
        }

        void mlp() {
            add("mlp.gate_proj.weight", true, c.hiddenDim(), c.dim());
            add("mlp.down_proj.weight", true, c.dim(), c.hiddenDim());
            add("mlp.up_proj.weight", true, c.hiddenDim(), c.dim());
        }

        void skip(long floats) {
            offset = Math.addExact(offset, Math.multiplyExact(floats, (long) Float.BYTES));
        }
    }

    private static int readInt(MemorySegment s, long at) {
        return s.get(INT_LE, at);
    }

    public Path file() {
        return file;
    }

    /** 0 for the legacy format, else 1. */
    public int version() {
        return version;
    }

    public LlamaConfig config() {
        return config;
    }

    /** "legacy llama2.c checkpoint" or "llama2.c version 1 checkpoint". */
    public String format() {
        return version == 0 ? "legacy llama2.c checkpoint" : "llama2.c version 1 checkpoint";
    }

    /**
     * A copy of the tensor the Hugging Face name {@code name} stands for, allocated from {@code s} under
     * {@code category}; fails naming the file and the tensor when the checkpoint has no such tensor or its shape
     * differs from {@code dims}.
     */
    @Override
    public Tensor tensor(Session s, String name, Init init, Category category, long... dims) {
        Matcher m = LAYER.matcher(name);
        String key = m.matches() ? m.group(2) : name;
        int layer = m.matches() ? Integer.parseInt(m.group(1)) : 0;
        Block b = blocks.get(key);
        if (b == null || b.perLayer() != m.matches() || layer >= config.layers()) {
            throw new IllegalArgumentException(file + " (" + format() + ") has no tensor '" + name + "'");
        }
        if (!Arrays.equals(b.dims(), dims)) {
            throw new IllegalArgumentException(file + ": tensor '" + name + "' is " + Arrays.toString(b.dims())
                    + " in this " + format() + " but " + Arrays.toString(dims) + " is requested");
        }
        long bytes = b.elements() * Float.BYTES;
        long from = b.offset() + layer * bytes;
        Tensor t = s.f32(name, category, dims);
        MemorySegment dst = t.segment();
        if (b.permuteHeads() == 0) {
            MemorySegment.copy(data, from, dst, t.byteOffset(), bytes);
            return t;
        }
        long headSize = dims[0] / b.permuteHeads(), half = headSize / 2, rowBytes = dims[1] * Float.BYTES;
        for (long h = 0; h < b.permuteHeads(); h++) {
            for (long i = 0; i < half; i++) {
                for (long j = 0; j < 2; j++) {
                    long oldRow = h * headSize + 2 * i + j, newRow = h * headSize + j * half + i;
                    MemorySegment.copy(data, from + oldRow * rowBytes, dst, t.byteOffset() + newRow * rowBytes, rowBytes);
                }
            }
        }
        return t;
    }

    /** Unmaps the file; the tensors already read stay valid. */
    @Override
    public void close() {
        arena.close();
    }
}
