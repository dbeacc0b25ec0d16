// Element-wise kernels: grid-stride loops over n contiguous elements, one rounding per IEEE operation as the
// scalar oracle does them in f32 (add, mul, scale, axpy with one fused multiply-add). The activation kernels
// compute in f32 with expf (2 ulp) where the oracle uses double; the conformance bounds allow for that.
// out may alias an input: each element is read and written by the same thread.
#include "common.cuh"

extern "C" __global__ void add_f32(const float* a, const float* b, float* out, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) out[i] = a[i] + b[i];
}

extern "C" __global__ void mul_f32(const float* a, const float* b, float* out, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) out[i] = a[i] * b[i];
}

extern "C" __global__ void scale_f32(const float* x, float s, float* out, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) out[i] = s * x[i];
}

// y = fma(alpha, x, y), as Math.fma.
extern "C" __global__ void axpy_f32(float alpha, const float* x, float* y, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) y[i] = fmaf(alpha, x[i], y[i]);
}

// out = x * sigmoid(x)
extern "C" __global__ void silu_f32(const float* x, float* out, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float v = x[i];
        out[i] = v * sigmoid(v);
    }
}

// dx = dy * s * (1 + x * (1 - s)), s = sigmoid(x)
extern "C" __global__ void silu_backward_f32(const float* x, const float* dy, float* dx, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float v = x[i], s = sigmoid(v);
        dx[i] = dy[i] * s * (1.f + v * (1.f - s));
    }
}

// out = silu(gate) * up
extern "C" __global__ void swiglu_f32(const float* gate, const float* up, float* out, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float g = gate[i];
        out[i] = g * sigmoid(g) * up[i];
    }
}

// dup = dout * silu(gate), dgate = dout * up * silu'(gate)
extern "C" __global__ void swiglu_backward_f32(const float* gate, const float* up, const float* dout, float* dgate,
                                               float* dup, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float g = gate[i], u = up[i], d = dout[i], s = sigmoid(g);
        dup[i] = d * g * s;
        dgate[i] = d * u * s * (1.f + g * (1.f - s));
    }
}

// Type codes of convert: 0 f32, 1 bf16, 2 f16.
__device__ __forceinline__ float load_as_f32(const void* p, int type, i64 i) {
    if (type == 0) return ((const float*)p)[i];
    unsigned short h = ((const unsigned short*)p)[i];
    return type == 1 ? bf16_to_f32(h) : f16_to_f32(h);
}

// dst = src converted between f32, bf16 and f16, rounding to nearest even (NaN stays NaN).
extern "C" __global__ void convert(const void* src, int srcType, void* dst, int dstType, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float v = load_as_f32(src, srcType, i);
        if (dstType == 0) ((float*)dst)[i] = v;
        else ((unsigned short*)dst)[i] = dstType == 1 ? f32_to_bf16(v) : f32_to_f16(v);
    }
}

// Gathers a strided view of rank <= 4 (dims d0..d3, strides s0..s3 in elements, unused leading dims 1) into
// contiguous dst, row-major; elements of 1, 2 or 4 bytes (the copy is by bits, for every type).
template <typename T>
__device__ __forceinline__ void gather(const T* src, T* dst, i64 d1, i64 d2, i64 d3, i64 s0, i64 s1, i64 s2,
                                       i64 s3, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        i64 r = i;
        i64 i3 = r % d3; r /= d3;
        i64 i2 = r % d2; r /= d2;
        i64 i1 = r % d1; r /= d1;
        dst[i] = src[r * s0 + i1 * s1 + i2 * s2 + i3 * s3];
    }
}

extern "C" __global__ void gather_strided(const void* src, void* dst, int elementBytes, i64 d1, i64 d2, i64 d3,
                                          i64 s0, i64 s1, i64 s2, i64 s3, i64 n) {
    if (elementBytes == 4) gather((const unsigned*)src, (unsigned*)dst, d1, d2, d3, s0, s1, s2, s3, n);
    else if (elementBytes == 2) gather((const unsigned short*)src, (unsigned short*)dst, d1, d2, d3, s0, s1, s2, s3, n);
    else gather((const unsigned char*)src, (unsigned char*)dst, d1, d2, d3, s0, s1, s2, s3, n);
}

// One AdamW step (PyTorch's formulation) over n elements: m = b1·m + (1−b1)·g, v = b2·v + (1−b2)·g²,
// p = p·decay, p = p − stepSize · m / (sqrt(v)·invSqrtBc2 + eps); decay = 1 − lr·wd, stepSize = lr / (1 − b1^t),
// invSqrtBc2 = 1 / sqrt(1 − b2^t), computed once on the host in double.
extern "C" __global__ void adamw_f32(float* param, const float* grad, float* m, float* v, float b1, float oneMinusB1,
                                     float b2, float oneMinusB2, float eps, float decay, float stepSize,
                                     float invSqrtBc2, i64 n) {
    for (i64 i = global_index(); i < n; i += global_stride()) {
        float g = grad[i];
        float mi = b1 * m[i] + oneMinusB1 * g;
        float vi = b2 * v[i] + oneMinusB2 * g * g;
        float p = param[i] * decay;
        p -= stepSize * mi / (sqrtf(vi) * invSqrtBc2 + eps);
        m[i] = mi;
        v[i] = vi;
        param[i] = p;
    }
}
