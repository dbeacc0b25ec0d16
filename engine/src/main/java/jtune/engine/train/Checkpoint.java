package jtune.engine.train;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32C;
import jtune.engine.io.Json;
import jtune.engine.io.LlamaConfigJson;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensorsReader;
import jtune.engine.io.SafeTensorsWriter;
import jtune.engine.model.CausalLM;
import jtune.engine.model.LlamaConfig;
import jtune.engine.nn.Parameter;
import jtune.engine.optim.Optimizer;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.Tensor;

/**
 * A training checkpoint: one safetensors file holding every trainable parameter of the model under its name (a frozen
 * one, such as the base of an adapter, comes back from wherever the model was loaded or generated), the optimizer's
 * state tensors under their own names ("optimizer.exp_avg.…"), and in "__metadata__" the step,
 * the optimizer's name and step count, the data position (generator state, epoch, index), the elapsed
 * training time, the model config as JSON, a CRC-32C of the tensors' bytes ("tensors_crc32c", in the order of the
 * model's parameters, then the optimizer's state; a checkpoint written before it existed is read without it) and
 * whatever else the caller adds (the run's options). It is written atomically ({@link SafeTensorsWriter}): a run
 * stopped at any moment leaves the previous checkpoint or the new one, never a broken file; a file damaged or edited
 * afterwards is refused rather than resumed with other numbers.
 */
public final class Checkpoint {
    /** The checkpoint's file name inside a run folder. */
    public static final String FILE = "checkpoint.safetensors";
    static final String FORMAT = "jtune-checkpoint-1";
    /** The metadata key of the count of frozen parameters left out of a checkpoint. */
    public static final String FROZEN = "frozen_parameters";
    /** The metadata key of the CRC-32C of the tensors. */
    static final String CRC = "tensors_crc32c";

    private Checkpoint() {
    }

    /** What a checkpoint records besides tensors; {@code extra} is the caller's own metadata. */
    public record State(long step, BatchStream.Position data, double elapsedSeconds, Map<String, String> extra) {
        public State {
            extra = Map.copyOf(extra);
        }
    }

