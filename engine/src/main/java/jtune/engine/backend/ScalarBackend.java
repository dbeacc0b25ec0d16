package jtune.engine.backend;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jtune.engine.tensor.DType;
import jtune.engine.tensor.Device;
import jtune.engine.tensor.QuantizedMatrix;
import jtune.engine.tensor.Tensor;

/**
 * The reference backend: plain Java, one thread, one element at a time, sums in double. It is the oracle
 * every other backend is tested against, so it is written for clarity, not speed; each method is the
 * formula of its {@link Backend} documentation and nothing more.
 */
public final class ScalarBackend implements Backend {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;

    @Override
    public String name() {
        return "scalar";
    }

    @Override
    public Device device() {
        return Device.CPU;
    }

    @Override
    public int vectorBits() {
        return 32;
    }

    @Override
    public int threads() {
        return 1;
    }

    private static float get(Tensor t, long i) {
        return t.segment().getAtIndex(F, t.offset() + i);
    }

    private static void set(Tensor t, long i, float v) {
        t.segment().setAtIndex(F, t.offset() + i, v);
    }

    @Override
    public void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
        Checks.Gemm g = Checks.Gemm.of(a, transA, b, transB, c);
        MemorySegment sa = a.segment(), sb = b.segment(), sc = c.segment();
        for (int p = 0; p < g.batch(); p++) {
            long oa = a.offset() + p * g.strideA(), ob = b.offset() + p * g.strideB(), oc = c.offset() + p * g.strideC();
            for (int i = 0; i < g.m(); i++) {
                for (int j = 0; j < g.n(); j++) {
                    double acc = 0;
                    for (int l = 0; l < g.k(); l++) {
                        float x = sa.getAtIndex(F, oa + (transA ? l * g.ldA() + i : i * g.ldA() + l));
                        float y = sb.getAtIndex(F, ob + (transB ? j * g.ldB() + l : l * g.ldB() + j));
                        acc += (double) x * y;
                    }
                    long ci = oc + i * g.ldC() + j;
                    double prior = beta == 0 ? 0 : (double) beta * sc.getAtIndex(F, ci);
                    sc.setAtIndex(F, ci, (float) (alpha * acc + prior));
                }
            }
        }
    }

    /** Row i of dequant(W), as {@link QuantizedMatrix#weight} gives it. */
    private static float[] dequantRow(QuantizedMatrix w, int i) {
        float[] row = new float[w.cols()];
        for (int j = 0; j < row.length; j++) {
            row[j] = w.weight(i, j);
        }
        return row;
    }

    @Override
    public void quantMatmul(Tensor x, QuantizedMatrix w, Tensor y, float alpha, float beta) {
        int n = Checks.quantProduct("quantMatmul", x, w, y, true);
        for (int i = 0; i < w.rows(); i++) {
            float[] wi = dequantRow(w, i);
            for (int t = 0; t < n; t++) {
                double acc = 0;
                for (int j = 0; j < wi.length; j++) {
                    acc += (double) get(x, (long) t * wi.length + j) * wi[j];
                }
                long e = (long) t * w.rows() + i;
                double prior = beta == 0 ? 0 : (double) beta * get(y, e);
                set(y, e, (float) (alpha * acc + prior));
            }
        }
    }

    @Override
    public void quantMatmulInputGrad(Tensor dy, QuantizedMatrix w, Tensor dx, float alpha, float beta) {
        int n = Checks.quantProduct("quantMatmulInputGrad", dy, w, dx, false);
        int cols = w.cols();
        double[] acc = new double[n * cols];
        for (int i = 0; i < w.rows(); i++) {
            float[] wi = dequantRow(w, i);
            for (int t = 0; t < n; t++) {
                double d = get(dy, (long) t * w.rows() + i);
                for (int j = 0; j < cols; j++) {
                    acc[t * cols + j] += d * wi[j];
                }
            }
        }
        for (int e = 0; e < acc.length; e++) {
            double prior = beta == 0 ? 0 : (double) beta * get(dx, e);
            set(dx, e, (float) (alpha * acc[e] + prior));
        }
    }

    @Override
    public void dequantize(QuantizedMatrix w, Tensor out) {
        Checks.dequantize("dequantize", w, out);
        for (int i = 0; i < w.rows(); i++) {
            for (int j = 0; j < w.cols(); j++) {
                set(out, (long) i * w.cols() + j, w.weight(i, j));
            }
        }
    }

    @Override
    public void quantScaleGrad(Tensor x, Tensor dy, QuantizedMatrix w, Tensor dScales) {
        int n = Checks.quantScaleGrad("quantScaleGrad", x, dy, w, dScales);
        int cols = w.cols(), width = w.groupWidth();
        int[] q = new int[cols];
        for (int i = 0; i < w.rows(); i++) {
            w.getRow(i, q);
            for (int k = 0; k < w.groups(); k++) {
                double z = w.zero(i, k), acc = 0;
                for (int t = 0; t < n; t++) {
                    double partial = 0;
                    for (int j = k * width; j < Math.min(cols, (k + 1) * width); j++) {
                        partial += (q[j] - z) * get(x, (long) t * cols + j);
                    }
                    acc += get(dy, (long) t * w.rows() + i) * partial;
                }
                long e = (long) i * w.groups() + k;
                set(dScales, e, (float) (get(dScales, e) + acc));
            }
        }
    }

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        Checks.sameF32("add", a, b, out);
        for (long i = 0; i < a.size(); i++) {
            set(out, i, get(a, i) + get(b, i));
        }
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        Checks.sameF32("mul", a, b, out);
        for (long i = 0; i < a.size(); i++) {
            set(out, i, get(a, i) * get(b, i));
        }
    }

    @Override
    public void scale(Tensor x, float s, Tensor out) {
        Checks.sameF32("scale", x, out);
        for (long i = 0; i < x.size(); i++) {
            set(out, i, s * get(x, i));
        }
    }

    @Override
    public void axpy(float alpha, Tensor x, Tensor y) {
        Checks.sameF32("axpy", x, y);
        for (long i = 0; i < x.size(); i++) {
            set(y, i, Math.fma(alpha, get(x, i), get(y, i)));
        }
    }

    @Override
    public void fill(Tensor x, float value) {
        Checks.f32("fill", x);
        for (long i = 0; i < x.size(); i++) {
            set(x, i, value);
        }
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        Checks.typed("copy", dst, dst.dtype());
        if (src.dtype() != dst.dtype() || !src.shape().equals(dst.shape())) {
            throw new IllegalArgumentException("copy: " + src + " and " + dst + " must have the same shape and type");
        }
        long bytes = dst.dtype().byteSize();
        for (long n = 0; n < src.size(); n++) {
            MemorySegment.copy(src.segment(), src.offsetOf(n) * bytes, dst.segment(), (dst.offset() + n) * bytes, bytes);
        }
    }

    @Override
    public void convert(Tensor src, Tensor dst) {
        for (Tensor t : new Tensor[]{src, dst}) {
            Checks.typed("convert", t, t.dtype());
            if (!t.dtype().isFloating()) {
                throw new IllegalArgumentException("convert: " + t + " must be f32, bf16 or f16");
            }
        }
        if (!src.shape().equals(dst.shape())) {
            throw new IllegalArgumentException("convert: shapes differ: " + Checks.describe(src, dst));
        }
        MemorySegment s = src.segment(), d = dst.segment();
        for (long i = 0; i < src.size(); i++) {
            Tensor.store(d, dst.dtype(), dst.offset() + i, Tensor.load(s, src.dtype(), src.offset() + i));
        }
    }

    @Override
    public float sum(Tensor x) {
        Checks.f32("sum", x);
        double acc = 0;
        for (long i = 0; i < x.size(); i++) {
            acc += get(x, i);
        }
        return (float) acc;
    }

    @Override
    public float max(Tensor x) {
        Checks.f32("max", x);
        if (x.size() == 0) {
            throw new IllegalArgumentException("max: " + x + " is empty; the maximum of no elements is undefined");
        }
        float m = Float.NEGATIVE_INFINITY;
        for (long i = 0; i < x.size(); i++) {
            float v = get(x, i);
            if (Float.isNaN(v)) {
                return Float.NaN;
            }
            m = Math.max(m, v);
        }
        return m;
    }

    @Override
    public float sumOfSquares(Tensor x) {
        Checks.f32("sumOfSquares", x);
        double acc = 0;
        for (long i = 0; i < x.size(); i++) {
            double v = get(x, i);
            acc += v * v;
        }
        return (float) acc;
    }

    @Override
    public float dot(Tensor a, Tensor b) {
        Checks.sameF32("dot", a, b);
        double acc = 0;
        for (long i = 0; i < a.size(); i++) {
            acc += (double) get(a, i) * get(b, i);
        }
        return (float) acc;
    }

    @Override
    public void softmax(Tensor x, Tensor out, boolean causal) {
        Checks.sameF32("softmax", x, out);
        long cols = x.dim(-1);
        long rows = x.size() / Math.max(cols, 1);
        long t = causal && x.rank() >= 2 ? x.dim(-2) : 0;
        if (causal && (x.rank() < 2 || cols < t)) {
            throw new IllegalArgumentException("softmax: causal needs " + x + " to be (..., T, S) with S >= T");
        }
        for (long r = 0; r < rows; r++) {
            long base = r * cols;
            long valid = causal ? (r % t) + cols - t + 1 : cols;
            double m = Double.NEGATIVE_INFINITY;
            for (long j = 0; j < valid; j++) {
                m = Math.max(m, get(x, base + j));
            }
            double s = 0;
            for (long j = 0; j < valid; j++) {
                s += Math.exp(get(x, base + j) - m);
            }
            for (long j = 0; j < cols; j++) {
                set(out, base + j, j < valid ? (float) (Math.exp(get(x, base + j) - m) / s) : 0f);
            }
        }
    }

    @Override
    public void softmaxBackward(Tensor y, Tensor dy, Tensor dx) {
        Checks.sameF32("softmaxBackward", y, dy, dx);
        long cols = y.dim(-1);
        long rows = y.size() / Math.max(cols, 1);
        for (long r = 0; r < rows; r++) {
            long base = r * cols;
            double s = 0;
            for (long j = 0; j < cols; j++) {
                s += (double) get(dy, base + j) * get(y, base + j);
            }
            for (long j = 0; j < cols; j++) {
                set(dx, base + j, (float) (get(y, base + j) * (get(dy, base + j) - s)));
            }
        }
    }

    @Override
    public void rmsNorm(Tensor x, Tensor weight, float eps, Tensor out, Tensor rstd) {
        Checks.sameF32("rmsNorm", x, out);
        Checks.f32("rmsNorm", weight);
        Checks.f32("rmsNorm", rstd);
        long d = x.dim(-1);
        long rows = x.size() / Math.max(d, 1);
        Checks.shape("rmsNorm", weight, d);
        Checks.shape("rmsNorm", rstd, rows);
        for (long r = 0; r < rows; r++) {
            double ss = 0;
            for (long j = 0; j < d; j++) {
                double v = get(x, r * d + j);
                ss += v * v;
            }
            float k = (float) (1.0 / Math.sqrt(ss / d + eps));
            set(rstd, r, k);
            for (long j = 0; j < d; j++) {
                set(out, r * d + j, get(x, r * d + j) * k * get(weight, j));
            }
        }
    }

    @Override
    public void rmsNormBackward(Tensor x, Tensor weight, Tensor rstd, Tensor dy, Tensor dx, Tensor dweight) {
        Checks.sameF32("rmsNormBackward", x, dy, dx);
        Checks.f32("rmsNormBackward", weight);
        Checks.f32("rmsNormBackward", rstd);
        Checks.f32("rmsNormBackward", dweight);
        long d = x.dim(-1);
        long rows = x.size() / Math.max(d, 1);
        Checks.shape("rmsNormBackward", weight, d);
        Checks.shape("rmsNormBackward", dweight, d);
        Checks.shape("rmsNormBackward", rstd, rows);
        double[] dw = new double[Math.toIntExact(d)];
        for (long r = 0; r < rows; r++) {
            double k = get(rstd, r);
            double mean = 0;
            for (long j = 0; j < d; j++) {
                double xh = get(x, r * d + j) * k;
                double g = (double) get(dy, r * d + j) * get(weight, j);
                mean += g * xh;
                dw[(int) j] += get(dy, r * d + j) * xh;
            }
            mean /= d;
            for (long j = 0; j < d; j++) {
                double xh = get(x, r * d + j) * k;
                double g = (double) get(dy, r * d + j) * get(weight, j);
                set(dx, r * d + j, (float) (k * (g - xh * mean)));
            }
        }
        for (int j = 0; j < d; j++) {
            set(dweight, j, (float) (get(dweight, j) + dw[j]));
        }
    }

    @Override
    public void rope(Tensor x, Tensor cos, Tensor sin, boolean inverse) {
        Checks.f32("rope", x);
        Checks.f32("rope", cos);
        Checks.f32("rope", sin);
        if (x.rank() != 3 && x.rank() != 4) {
            throw new IllegalArgumentException("rope: " + x + " must be (T, H, D) or (B, T, H, D)");
        }
        long t = x.dim(-3), h = x.dim(-2), d = x.dim(-1);
        if (d % 2 != 0) {
            throw new IllegalArgumentException("rope: head dimension of " + x + " must be even");
        }
        long half = d / 2;
        Checks.shape("rope", cos, t, half);
        Checks.shape("rope", sin, t, half);
        long batches = x.size() / Math.max(t * h * d, 1);
        for (long b = 0; b < batches; b++) {
            for (long p = 0; p < t; p++) {
                for (long hh = 0; hh < h; hh++) {
                    long base = ((b * t + p) * h + hh) * d;
                    for (long i = 0; i < half; i++) {
                        double c = get(cos, p * half + i);
                        double s = inverse ? -get(sin, p * half + i) : get(sin, p * half + i);
                        double x1 = get(x, base + i), x2 = get(x, base + i + half);
                        set(x, base + i, (float) (x1 * c - x2 * s));
                        set(x, base + i + half, (float) (x1 * s + x2 * c));
                    }
                }
            }
        }
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    @Override
    public void silu(Tensor x, Tensor out) {
        Checks.sameF32("silu", x, out);
        for (long i = 0; i < x.size(); i++) {
            double v = get(x, i);
            set(out, i, (float) (v * sigmoid(v)));
        }
    }

    @Override
    public void siluBackward(Tensor x, Tensor dy, Tensor dx) {
        Checks.sameF32("siluBackward", x, dy, dx);
        for (long i = 0; i < x.size(); i++) {
            double v = get(x, i), s = sigmoid(v);
            set(dx, i, (float) (get(dy, i) * s * (1 + v * (1 - s))));
        }
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out) {
        Checks.sameF32("swiglu", gate, up, out);
        for (long i = 0; i < gate.size(); i++) {
            double g = get(gate, i);
            set(out, i, (float) (g * sigmoid(g) * get(up, i)));
        }
    }

    @Override
    public void swigluBackward(Tensor gate, Tensor up, Tensor dout, Tensor dgate, Tensor dup) {
        Checks.sameF32("swigluBackward", gate, up, dout, dgate, dup);
        for (long i = 0; i < gate.size(); i++) {
            double g = get(gate, i), u = get(up, i), d = get(dout, i), s = sigmoid(g);
            set(dup, i, (float) (d * g * s));
            set(dgate, i, (float) (d * u * s * (1 + g * (1 - s))));
        }
    }

    @Override
    public float crossEntropy(Tensor logits, Tensor targets, Tensor dlogits, float gradScale) {
        Checks.f32("crossEntropy", logits);
        Checks.typed("crossEntropy", targets, DType.I32);
        if (logits.rank() != 2) {
            throw new IllegalArgumentException("crossEntropy: " + logits + " must be (N, V)");
        }
        long n = logits.dim(0), v = logits.dim(1);
        Checks.shape("crossEntropy", targets, n);
        if (dlogits != null) {
            Checks.sameF32("crossEntropy", logits, dlogits);
        }
        double total = 0;
        for (long r = 0; r < n; r++) {
            int target = targets.segment().getAtIndex(I, targets.offset() + r);
            if (target >= v) {
                throw new IllegalArgumentException("crossEntropy: target " + target + " of row " + r + " is outside the vocabulary [0, " + v + ")");
            }
            double m = Double.NEGATIVE_INFINITY;
            for (long j = 0; j < v; j++) {
                m = Math.max(m, get(logits, r * v + j));
            }
            double s = 0;
            for (long j = 0; j < v; j++) {
                s += Math.exp(get(logits, r * v + j) - m);
            }
            double lse = m + Math.log(s);
            if (target >= 0) {
                total += lse - get(logits, r * v + target);
            }
            if (dlogits != null) {
                for (long j = 0; j < v; j++) {
                    double p = target < 0 ? 0 : Math.exp(get(logits, r * v + j) - lse) - (j == target ? 1 : 0);
                    set(dlogits, r * v + j, (float) (gradScale * p));
                }
            }
        }
        return (float) total;
    }

    private static long checkedId(Tensor ids, long n, long vocab, String op) {
        int id = ids.segment().getAtIndex(I, ids.offset() + n);
        if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException(op + ": id " + id + " at position " + n + " is outside the table's rows [0, " + vocab + ")");
        }
        return id;
    }

    @Override
    public void embedding(Tensor table, Tensor ids, Tensor out) {
        Checks.f32("embedding", table);
        Checks.typed("embedding", ids, DType.I32);
        Checks.f32("embedding", out);
        Checks.rank("embedding", table, 2, "(V, D)");
        long vocab = table.dim(0), d = table.dim(1), n = ids.size();
        Checks.shape("embedding", out, n, d);
        for (long r = 0; r < n; r++) {
            long id = checkedId(ids, r, vocab, "embedding");
            for (long j = 0; j < d; j++) {
                set(out, r * d + j, get(table, id * d + j));
            }
        }
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dtable) {
        Checks.f32("embeddingBackward", dtable);
        Checks.typed("embeddingBackward", ids, DType.I32);
        Checks.f32("embeddingBackward", dout);
        Checks.rank("embeddingBackward", dtable, 2, "(V, D)");
        long vocab = dtable.dim(0), d = dtable.dim(1), n = ids.size();
        Checks.shape("embeddingBackward", dout, n, d);
        for (long r = 0; r < n; r++) {
            long id = checkedId(ids, r, vocab, "embeddingBackward");
            for (long j = 0; j < d; j++) {
                set(dtable, id * d + j, get(dtable, id * d + j) + get(dout, r * d + j));
            }
        }
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamWStep s) {
        Checks.sameF32("adamw", param, grad, m, v);
        double bc1 = s.biasCorrection1(), sqrtBc2 = Math.sqrt(s.biasCorrection2());
        double stepSize = s.lr() / bc1;
        for (long i = 0; i < param.size(); i++) {
            double g = get(grad, i);
            double mi = s.beta1() * get(m, i) + (1 - s.beta1()) * g;
            double vi = s.beta2() * get(v, i) + (1 - s.beta2()) * g * g;
            double p = get(param, i) * (1 - (double) s.lr() * s.weightDecay());
            p -= stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + s.eps());
            set(m, i, (float) mi);
            set(v, i, (float) vi);
            set(param, i, (float) p);
        }
    }

    @Override
    public void close() {
    }
}
