package jtune.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE model of a {@code tokenizer.json}: encodes one word (a piece the pre-tokenizer cut) into ids.
 *
 * <p>The word starts as one symbol per character (code point): its vocabulary id; or, where the character is not
 * in the vocabulary, with {@code byte_fallback} one {@code <0xHH>} symbol per UTF-8 byte, else the {@code unk_token}
 * (consecutive unknown characters share one with {@code fuse_unk}), else nothing. Then, repeatedly, of all adjacent
 * pairs that a merge names, the one whose merge comes first in {@code merges} (lowest rank; the leftmost on a tie)
 * becomes the single symbol of the merged string, until no pair has a merge. With {@code ignore_merges}, a word
 * that is itself in the vocabulary is that one id. Pairs are found in a hash table keyed by the two ids packed in
 * a long; words of up to {@value #CACHE_WORD_LENGTH} characters are cached.
 *
 * <p>Without a pre-tokenizer (Llama 2) the word is a whole text. When no merge joins a left part that does not end
 * in SentencePiece's "▁" to a right part that starts with it (the reader checks this for each file), no symbol
 * can ever span such a place, so the word is cut before every "▁" that follows another character and the parts
 * are encoded (and cached) alone, which gives the same ids.
 */
final class Bpe {
    static final int CACHE_WORD_LENGTH = 64;
    static final char MARKER = '\u2581';
    private static final int CACHE_ENTRIES = 100_000;

    private final Map<String, Integer> vocab;
    /** Id of each one-character token of the Basic Multilingual Plane, -1 where none, so symbols skip the map. */
    private final int[] charIds = new int[1 << 16];
    private final PairTable merges;
    /** Id of {@code <0xHH>} for each byte, or null without byte fallback. */
    private final int[] byteIds;
    private final int unk;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final boolean cutAtMarkers;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param merges for merge {@code r} (its rank): {@code merges[3r]} and {@code merges[3r+1]} are the ids of the
     *               pair, {@code merges[3r+2]} the id of the merged string; a pair named twice keeps its last rank
     * @param mergesCrossMarkers whether a merge joins a left part not ending in "▁" to a right part starting with it
     */
    Bpe(Map<String, Integer> vocab, int[] merges, int[] byteIds, int unk, boolean fuseUnk, boolean ignoreMerges,
        boolean mergesCrossMarkers) {
        this.vocab = vocab;
        Arrays.fill(charIds, -1);
        vocab.forEach((token, id) -> {
            if (token.length() == 1) {
                charIds[token.charAt(0)] = id;
            }
        });
        this.merges = new PairTable(merges.length / 3);
        for (int r = 0; r < merges.length / 3; r++) {
            this.merges.put(merges[3 * r], merges[3 * r + 1], r, merges[3 * r + 2]);
        }
        this.byteIds = byteIds;
        this.unk = unk;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        this.cutAtMarkers = !mergesCrossMarkers && !ignoreMerges && vocab.containsKey(String.valueOf(MARKER));
    }

    /** The ids of {@code word}; the array may be shared, so callers must not change it. */
    int[] encode(String word) {
        int cut = cutAtMarkers ? nextCut(word, 1) : -1;
        if (cut < 0) {
            return encodePart(word);
        }
        IntBuffer out = new IntBuffer(word.length() / 3 + 4);
        int start = 0;
        while (cut >= 0) {
            out.addAll(encodePart(word.substring(start, cut)));
            start = cut;
            cut = nextCut(word, cut + 1);
        }
        out.addAll(encodePart(word.substring(start)));
        return out.toArray();
    }

    /** The first index at or after {@code from} (at least 1) of a "▁" that follows another character, or -1. */
    private static int nextCut(String word, int from) {
        for (int i = word.indexOf(MARKER, from); i >= 0; i = word.indexOf(MARKER, i + 1)) {
            if (word.charAt(i - 1) != MARKER) {
                return i;
            }
        }
        return -1;
    }

    private int[] encodePart(String word) {
        int[] cached = cache.get(word);
        if (cached != null) {
            return cached;
        }
        int[] ids = ignoreMerges && vocab.containsKey(word) ? new int[] {vocab.get(word)} : merge(symbols(word));
        if (word.length() <= CACHE_WORD_LENGTH && cache.size() < CACHE_ENTRIES) {
            cache.put(word, ids);
        }
        return ids;
    }

    private IntBuffer symbols(String word) {
        IntBuffer s = new IntBuffer(word.length());
        boolean pendingUnk = false;
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            int n = Character.charCount(cp);
            Integer id = n == 1 ? (charIds[cp] >= 0 ? Integer.valueOf(charIds[cp]) : null)
                    : vocab.get(word.substring(i, i + n));
            i += n;
            if (id != null) {
                s.add(id);
                pendingUnk = false;
            } else if (byteIds != null) {
                for (byte b : Character.toString(cp).getBytes(StandardCharsets.UTF_8)) {
                    s.add(byteIds[b & 0xFF]);
                }
                pendingUnk = false;
            } else if (unk >= 0 && !(fuseUnk && pendingUnk)) {
                s.add(unk);
                pendingUnk = true;
            }
        }
        return s;
    }

    private int[] merge(IntBuffer symbols) {
        int n = symbols.size();
        int[] id = symbols.array();
        if (n < 2) {
            return Arrays.copyOf(id, n);
        }
        int[] prev = new int[n];
        int[] next = new int[n];
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            if (i + 1 < n) {
                offer(heap, id, i, i + 1);
            }
        }
        int alive = n;
        while (!heap.isEmpty()) {
            long top = heap.poll();
            int rank = (int) (top >>> 32);
            int pos = (int) top;
            int right = next[pos];
            if (id[pos] < 0 || right < 0) {
                continue;
            }
            long m = merges.get(id[pos], id[right]);
            if (m == PairTable.MISSING || (int) (m >>> 32) != rank) {
                continue;
            }
            id[pos] = (int) m;
            id[right] = -1;
            next[pos] = next[right];
            if (next[pos] >= 0) {
                prev[next[pos]] = pos;
                offer(heap, id, pos, next[pos]);
            }
            if (prev[pos] >= 0) {
                offer(heap, id, prev[pos], pos);
            }
            alive--;
        }
        int[] out = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) {
            out[k++] = id[i];
        }
        return out;
    }

    private void offer(LongHeap heap, int[] id, int left, int right) {
        long m = merges.get(id[left], id[right]);
        if (m != PairTable.MISSING) {
            heap.add((m >>> 32) << 32 | left);
        }
    }

    /** Open-addressing map from a pair of ids to (rank, merged id), packed as {@code rank << 32 | id}. */
    private static final class PairTable {
        static final long MISSING = -1;
        private final long[] keys;
        private final long[] values;
        private final int mask;
        private final int shift;

        PairTable(int expected) {
            int capacity = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
            keys = new long[capacity];
            values = new long[capacity];
            mask = capacity - 1;
            shift = 64 - Integer.numberOfTrailingZeros(capacity);
            Arrays.fill(keys, -1);
        }

        void put(int a, int b, int rank, int merged) {
            long key = (long) a << 32 | b;
            int slot = slot(key);
            while (keys[slot] != -1 && keys[slot] != key) {
                slot = (slot + 1) & mask;
            }
            keys[slot] = key;
            values[slot] = (long) rank << 32 | merged;
        }

        long get(int a, int b) {
            long key = (long) a << 32 | b;
            for (int slot = slot(key); ; slot = (slot + 1) & mask) {
                long k = keys[slot];
                if (k == key) {
                    return values[slot];
                }
                if (k == -1) {
                    return MISSING;
                }
            }
        }

        /** Fibonacci hashing: the top bits of the key times 2^64 / golden ratio. */
        private int slot(long key) {
            return (int) (key * 0x9E3779B97F4A7C15L >>> shift);
        }
    }

    /** Binary min-heap of longs. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void add(long v) {
            if (size == a.length) {
                a = Arrays.copyOf(a, size * 2);
            }
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= v) {
                    break;
                }
                a[i] = a[parent];
                i = parent;
            }
            a[i] = v;
        }

        long poll() {
            long top = a[0];
            long v = a[--size];
            int i = 0;
            while (true) {
                int child = 2 * i + 1;
                if (child >= size) {
                    break;
                }
                if (child + 1 < size && a[child + 1] < a[child]) {
                    child++;
                }
                if (a[child] >= v) {
                    break;
                }
                a[i] = a[child];
                i = child;
            }
            a[i] = v;
            return top;
        }
    }
}
