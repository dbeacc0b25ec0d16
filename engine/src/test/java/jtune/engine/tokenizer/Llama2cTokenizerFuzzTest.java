package jtune.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded mutations of llama2.c's tok512.bin (stories260K's tokenizer): cut short, bits flipped, and its
 * max_token_length, token lengths and scores replaced by hostile values (negative, zero, huge, NaN, infinite). Every
 * case must load into a tokenizer that encodes a text into ids of the vocabulary and decodes them, or fail with one
 * sentence (an {@link IOException} without a line break, naming the file); any other exception fails the test with
 * the case.
 */
class Llama2cTokenizerFuzzTest {
    private static final Path TOK512 = Path.of("../../shared/data/models/stories260K/tok512.bin");
    private static final int VOCAB = 512;
    private static final String TEXT = "Once upon a time, Lily saw a big dog. \"Hi!\" she said. 123 ÿ€😀\t\n  end";
    private static final int[] LENGTHS = {-1, 0, 1, 2, 7, 8, 255, 65536, Integer.MAX_VALUE, Integer.MIN_VALUE};
    private static final float[] SCORES = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f,
        Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, 1e30f, -1e30f};

    @TempDir
    Path tmp;
    private int loaded;
    private int refused;

    @Test
    void everyMutationLoadsAndTokenizesOrFailsWithOneSentence() throws IOException {
        Assumptions.assumeTrue(Files.isRegularFile(TOK512), "tok512.bin is not in ../../shared/data; skipped");
        byte[] valid = Files.readAllBytes(TOK512);
        List<Integer> starts = tokenStarts(valid);
        assertThat(starts).hasSize(VOCAB);
        SplittableRandom rng = new SplittableRandom(20261129);
        check("the valid file", valid, VOCAB);
        for (int vocab : new int[]{259, 511, 513, 1000}) {
            check("the valid file for a vocabulary of " + vocab, valid, vocab);
        }
        for (int n = 0; n < 300; n++) {
            int cut = n < 40 ? n : rng.nextInt(valid.length);
            check("cut to " + cut + " bytes", Arrays.copyOf(valid, cut), VOCAB);
        }
        for (int n = 0; n < 600; n++) {
            byte[] m = valid.clone();
            int flips = 1 + rng.nextInt(3);
            for (int f = 0; f < flips; f++) {
                m[rng.nextInt(m.length)] ^= (byte) (1 << rng.nextInt(8));
            }
            check("bit flips " + n, m, VOCAB);
        }
        for (int max : LENGTHS) {
            byte[] m = valid.clone();
            ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putInt(0, max);
            check("max_token_length " + max, m, VOCAB);
        }
        for (int n = 0; n < 200; n++) {
            int token = rng.nextInt(VOCAB);
            byte[] m = valid.clone();
            ByteBuffer b = ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN);
            String what;
            if (rng.nextBoolean()) {
                int length = LENGTHS[rng.nextInt(LENGTHS.length)];
                b.putInt(starts.get(token) + 4, length);
                what = "token " + token + " of length " + length;
            } else {
                float score = SCORES[rng.nextInt(SCORES.length)];
                b.putFloat(starts.get(token), score);
                what = "token " + token + " of score " + score;
            }
            check(what, m, VOCAB);
        }
        byte[] allNaN = valid.clone();
        for (int start : starts) {
            ByteBuffer.wrap(allNaN).order(ByteOrder.LITTLE_ENDIAN).putFloat(start, Float.NaN);
        }
        check("every score NaN", allNaN, VOCAB);
        assertThat(loaded).as("some mutations still load").isGreaterThan(100);
        assertThat(refused).as("refusals").isGreaterThan(300);
    }

    /** The offset of each token's score in a valid file. */
    private static List<Integer> tokenStarts(byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        List<Integer> starts = new ArrayList<>();
        int at = 4;
        while (at < file.length) {
            starts.add(at);
            at += 8 + b.getInt(at + 4);
        }
        return starts;
    }

    private void check(String what, byte[] content, int vocab) throws IOException {
        Path file = tmp.resolve("tok.bin");
        Files.write(file, content);
        try {
            Llama2cTokenizer t = Llama2cTokenizer.load(file, vocab);
            int[] ids = t.encode(TEXT, true);
            for (int id : ids) {
                assertThat(id).as("%s: an id of the vocabulary", what).isBetween(0, vocab - 1);
            }
            t.decodeBytes(ids, false);
            t.decode(ids, true);
            t.decode(new int[]{0, 1, 2, 3, 258, 259, vocab - 1}, false);
            loaded++;
        } catch (IOException e) {
            String message = String.valueOf(e.getMessage());
            if (message.contains("\n") || message.isBlank() || !message.contains(file.toString())) {
                fail(what + ": not one sentence naming the file: " + message, e);
            }
            refused++;
        } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
            fail(what + ": " + e, e);
        }
    }
}
