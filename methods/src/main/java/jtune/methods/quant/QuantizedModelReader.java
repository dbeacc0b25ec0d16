package jtune.methods.quant;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import jtune.engine.io.QuantizedLayersProvider;
import jtune.engine.io.SafeTensors;
import jtune.engine.io.SafeTensors.Entry;
import jtune.engine.io.SafeTensors.FormatException;
import jtune.engine.io.SafeTensorsModel;
import jtune.engine.nn.LinearWeight;
import jtune.engine.nn.Parameter;
import jtune.engine.nn.Session;
import jtune.engine.tensor.Category;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.QuantFormat;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/**
 * Reads the quantized layers of a folder in {@link QuantizedModelFile}'s format for the engine's model loader
 * (a {@link QuantizedLayersProvider} for {@code "quant_method": "jtune"}). Each quantized layer becomes a frozen
 * {@link QuantizedWeight} over a {@link QuantizedMatrix} named {@code L.weight} whose tensors are the file's, mapped
 * without a copy and counted as frozen weights (their names are the file's: {@code L.qcodes}, {@code L.scales}, ...),
 * or a {@link LorcWeight} over one when the config has a LoRC rank (its factors f32 or 8-bit, as lorc_bits says).
 * Every tensor is checked against the declared format before it is used: a missing one, or one of another type or shape, fails with one sentence naming the file
 * and the tensor. A layer stored both quantized and dense is refused when the folder is opened.
 */
public final class QuantizedModelReader implements QuantizedLayersProvider {
    @Override
    public String quantMethod() {
        return QuantizedModelFile.QUANT_METHOD;
    }

    @Override
    public Layers open(Path configFile, Map<String, Object> quantizationConfig, SafeTensorsModel files)
            throws IOException {
        QuantizedModelFile.Spec spec = QuantizedModelFile.parse(configFile, quantizationConfig);
        Set<String> quantized = new LinkedHashSet<>();
        for (String name : files.names()) {
            String layer = name.substring(0, Math.max(0, name.length() - QuantizedModelFile.CODES.length()));
            if (name.endsWith(QuantizedModelFile.CODES) && !layer.contains(QuantizedModelFile.LORC)) {
                if (files.contains(layer + ".weight")) {
                    throw new FormatException(files.file(name) + " holds layer '" + layer + "' twice, quantized as '"
                            + name + "' and dense as '" + layer + ".weight'; a layer is stored one way");
                }
                quantized.add(layer);
            }
        }
        if (quantized.isEmpty()) {
            throw new FormatException(files.source() + " holds no quantized layer (no tensor named '*"
                    + QuantizedModelFile.CODES + "'), though " + configFile + " declares " + spec.describe());
        }
        return new FileLayers(spec, files, quantized);
    }

    /** The quantized layers of one opened folder. */
    private static final class FileLayers implements Layers {
        private final QuantizedModelFile.Spec spec;
        private final SafeTensorsModel files;
        private final Set<String> quantized;
        private final Set<String> used = new LinkedHashSet<>();

        FileLayers(QuantizedModelFile.Spec spec, SafeTensorsModel files, Set<String> quantized) {
            this.spec = spec;
            this.files = files;
            this.quantized = quantized;
        }

        @Override
        public boolean isQuantized(String layer) {
            return quantized.contains(layer);
        }

        @Override
        public Set<String> used() {
            return used;
        }

        @Override
        public String description() {
            return spec.describe();
        }

