package jtune.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

/**
 * llama2.c's tokenizer ({@code tokenizer.bin}, {@code tok512.bin}), encoding and decoding as llama2.c's
 * {@code run.c} does.
 *
 * <p>File (little-endian): u32 {@code max_token_length}, then for each of the model's {@code vocab_size} tokens
 * (the count is not stored; it comes from the model) f32 score, i32 length, that many raw UTF-8 bytes. Pieces carry
 * a plain space where SentencePiece writes "▁"; ids 0, 1, 2 are {@code <unk>}, BOS and EOS (stored as
 * {@code "\n<s>\n"} and {@code "\n</s>\n"}); ids 3..258 are the byte pieces {@code <0x00>}..{@code <0xFF>}.
 *
 * <p>Encode: a non-empty text starts with the piece {@code " "} (SentencePiece's dummy prefix); each code point
 * becomes the piece of its UTF-8 bytes, or where there is none one piece per byte (id = byte + 3); then, while any
 * adjacent pair concatenates to a piece whose score is above -1e10, the pair whose piece scores highest (the
 * leftmost among equal scores) is replaced by that piece. This is the same result as run.c's quadratic loop, found
 * with a priority queue. A Java string's lone surrogate is encoded as {@code '?'}, as {@link String#getBytes} does.
 *
 * <p>Decode: each id's piece; a piece right after BOS loses one leading space; a piece {@code <0xHH>} is the raw
 * byte HH; with {@code skipSpecial} ids 0, 1, 2 are left out (a skipped BOS still strips the space). A sequence
 * that does not start with BOS keeps its dummy-prefix space, so that decoding a generation one token at a time
 * spaces the words as the whole sequence does.
 */
public final class Llama2cTokenizer implements Tokenizer {
    /** Beginning-of-sequence id. */
    public static final int BOS = 1;
    /** End-of-sequence id. */
    public static final int EOS = 2;
    private static final int UNK = 0;
    /** Byte b's piece is {@code <0xHH>} at id b + BYTE_OFFSET. */
    private static final int BYTE_OFFSET = 3;
    /** run.c starts its search for the best pair at this score; pieces at or below it are never merged into. */
    private static final float NO_MERGE = -1e10f;

    private final byte[][] pieces;
    private final float[] scores;
    /** Piece bytes (as ISO-8859-1 text, one char per byte) to the lowest id with that piece. */
    private final Map<String, Integer> ids;
    /** (left id &lt;&lt; 32 | right id) to the id of their concatenation, where that may be merged into. */
    private final Map<Long, Integer> merges;
    /** Per id, the byte of a {@code <0xHH>} piece, or -1. */
    private final int[] byteValue;
    private final int dummyPrefix;

    private Llama2cTokenizer(byte[][] pieces, float[] scores, String file) throws TokenizerFormatException {
        this.pieces = pieces;
        this.scores = scores;
        this.ids = new HashMap<>();
        for (int id = 0; id < pieces.length; id++) {
            ids.putIfAbsent(key(pieces[id]), id);
        }
        this.byteValue = new int[pieces.length];
        for (int id = 0; id < pieces.length; id++) {
            byteValue[id] = byteOf(pieces[id]);
        }
        for (int b = 0; b < 256; b++) {
            if (byteValue[b + BYTE_OFFSET] != b) {
                throw new TokenizerFormatException(file + ": token " + (b + BYTE_OFFSET) + " is \""
                        + new String(pieces[b + BYTE_OFFSET], StandardCharsets.UTF_8) + "\" where llama2.c's byte"
                        + " fallback needs <0x" + HexFormat.of().withUpperCase().toHexDigits((byte) b) + ">");
            }
        }
        Integer space = ids.get(" ");
        if (space == null) {
            throw new TokenizerFormatException(
                    file + " has no \" \" piece, which llama2.c's encoder needs as the dummy prefix");
        }
        this.dummyPrefix = space;
        this.merges = new HashMap<>();
        for (int id = 0; id < pieces.length; id++) {
            if (!(scores[id] > NO_MERGE) || ids.get(key(pieces[id])) != id) {
                continue;
            }
            byte[] p = pieces[id];
            for (int cut = 1; cut < p.length; cut++) {
                Integer left = ids.get(key(Arrays.copyOfRange(p, 0, cut)));
                Integer right = ids.get(key(Arrays.copyOfRange(p, cut, p.length)));
                if (left != null && right != null) {
                    merges.put(pair(left, right), id);
                }
            }
        }
    }

