package jtune.engine.io;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.tensor.Tensor;

/**
 * Writes a safetensors file from tensors and string metadata. The file appears whole or not at all: it is
 * written to a temporary file in the same directory, forced to the device, and renamed over the target in
 * one atomic step, so a crash or Ctrl-C never leaves a half-written file under the target's name.
 * The header is padded with spaces so that the data area starts at a multiple of 8 bytes.
 */
public final class SafeTensorsWriter {
    private static final int CHUNK = 1 << 26;

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** Adds a contiguous tensor under {@code name}; names are unique. The tensor is read when {@link #write} runs. */
    public SafeTensorsWriter add(String name, Tensor t) {
        if (name.equals(SafeTensors.METADATA_KEY)) {
            throw new IllegalArgumentException("'" + SafeTensors.METADATA_KEY + "' is reserved and cannot name a tensor");
        }
        if (tensors.containsKey(name)) {
            throw new IllegalArgumentException("tensor '" + name + "' is added twice to one safetensors file");
        }
        if (!t.isContiguous()) {
            throw new IllegalArgumentException("tensor '" + name + "' " + t.shape() + " is a strided view; "
                    + "only contiguous tensors can be written");
        }
        tensors.put(name, t);
        return this;
    }

    /** Adds one metadata entry (stored under "__metadata__"). */
    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    /** The entries {@link #write} lays out, in order, with their byte ranges. */
    public List<SafeTensors.Entry> entries() {
        List<SafeTensors.Entry> list = new ArrayList<>();
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            long bytes = t.dtype().bytesFor(t.size());
            list.add(new SafeTensors.Entry(e.getKey(), SafeTensors.Type.of(t.dtype()), t.shape().toArray(), offset,
                    offset + bytes));
            offset += bytes;
        }
        return list;
    }

    /** Writes the file atomically (temporary file, force, rename); an existing file is replaced. */
    public void write(Path file) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("safetensors files are little-endian; this machine is not");
        }
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + abs.getFileName() + "." + ProcessHandle.current().pid() + "." + System.nanoTime()
                + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                writeAll(ch, header());
                for (Tensor t : tensors.values()) {
                    long bytes = t.dtype().bytesFor(t.size());
                    MemorySegment src = t.segment().asSlice(t.byteOffset(), bytes);
                    for (long at = 0; at < bytes; at += CHUNK) {
                        writeAll(ch, src.asSlice(at, Math.min(CHUNK, bytes - at)).asByteBuffer());
                    }
                }
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        forceDirectory(dir);
    }

    /** The length prefix and the JSON header, padded with spaces to a multiple of 8 bytes. */
    private ByteBuffer header() {
        Map<String, Object> h = new LinkedHashMap<>();
        if (!metadata.isEmpty()) {
            h.put(SafeTensors.METADATA_KEY, metadata);
        }
        for (SafeTensors.Entry e : entries()) {
            h.put(e.name(), e.header());
        }
        byte[] json = Json.write(h).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer buf = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(padded).put(json);
        while (buf.hasRemaining()) {
            buf.put((byte) ' ');
        }
        return buf.flip();
    }

    private static void writeAll(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    /**
     * Makes the rename itself durable by forcing the directory. Linux allows it; where the platform refuses to
     * open a directory the file is still whole, only the rename may be lost in a power cut, so that is ignored.
     */
    private static void forceDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // not supported on this platform: see above
        }
    }
}