    public static void save(Path file, CausalLM model, Optimizer optimizer, State state) throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter();
        CRC32C crc = new CRC32C();
        int frozen = 0;
        for (Parameter p : model.parameters()) {
            if (p.trainable()) {
                w.add(p.name(), p.value());
                update(crc, p.value());
            } else {
                frozen++;
            }
        }
        for (Map.Entry<String, Tensor> e : optimizer.state().entrySet()) {
            w.add(e.getKey(), e.getValue());
            update(crc, e.getValue());
        }
        Map<String, String> meta = new LinkedHashMap<>(state.extra());
        meta.put("format", FORMAT);
        meta.put("step", Long.toString(state.step()));
        meta.put("optimizer", optimizer.name());
        meta.put("optimizer_steps", Long.toString(optimizer.steps()));
        meta.put("data_rng_state", Long.toString(state.data().rngState()));
        meta.put("data_epoch", Long.toString(state.data().epoch()));
        meta.put("data_index", Integer.toString(state.data().index()));
        meta.put("elapsed_s", Double.toString(state.elapsedSeconds()));
        meta.put("config", LlamaConfigJson.write(model.config()));
        meta.put(FROZEN, Integer.toString(frozen));
        meta.put(CRC, Long.toHexString(crc.getValue()));
        meta.forEach(w::metadata);
        w.write(file);
    }

    /** The metadata of a checkpoint, validated as a jtune checkpoint, without reading its tensors. */
    public static Map<String, String> metadata(Path file) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            checkFormat(r);
            return r.metadata();
        }
    }

    /** The model config a checkpoint was written for. */
    public static LlamaConfig config(Map<String, String> metadata, Path file) {
        return LlamaConfigJson.read(metadata.get("config"), file + " (metadata \"config\")");
    }

    /**
     * Loads the trainable parameters and the optimizer state into {@code model} and {@code optimizer} (which must have been built
     * for the same config and optimizer) and returns the recorded state.
     */
    public static State load(Path file, CausalLM model, Optimizer optimizer) throws IOException {
        try (SafeTensorsReader r = SafeTensorsReader.open(file)) {
            checkFormat(r);
            Map<String, String> meta = r.metadata();
            LlamaConfig saved = config(meta, file);
            if (!saved.equals(model.config())) {
                throw new SafeTensors.FormatException(file + " was written for the model " + saved
                        + ", not for " + model.config());
            }
            if (!optimizer.name().equals(meta.get("optimizer"))) {
                throw new SafeTensors.FormatException(file + " holds the state of optimizer '" + meta.get("optimizer")
                        + "' but this run uses '" + optimizer.name() + "'");
            }
            Set<String> expected = new HashSet<>();
            CRC32C crc = new CRC32C();
            for (Parameter p : model.parameters()) {
                if (p.trainable()) {
                    r.read(p.name(), p.value());
                    update(crc, p.value());
                    expected.add(p.name());
                }
            }
            for (Map.Entry<String, Tensor> e : optimizer.state().entrySet()) {
                r.read(e.getKey(), e.getValue());
                update(crc, e.getValue());
                expected.add(e.getKey());
            }
            for (SafeTensors.Entry e : r.entries()) {
                if (!expected.contains(e.name())) {
                    throw new SafeTensors.FormatException(file + " holds tensor '" + e.name()
                            + "' that this model and optimizer do not have");
                }
            }
            if (meta.containsKey(CRC) && !meta.get(CRC).equals(Long.toHexString(crc.getValue()))) {
                throw new SafeTensors.FormatException(file + ": its tensors do not match the CRC-32C recorded when it "
                        + "was written (" + Json.write(meta.get(CRC)) + ", now " + Long.toHexString(crc.getValue())
                        + "), so the file was damaged or changed since; resume from an intact copy or start anew");
            }
            long step = number(meta, "step", file, 0, Long.MAX_VALUE);
            optimizer.restoreSteps(number(meta, "optimizer_steps", file, 0, Long.MAX_VALUE - 1));
            BatchStream.Position data = new BatchStream.Position(number(meta, "data_rng_state", file),
                    number(meta, "data_epoch", file, 0, Long.MAX_VALUE),
                    (int) number(meta, "data_index", file, 0, Integer.MAX_VALUE));
            double elapsed;
            try {
                elapsed = Double.parseDouble(meta.getOrDefault("elapsed_s", "0"));
            } catch (NumberFormatException e) {
                elapsed = Double.NaN;
            }
            if (!(elapsed >= 0 && elapsed < Double.POSITIVE_INFINITY)) {
                throw new SafeTensors.FormatException(file + ": metadata \"elapsed_s\" must be a number of seconds of at "
                        + "least 0, got " + Json.write(meta.get("elapsed_s")));
            }
            Map<String, String> extra = new LinkedHashMap<>(meta);
            for (String k : new String[]{"format", "step", "optimizer", "optimizer_steps", "data_rng_state",
                    "data_epoch", "data_index", "elapsed_s", "config", FROZEN, CRC}) {
                extra.remove(k);
            }
            return new State(step, data, elapsed, extra);
        }
    }

    private static void checkFormat(SafeTensorsReader r) throws SafeTensors.FormatException {
        String f = r.metadata().get("format");
        if (!FORMAT.equals(f)) {
            throw new SafeTensors.FormatException(r.file() + " is not a jtune checkpoint (its metadata \"format\" is "
                    + (f == null ? "missing" : "\"" + f + "\"") + ", expected \"" + FORMAT + "\")");
        }
        if (r.metadata().get("config") == null) {
            throw new SafeTensors.FormatException(r.file() + " is a jtune checkpoint without its model config");
        }
    }

    /** Adds {@code t}'s bytes, as the checkpoint stores them, to {@code crc} (a device tensor's through a host copy). */
    private static void update(CRC32C crc, Tensor t) {
        long bytes = t.dtype().bytesFor(t.size());
        if (t.device().kind() == Device.Kind.CPU) {
            crc.update(t.segment().asSlice(t.byteOffset(), bytes).asByteBuffer());
            return;
        }
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment host = staging.allocate(Math.max(1, bytes), 8).asSlice(0, bytes);
            t.copyBytesTo(host);
            crc.update(host.asByteBuffer());
        }
    }

    private static long number(Map<String, String> meta, String key, Path file) throws SafeTensors.FormatException {
        return number(meta, key, file, Long.MIN_VALUE, Long.MAX_VALUE);
    }

    /** Metadata {@code key} as a whole number in [min, max], or one sentence naming the file and the key. */
    private static long number(Map<String, String> meta, String key, Path file, long min, long max)
            throws SafeTensors.FormatException {
        String v = meta.get(key);
        try {
            long n = Long.parseLong(v);
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // named below
        }
        throw new SafeTensors.FormatException(file + ": metadata \"" + key + "\" must be a whole number"
                + (min == Long.MIN_VALUE ? "" : max == Long.MAX_VALUE ? " of at least " + min
                : " in [" + min + ", " + max + "]") + ", got " + (v == null ? "nothing" : Json.write(v)));
    }
}