    /**
     * Reads {@code file} for a model of {@code vocabSize} tokens.
     *
     * @throws TokenizerFormatException if the file is truncated, has a negative length or one above its
     *     max_token_length, holds another number of tokens than {@code vocabSize}, or lacks the byte pieces or the
     *     {@code " "} piece
     */
    public static Llama2cTokenizer load(Path file, int vocabSize) throws IOException {
        if (vocabSize < BYTE_OFFSET + 256) {
            throw new IllegalArgumentException("vocabulary size " + vocabSize + " for " + file
                    + " is below 259, the 3 special and 256 byte tokens of a llama2.c tokenizer");
        }
        ByteBuffer in;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            if (ch.size() > Integer.MAX_VALUE) {
                throw new TokenizerFormatException(
                        file + " is " + ch.size() + " bytes, too large for a llama2.c tokenizer");
            }
            in = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size()).order(ByteOrder.LITTLE_ENDIAN);
        }
        if (in.remaining() < 4) {
            throw new TokenizerFormatException(file + " is " + in.remaining()
                    + " bytes, too short for the 4-byte max_token_length that starts a llama2.c tokenizer");
        }
        int maxTokenLength = in.getInt();
        if (maxTokenLength <= 0) {
            throw new TokenizerFormatException(file + " declares max_token_length "
                    + Integer.toUnsignedString(maxTokenLength) + "; valid values are 1 to 2^31 - 1");
        }
        byte[][] pieces = new byte[vocabSize][];
        float[] scores = new float[vocabSize];
        int count = 0;
        while (in.hasRemaining()) {
            if (in.remaining() < 8) {
                throw new TokenizerFormatException(file + " is truncated: it ends " + in.remaining()
                        + " bytes into the 8-byte score and length of token " + count);
            }
            float score = in.getFloat();
            int length = in.getInt();
            if (length < 0 || length > maxTokenLength) {
                throw new TokenizerFormatException(file + ": token " + count + " declares length " + length
                        + "; valid lengths are 0.." + maxTokenLength + " (the file's max_token_length)");
            }
            if (length > in.remaining()) {
                throw new TokenizerFormatException(file + " is truncated: token " + count + " declares " + length
                        + " bytes but only " + in.remaining() + " remain");
            }
            if (count < vocabSize) {
                scores[count] = score + 0.0f;
                pieces[count] = new byte[length];
                in.get(pieces[count]);
            } else {
                in.position(in.position() + length);
            }
            count++;
        }
        if (count != vocabSize) {
            throw new TokenizerFormatException(file + " holds " + count + " tokens but the model's vocabulary has "
                    + vocabSize + "; use the tokenizer that was made for this model");
        }
        return new Llama2cTokenizer(pieces, scores, file.toString());
    }

    @Override
    public int[] encode(String text, boolean addSpecial) {
        int[] tokens = initialTokens(text);
        int n = tokens.length;
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        LongHeap queue = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            offer(queue, tokens, i, i + 1);
        }
        int alive = n;
        while (!queue.isEmpty()) {
            long entry = queue.pollMin();
            int left = (int) entry;
            int right = next[left];
            if (tokens[left] < 0 || right < 0) {
                continue;
            }
            Integer merged = merges.get(pair(tokens[left], tokens[right]));
            if (merged == null || (int) (entry >> 32) != ~sortable(scores[merged])) {
                continue;
            }
            tokens[left] = merged;
            tokens[right] = -1;
            next[left] = next[right];
            if (next[right] >= 0) {
                prev[next[right]] = left;
                offer(queue, tokens, left, next[left]);
            }
            if (prev[left] >= 0) {
                offer(queue, tokens, prev[left], left);
            }
            alive--;
        }
        int[] out = new int[alive + (addSpecial ? 1 : 0)];
        int k = 0;
        if (addSpecial) {
            out[k++] = BOS;
        }
        for (int t : tokens) {
            if (t >= 0) {
                out[k++] = t;
            }
        }
        return out;
    }

    /** The dummy prefix, then per code point its piece or its bytes' pieces. */
    private int[] initialTokens(String text) {
        if (text.isEmpty()) {
            return new int[0];
        }
        int[] tokens = new int[1 + text.getBytes(StandardCharsets.UTF_8).length];
        int n = 0;
        tokens[n++] = dummyPrefix;
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            int end = i + Character.charCount(cp);
            byte[] utf8 = text.substring(i, end).getBytes(StandardCharsets.UTF_8);
            Integer id = ids.get(key(utf8));
            if (id != null) {
                tokens[n++] = id;
            } else {
                for (byte b : utf8) {
                    tokens[n++] = (b & 0xFF) + BYTE_OFFSET;
                }
            }
            i = end;
        }
        return Arrays.copyOf(tokens, n);
    }

    /**
     * Queues the pair (left, right) if it merges: highest score first, then leftmost. Nodes keep their original
     * index, so index order is sequence order. A queued entry is checked again when it comes out.
     */
    private void offer(LongHeap queue, int[] tokens, int left, int right) {
        Integer merged = merges.get(pair(tokens[left], tokens[right]));
        if (merged != null) {
            queue.add(((long) ~sortable(scores[merged]) << 32) | left);
        }
    }

    /** An int whose signed order is the order of the (non-NaN) floats. */
    private static int sortable(float f) {
        int bits = Float.floatToIntBits(f);
        return bits ^ ((bits >> 31) & 0x7FFFFFFF);
    }

    @Override
    public byte[] decodeBytes(int[] tokenIds, boolean skipSpecial) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int previous = -1;
        for (int id : tokenIds) {
            if (id < 0 || id >= pieces.length) {
                throw new IllegalArgumentException("token id " + id + " is outside this llama2.c tokenizer's ids 0.."
                        + (pieces.length - 1));
            }
            if (!(skipSpecial && isSpecial(id))) {
                if (byteValue[id] >= 0) {
                    out.write(byteValue[id]);
                } else {
                    byte[] p = pieces[id];
                    int from = previous == BOS && p.length > 0 && p[0] == ' ' ? 1 : 0;
                    out.write(p, from, p.length - from);
                }
            }
            previous = id;
        }
        return out.toByteArray();
    }

    private static boolean isSpecial(int id) {
        return id == UNK || id == BOS || id == EOS;
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    @Override
    public int bos() {
        return BOS;
    }

    @Override
    public int eos() {
        return EOS;
    }

    /** The byte HH of a piece {@code <0xHH>} (hex digits of either case, as run.c's sscanf reads them), else -1. */
    private static int byteOf(byte[] p) {
        if (p.length != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') {
            return -1;
        }
        int hi = Character.digit(p[3], 16);
        int lo = Character.digit(p[4], 16);
        return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
    }

    private static String key(byte[] bytes) {
        return new String(bytes, StandardCharsets.ISO_8859_1);
    }

    private static long pair(int left, int right) {
        return ((long) left << 32) | right;
    }

    /** A binary min-heap of longs (the merge queue, without boxing). */
    private static final class LongHeap {
        private long[] heap;
        private int size;

        LongHeap(int capacity) {
            heap = new long[Math.max(capacity, 1)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void add(long v) {
            if (size == heap.length) {
                heap = Arrays.copyOf(heap, 2 * size);
            }
            int i = size++;
            while (i > 0 && heap[(i - 1) / 2] > v) {
                heap[i] = heap[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            heap[i] = v;
        }

        long pollMin() {
            long min = heap[0];
            long last = heap[--size];
            int i = 0;
            while (2 * i + 1 < size) {
                int child = 2 * i + 1;
                if (child + 1 < size && heap[child + 1] < heap[child]) {
                    child++;
                }
                if (heap[child] >= last) {
                    break;
                }
                heap[i] = heap[child];
                i = child;
            }
            heap[i] = last;
            return min;
        }
    }
}
