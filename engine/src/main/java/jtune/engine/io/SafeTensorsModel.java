package jtune.engine.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jtune.engine.io.SafeTensors.Entry;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.MemoryPool;
import jtune.engine.tensor.Tensor;

/**
 * The tensors of a model in safetensors form, one file or several shards, each mapped once by a
 * {@link SafeTensorsReader}. {@link #open} accepts:
 * <ul>
 * <li>a folder holding {@value SafeTensors#INDEX_FILE}, the Hugging Face index of a sharded model:
 * {@code {"metadata": {...}, "weight_map": {tensor name: shard file name}}}. The index is validated whole:
 * well-formed UTF-8 JSON, a non-empty {@code weight_map} of strings, an object {@code metadata} if present
 * (its content is not used; other top-level keys are ignored), every shard a plain file name (no separator,
 * not "." or "..") of a file in the folder, every tensor present in the shard it is mapped to, and every
 * tensor of every shard mapped to that shard (so no name lives in two shards and none is left out);</li>
 * <li>else a folder holding {@value SafeTensors#MODEL_FILE};</li>
 * <li>a safetensors file.</li>
 * </ul>
 * Faults are one {@link FormatException} sentence naming the file, the tensor where there is one, and the
 * fault. Tensor names are in the order of the index's {@code weight_map}, or of the single file's header.
 */
public final class SafeTensorsModel implements AutoCloseable {
    private final Path source;
    private final List<SafeTensorsReader> files;
    private final Map<String, SafeTensorsReader> byName;

    private SafeTensorsModel(Path source, List<SafeTensorsReader> files, Map<String, SafeTensorsReader> byName) {
        this.source = source;
        this.files = files;
        this.byName = byName;
    }

    /** Opens the model in folder or file {@code path} (see the class comment); it stays mapped until closed. */
    public static SafeTensorsModel open(Path path) throws IOException {
        if (!Files.isDirectory(path)) {
            return single(path);
        }
        Path index = path.resolve(SafeTensors.INDEX_FILE);
        if (Files.exists(index)) {
            return sharded(path, index);
        }
        Path file = path.resolve(SafeTensors.MODEL_FILE);
        if (Files.exists(file)) {
            return single(file);
        }
        throw new FormatException(path + " holds no safetensors model: it has neither " + SafeTensors.INDEX_FILE
                + " nor " + SafeTensors.MODEL_FILE);
    }

    private static SafeTensorsModel single(Path file) throws IOException {
        SafeTensorsReader r = SafeTensorsReader.open(file);
        Map<String, SafeTensorsReader> byName = new LinkedHashMap<>();
        for (Entry e : r.entries()) {
            byName.put(e.name(), r);
        }
        return new SafeTensorsModel(file, List.of(r), Collections.unmodifiableMap(byName));
    }