        @Override
        public LinearWeight weight(Session s, String layer, long out, long in) throws IOException {
            QuantFormat f = spec.format();
            int cols = Math.toIntExact(in);
            long groups = f.groups(cols);
            String what = f + " of a (" + out + ", " + in + ") layer";
            List<Tensor> made = new ArrayList<>();
            try {
                Tensor codes = take(s, made, layer + QuantizedModelFile.CODES, DType.U8, what, out, f.rowBytes(cols));
                QuantizedMatrix m;
                if (f.kind() == QuantFormat.Kind.INT) {
                    Tensor scales = take(s, made, layer + QuantizedModelFile.SCALES, f.scaleType(), what, out, groups);
                    Tensor zeros = f.hasZeros()
                            ? take(s, made, layer + QuantizedModelFile.ZEROS, f.scaleType(), what, out, groups) : null;
                    absent(layer + QuantizedModelFile.ZEROS, !f.hasZeros(), "a symmetric format stores no zero points");
                    m = QuantizedMatrix.of(layer + ".weight", f, out, in, codes, scales, zeros);
                } else if (!f.doubleQuant()) {
                    Tensor absmax = take(s, made, layer + QuantizedModelFile.ABSMAX, DType.F32, what, out, groups);
                    m = QuantizedMatrix.of(layer + ".weight", f, out, in, codes, absmax, null);
                } else {
                    Tensor ac = take(s, made, layer + QuantizedModelFile.ABSMAX_CODES, DType.U8, what, out, groups);
                    long blocks = (out * groups + QuantFormat.DOUBLE_QUANT_BLOCK - 1) / QuantFormat.DOUBLE_QUANT_BLOCK;
                    Tensor as = take(s, made, layer + QuantizedModelFile.ABSMAX_SCALES, DType.F32, what, blocks);
                    Tensor ao = take(s, made, layer + QuantizedModelFile.ABSMAX_OFFSET, DType.F32, what, 1);
                    m = QuantizedMatrix.ofDoubleQuant(layer + ".weight", f, out, in, codes, ac, as, ao);
                }
                QuantizedWeight base = new QuantizedWeight(m);
                String nu = layer + QuantizedModelFile.LORC_U, nut = layer + QuantizedModelFile.LORC_UT;
                String nv = layer + QuantizedModelFile.LORC_V;
                if (spec.lorcRank() == 0) {
                    for (String name : List.of(nu, nut + QuantizedModelFile.CODES, nv, nv + QuantizedModelFile.CODES)) {
                        absent(name, true, "its config declares no LoRC (lorc_rank 0)");
                    }
                    return base;
                }
                long r = Math.min(spec.lorcRank(), Math.min(out, in));
                String lorc = "LoRC of rank " + spec.lorcRank() + " (" + spec.lorcBits() + "-bit factors) on a (" + out
                        + ", " + in + ") layer";
                LorcWeight.Factor u, v;
                if (spec.lorcBits() == 32) {
                    String why = "its config declares f32 LoRC factors (lorc_bits 32, or absent)";
                    absent(nut + QuantizedModelFile.CODES, true, why);
                    absent(nv + QuantizedModelFile.CODES, true, why);
                    u = dense(s, made, nu, lorc, out, r);
                    v = dense(s, made, nv, lorc, r, in);
                } else {
                    String why = "its config declares 8-bit LoRC factors (lorc_bits 8), stored as codes and scales";
                    absent(nu, true, why);
                    absent(nv, true, why);
                    u = LorcWeight.Factor.of(codes(s, made, nut, lorc, r, out), true);
                    v = LorcWeight.Factor.of(codes(s, made, nv, lorc, r, in), false);
                }
                return new LorcWeight(base, u, v);
            } catch (IOException | RuntimeException e) {
                made.forEach(Tensor::close);
                throw e;
            }
        }

        /** The f32 LoRC factor {@code name} (rows, cols). */
        private LorcWeight.Factor dense(Session s, List<Tensor> made, String name, String what, long rows, long cols)
                throws IOException {
            Tensor t = take(s, made, name, DType.F32, what, rows, cols);
            return LorcWeight.Factor.of(new Parameter(t.name(), t, false, false));
        }

        /** The 8-bit LoRC matrix {@code name} (rows, cols): its codes and scales. */
        private QuantizedMatrix codes(Session s, List<Tensor> made, String name, String what, long rows, long cols)
                throws IOException {
            QuantFormat f = LorcWeight.FACTOR_FORMAT;
            Tensor codes = take(s, made, name + QuantizedModelFile.CODES, DType.U8, what, rows,
                    f.rowBytes(Math.toIntExact(cols)));
            Tensor scales = take(s, made, name + QuantizedModelFile.SCALES, DType.F32, what, rows, 1);
            return QuantizedMatrix.of(name, f, rows, cols, codes, scales, null);
        }

        /** Tensor {@code name} of the files, checked to be {@code type} {@code dims}, as a frozen view. */
        private Tensor take(Session s, List<Tensor> made, String name, DType type, String what, long... dims)
                throws IOException {
            if (!files.contains(name)) {
                throw new FormatException(files.source() + " has no tensor '" + name + "', which " + what + " needs");
            }
            Entry e = files.entry(name);
            if (e.type().dtype() != type || !Arrays.equals(e.dims(), dims)) {
                throw new FormatException(files.file(name) + ": tensor '" + name + "' is " + e.type() + " "
                        + Arrays.toString(e.dims()) + ", but " + what + " needs " + SafeTensors.Type.of(type) + " "
                        + Arrays.toString(dims));
            }
            Tensor t = files.tensor(name, s.pool(), Category.FROZEN_WEIGHTS);
            made.add(t);
            used.add(name);
            return t;
        }

        /** Fails when the files hold {@code name} though {@code mustBeAbsent}, saying {@code why} not. */
        private void absent(String name, boolean mustBeAbsent, String why) throws FormatException {
            if (mustBeAbsent && files.contains(name)) {
                throw new FormatException(files.file(name) + " holds tensor '" + name + "', but " + why);
            }
        }
    }
}
