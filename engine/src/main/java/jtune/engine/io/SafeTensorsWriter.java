package jtune.engine.io;

import java.io.IOException;
import java.lang.foreign.Arena;
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
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.Tensor;

/**
 * Writes a safetensors file, or a sharded model folder ({@link #writeModel}), from tensors and string
 * metadata. Each file appears whole or not at all: it is
 * written to a temporary file in the same directory, forced to the device, and renamed over the target in
 * one atomic step, so a crash or Ctrl-C never leaves a half-written file under the target's name.
 * The header is padded with spaces so that the data area starts at a multiple of 8 bytes, and the data area
 * holds the widest element types first, so that every tensor's bytes are aligned to its element size.
 */
public final class SafeTensorsWriter {
    private static final int CHUNK = 1 << 26;
    private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5,}-of-\\d{5,}\\.safetensors");

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

    /** The entries {@link #write} lays out, in the order added, with their byte ranges. */
    public List<SafeTensors.Entry> entries() {
        return layout(List.copyOf(tensors.keySet()));
    }

    /**
     * The entries of the tensors {@code names}, in that order, with their byte ranges: the data area holds the
     * widest element types first (in the order added within a type width), so that every tensor starts at a
     * multiple of its element size and can be mapped without a copy.
     */
    private List<SafeTensors.Entry> layout(List<String> names) {
        List<String> byWidth = new ArrayList<>(names);
        byWidth.sort(Comparator.comparingInt((String n) -> tensors.get(n).dtype().bits()).reversed());
        Map<String, Long> begin = new HashMap<>();
        long offset = 0;
        for (String name : byWidth) {
            begin.put(name, offset);
            offset += bytes(tensors.get(name));
        }
        List<SafeTensors.Entry> list = new ArrayList<>();
        for (String name : names) {
            Tensor t = tensors.get(name);
            long b = begin.get(name);
            list.add(new SafeTensors.Entry(name, SafeTensors.Type.of(t.dtype()), t.shape().toArray(), b, b + bytes(t)));
        }
        return list;
    }

    private static long bytes(Tensor t) {
        return t.dtype().bytesFor(t.size());
    }

    /** Writes the file atomically (temporary file, force, rename); an existing file is replaced. */
    public void write(Path file) throws IOException {
        write(file, List.copyOf(tensors.keySet()));
    }

    /**
     * Writes the tensors as a Hugging Face model folder {@code dir}, following {@code save_pretrained}'s
     * conventions. The tensors, in the order added, fill shards of at most {@code maxShardBytes} bytes of
     * tensor data each (a larger tensor gets a shard of its own). One shard is written as
     * {@value SafeTensors#MODEL_FILE}; several as {@code model-00001-of-0000N.safetensors} and so on plus
     * {@value SafeTensors#INDEX_FILE}: {@code {"metadata": {"total_size": bytes of all tensors}, "weight_map":
     * {name: shard file}}} with names sorted. Every shard carries this writer's metadata. Each file is written
     * atomically, the index after its shards; then the files of an earlier model in {@code dir} that the new
     * one does not use are deleted (the other file form and shards named {@code model-NNNNN-of-NNNNN.safetensors}),
     * so that {@link SafeTensorsModel#open} finds the old model or the new one, never a mix, unless a crash hits
     * while shards of the same names are being replaced. Returns the safetensors files written, in order.
     */
    public List<Path> writeModel(Path dir, long maxShardBytes) throws IOException {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("the largest shard size must be positive, got " + maxShardBytes);
        }
        List<List<String>> shards = new ArrayList<>();
        List<String> current = new ArrayList<>();
        long size = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            long b = bytes(e.getValue());
            if (!current.isEmpty() && size + b > maxShardBytes) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(e.getKey());
            size += b;
        }
        shards.add(current);
        Path abs = dir.toAbsolutePath();
        List<Path> written = new ArrayList<>();
        if (shards.size() == 1) {
            written.add(abs.resolve(SafeTensors.MODEL_FILE));
            write(written.getFirst(), shards.getFirst());
            Files.deleteIfExists(abs.resolve(SafeTensors.INDEX_FILE));
        } else {
            Map<String, String> weightMap = new TreeMap<>();
            long total = 0;
            for (int i = 0; i < shards.size(); i++) {
                String name = String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", i + 1, shards.size());
                written.add(abs.resolve(name));
                write(written.getLast(), shards.get(i));
                for (String t : shards.get(i)) {
                    weightMap.put(t, name);
                    total += bytes(tensors.get(t));
                }
            }
            Map<String, Object> index = new LinkedHashMap<>();
            index.put("metadata", Map.of("total_size", total));
            index.put("weight_map", weightMap);
            byte[] json = (Json.write(index) + "\n").getBytes(StandardCharsets.UTF_8);
            atomically(abs.resolve(SafeTensors.INDEX_FILE), ch -> writeAll(ch, ByteBuffer.wrap(json)));
            Files.deleteIfExists(abs.resolve(SafeTensors.MODEL_FILE));
        }
        deleteStaleShards(abs, written);
        return written;
    }

    private static void deleteStaleShards(Path dir, List<Path> keep) throws IOException {
        List<Path> stale;
        try (var files = Files.list(dir)) {
            stale = files.filter(f -> SHARD_NAME.matcher(f.getFileName().toString()).matches() && !keep.contains(f))
                    .toList();
        }
        for (Path f : stale) {
            Files.deleteIfExists(f);
        }
    }

    /** One safetensors file of the tensors {@code names}, written atomically. */
    private void write(Path file, List<String> names) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("safetensors files are little-endian; this machine is not");
        }
        List<SafeTensors.Entry> entries = layout(names);
        atomically(file, ch -> {
            writeAll(ch, header(entries));
            List<SafeTensors.Entry> inFileOrder = new ArrayList<>(entries);
            inFileOrder.sort(Comparator.comparingLong(SafeTensors.Entry::begin));
            for (SafeTensors.Entry e : inFileOrder) {
                Tensor t = tensors.get(e.name());
                long bytes = e.byteSize();
                // A tensor on a device comes to the host one at a time, so a checkpoint never holds a second copy of
                // the whole model in host memory.
                try (Arena staging = Arena.ofConfined()) {
                    MemorySegment src;
                    if (t.device().kind() == Device.Kind.CPU) {
                        src = t.segment().asSlice(t.byteOffset(), bytes);
                    } else {
                        src = staging.allocate(Math.max(1, bytes), 8).asSlice(0, bytes);
                        t.copyBytesTo(src);
                    }
                    for (long at = 0; at < bytes; at += CHUNK) {
                        writeAll(ch, src.asSlice(at, Math.min(CHUNK, bytes - at)).asByteBuffer());
                    }
                }
            }
        });
    }

    /** What goes into a file being written. */
    @FunctionalInterface
    private interface Content {
        void writeTo(FileChannel ch) throws IOException;
    }

    /**
     * Writes {@code file} whole or not at all: into a temporary file in the same folder, forced to the
     * device, renamed over the target in one atomic step, and the folder forced so the rename lasts.
     */
    private static void atomically(Path file, Content content) throws IOException {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + abs.getFileName() + "." + ProcessHandle.current().pid() + "." + System.nanoTime()
                + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                content.writeTo(ch);
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        forceDirectory(dir);
    }

    /** The length prefix and the JSON header of {@code entries}, padded with spaces to a multiple of 8 bytes. */
    private ByteBuffer header(List<SafeTensors.Entry> entries) {
        Map<String, Object> h = new LinkedHashMap<>();
        if (!metadata.isEmpty()) {
            h.put(SafeTensors.METADATA_KEY, metadata);
        }
        for (SafeTensors.Entry e : entries) {
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