    private static SafeTensorsModel sharded(Path dir, Path index) throws IOException {
        Map<String, String> weightMap = weightMap(index);
        Map<String, SafeTensorsReader> shards = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, String> m : weightMap.entrySet()) {
                String shard = m.getValue();
                if (!shards.containsKey(shard)) {
                    Path file = dir.resolve(shard);
                    if (!Files.isRegularFile(file)) {
                        throw new FormatException(index + ": tensor '" + m.getKey() + "' is mapped to shard '" + shard
                                + "', which is not a file in " + dir);
                    }
                    shards.put(shard, SafeTensorsReader.open(file));
                }
            }
            Map<String, SafeTensorsReader> byName = new LinkedHashMap<>();
            for (Map.Entry<String, String> m : weightMap.entrySet()) {
                SafeTensorsReader r = shards.get(m.getValue());
                if (!r.contains(m.getKey())) {
                    throw new FormatException(index + ": tensor '" + m.getKey() + "' is mapped to shard '"
                            + m.getValue() + "', which does not hold it");
                }
                byName.put(m.getKey(), r);
            }
            for (Map.Entry<String, SafeTensorsReader> s : shards.entrySet()) {
                for (Entry e : s.getValue().entries()) {
                    String mapped = weightMap.get(e.name());
                    if (mapped == null) {
                        throw new FormatException(index + ": tensor '" + e.name() + "' of shard '" + s.getKey()
                                + "' is missing from the weight_map");
                    }
                    if (!mapped.equals(s.getKey())) {
                        throw new FormatException(index + ": tensor '" + e.name() + "' is in shard '" + s.getKey()
                                + "' and in shard '" + mapped + "'; a tensor must live in one shard only");
                    }
                }
            }
            return new SafeTensorsModel(index, List.copyOf(shards.values()), Collections.unmodifiableMap(byName));
        } catch (IOException | RuntimeException e) {
            shards.values().forEach(SafeTensorsReader::close);
            throw e;
        }
    }

    /** The validated weight_map of an index file, in file order. */
    private static Map<String, String> weightMap(Path index) throws IOException {
        byte[] bytes;
        try (InputStream in = Files.newInputStream(index)) {
            bytes = in.readNBytes((int) SafeTensors.MAX_HEADER_BYTES + 1);
        }
        if (bytes.length > SafeTensors.MAX_HEADER_BYTES) {
            throw new FormatException(index + " is larger than " + SafeTensors.MAX_HEADER_BYTES
                    + " bytes, too large for a safetensors index");
        }
        Map<String, Object> root;
        try {
            root = Json.parseObject(StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString());
        } catch (CharacterCodingException e) {
            throw new FormatException(index + " is not valid UTF-8");
        } catch (Json.JsonException e) {
            throw new FormatException(index + " is not valid JSON (" + e.getMessage() + ")");
        }
        if (root.containsKey("metadata") && !(root.get("metadata") instanceof Map)) {
            throw new FormatException(index + ": \"metadata\" must be an object, got " + Json.typeName(root.get("metadata")));
        }
        if (!(root.get("weight_map") instanceof Map<?, ?> map) || map.isEmpty()) {
            throw new FormatException(index + " needs \"weight_map\", a non-empty object from tensor names to shard "
                    + "file names");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> m : map.entrySet()) {
            String name = (String) m.getKey();
            if (!(m.getValue() instanceof String shard)) {
                throw new FormatException(index + ": tensor '" + name + "' must map to a shard file name, got "
                        + Json.typeName(m.getValue()));
            }
            if (!plainFileName(shard)) {
                throw new FormatException(index + ": tensor '" + name + "' maps to \"" + shard
                        + "\", which is not a plain file name inside the model folder");
            }
            out.put(name, shard);
        }
        return out;
    }

    private static boolean plainFileName(String s) {
        if (s.isEmpty() || s.equals(".") || s.equals("..") || s.contains("/") || s.contains("\\") || s.indexOf('\0') >= 0) {
            return false;
        }
        try {
            return Path.of(s).getNameCount() == 1;
        } catch (InvalidPathException e) {
            return false;
        }
    }

    /** The file opened: the index of a sharded model, else the single safetensors file. */
    public Path source() {
        return source;
    }

    /** The tensor names, in order (see the class comment). */
    public List<String> names() {
        return new ArrayList<>(byName.keySet());
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** The entry of tensor {@code name}; its byte range is within the data area of its own file. */
    public Entry entry(String name) throws FormatException {
        return reader(name).entry(name);
    }

    /** The file that holds tensor {@code name}. */
    public Path file(String name) throws FormatException {
        return reader(name).file();
    }

    /** Tensor {@code name} as a view of the mapped file, counted in the ledger: see {@link SafeTensorsReader#tensor}. */
    public Tensor tensor(String name, MemoryPool pool, Category category) throws FormatException {
        return reader(name).tensor(name, pool, category);
    }

    /** Copies tensor {@code name} into {@code dst}, converting between float types: see {@link SafeTensorsReader#read}. */
    public void read(String name, Tensor dst) throws IOException {
        reader(name).read(name, dst);
    }

    private SafeTensorsReader reader(String name) throws FormatException {
        SafeTensorsReader r = byName.get(name);
        if (r == null) {
            throw new FormatException(source + " has no tensor '" + name + "'");
        }
        return r;
    }

    /** Closes every file; the mapped tensors still open are closed with them. Idempotent. */
    @Override
    public void close() {
        files.forEach(SafeTensorsReader::close);
    }
}
