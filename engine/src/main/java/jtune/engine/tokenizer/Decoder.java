package jtune.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The {@code decoder} of a {@code tokenizer.json}: turns the token strings of a sequence back into text. As in the
 * Hugging Face library, each step maps the list of pieces (at first one per token, as UTF-8) to a new list and the
 * result is their concatenation; unlike it, pieces stay bytes, so that a byte token's half character survives.
 */
sealed interface Decoder {
    List<byte[]> apply(List<byte[]> pieces);

    /** {@code "Sequence"}: each decoder in turn. */
    record Sequence(List<Decoder> steps) implements Decoder {
        @Override
        public List<byte[]> apply(List<byte[]> pieces) {
            for (Decoder d : steps) {
                pieces = d.apply(pieces);
            }
            return pieces;
        }
    }

    /** {@code "Replace"} with a string pattern: in each piece, every occurrence of {@code from} becomes {@code to}. */
    record Replace(String from, String to) implements Decoder {
        @Override
        public List<byte[]> apply(List<byte[]> pieces) {
            byte[] f = from.getBytes(StandardCharsets.UTF_8);
            byte[] t = to.getBytes(StandardCharsets.UTF_8);
            List<byte[]> out = new ArrayList<>(pieces.size());
            for (byte[] p : pieces) {
                out.add(replace(p, f, t));
            }
            return out;
        }

        private static byte[] replace(byte[] p, byte[] f, byte[] t) {
            ByteArrayOutputStream out = null;
            int last = 0;
            for (int i = 0; i + f.length <= p.length; ) {
                if (Arrays.equals(p, i, i + f.length, f, 0, f.length)) {
                    if (out == null) {
                        out = new ByteArrayOutputStream(p.length + 8);
                    }
                    out.write(p, last, i - last);
                    out.writeBytes(t);
                    i += f.length;
                    last = i;
                } else {
                    i++;
                }
            }
            if (out == null) {
                return p;
            }
            out.write(p, last, p.length - last);
            return out.toByteArray();
        }
    }

    /** {@code "ByteFallback"}: each run of pieces of the form {@code <0xHH>} becomes one piece of those bytes. */
    record ByteFallback() implements Decoder {
        @Override
        public List<byte[]> apply(List<byte[]> pieces) {
            List<byte[]> out = new ArrayList<>(pieces.size());
            ByteArrayOutputStream run = new ByteArrayOutputStream();
            for (byte[] p : pieces) {
                int b = byteOf(p);
                if (b >= 0) {
                    run.write(b);
                    continue;
                }
                if (run.size() > 0) {
                    out.add(run.toByteArray());
                    run.reset();
                }
                out.add(p);
            }
            if (run.size() > 0) {
                out.add(run.toByteArray());
            }
            return out;
        }

        /** The byte HH of a piece {@code <0xHH>}, else -1. */
        private static int byteOf(byte[] p) {
            if (p.length != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') {
                return -1;
            }
            int hi = Character.digit(p[3], 16);
            int lo = Character.digit(p[4], 16);
            return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
        }
    }

    /** {@code "Fuse"}: all pieces become one. */
    record Fuse() implements Decoder {
        @Override
        public List<byte[]> apply(List<byte[]> pieces) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            pieces.forEach(out::writeBytes);
            return List.of(out.toByteArray());
        }
    }

    /** {@code "Strip"}: removes up to {@code start} leading and {@code stop} trailing {@code content} from each piece. */
    record Strip(String content, int start, int stop) implements Decoder {
        @Override
        public List<byte[]> apply(List<byte[]> pieces) {
            byte[] c = content.getBytes(StandardCharsets.UTF_8);
            List<byte[]> out = new ArrayList<>(pieces.size());
            for (byte[] p : pieces) {
                int from = 0;
                for (int n = 0; n < start && from + c.length <= p.length
                        && Arrays.equals(p, from, from + c.length, c, 0, c.length); n++) {
                    from += c.length;
                }
                int to = p.length;
                for (int n = 0; n < stop && to - c.length >= from
                        && Arrays.equals(p, to - c.length, to, c, 0, c.length); n++) {
                    to -= c.length;
                }
                out.add(Arrays.copyOfRange(p, from, to));
            }
            return out;
        }
    }

    /**
     * {@code "ByteLevel"}: every piece's characters back to the bytes they stand for ({@link ByteLevel}); a piece
     * with a character that stands for no byte (an added token may have one) is kept as its UTF-8. Printable ASCII
     * stands for itself, so "&lt;|endoftext|&gt;" comes out as written either way. The result is one piece.
     */
    record ByteLevelBytes() implements Decoder {
        @Override
        public List<byte[]> apply(List<byte[]> pieces) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (byte[] p : pieces) {
                byte[] bytes = ByteLevel.decode(new String(p, StandardCharsets.UTF_8));
                out.writeBytes(bytes != null ? bytes : p);
            }
            return List.of(out.toByteArray());
        }
    }
}
