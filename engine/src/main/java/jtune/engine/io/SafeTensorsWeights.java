package jtune.engine.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import jtune.engine.io.SafeTensors.Entry;
import jtune.engine.model.WeightSource;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Tensor;

/**
 * The tensors of a {@link SafeTensorsModel} as a {@link WeightSource}, in f32. An F32 tensor is a view of the
 * mapped file, without a copy, when it is frozen, and a copy when it is to be trained (the mapping is read-only); a
 * BF16 or F16 tensor is converted into a new f32 tensor (exactly: both widen without rounding). Other types are
 * refused. A missing tensor or one of another shape fails with one sentence naming the file and the tensor; a
 * fault reading the files is an {@link UncheckedIOException} around it.
 * {@link #used()} tells which tensors were asked for, so that the caller can name those left over.
 */
final class SafeTensorsWeights implements WeightSource {
    private final SafeTensorsModel files;
    private final Set<String> used = new LinkedHashSet<>();
    private final List<Tensor> made = new ArrayList<>();

    SafeTensorsWeights(SafeTensorsModel files) {
        this.files = files;
    }

    @Override
    public Tensor tensor(Session s, String name, Init init, Category category, long... dims) {
        try {
            Tensor t = read(s, name, category, dims);
            used.add(name);
            made.add(t);
            return t;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private Tensor read(Session s, String name, Category category, long[] dims) throws IOException {
        if (!files.contains(name)) {
            throw new IllegalArgumentException(files.source() + " has no tensor '" + name + "', which this model needs");
        }
        Entry e = files.entry(name);
        if (!Arrays.equals(e.dims(), dims)) {
            throw new IllegalArgumentException(files.file(name) + ": tensor '" + name + "' has shape "
                    + Arrays.toString(e.dims()) + " but this model needs " + Arrays.toString(dims));
        }
        DType type = e.type().dtype();
        if (type != DType.F32 && type != DType.BF16 && type != DType.F16) {
            throw new IllegalArgumentException(files.file(name) + ": tensor '" + name + "' is " + e.type()
                    + "; jtune reads model weights in F32, BF16 or F16");
        }
        if (type == DType.F32 && category != Category.TRAINABLE_PARAMETERS) {
            return files.tensor(name, s.pool(), category);
        }
        Tensor out = s.f32(name, category, dims);
        try {
            if (type == DType.F32) {
                files.read(name, out);
            } else {
                try (Tensor narrow = files.tensor(name, s.pool(), Category.WORKSPACE)) {
                    s.backend().convert(narrow, out);
                }
            }
            return out;
        } catch (IOException | RuntimeException fault) {
            out.close();
            throw fault;
        }
    }

    /** The names asked for so far, in order. */
    Set<String> used() {
        return used;
    }

    /** Closes every tensor handed out: for a model that could not be built whole. */
    void closeAll() {
        made.forEach(Tensor::close);
    }
}
