// Whole-tensor reductions in two launches: reduce_partial leaves one f32 per block (each thread sums a
// grid-stride slice, then a tree over the block), reduce_final folds those partials in one block. Any order of
// an n-term f32 sum is within γ_n·Σ|terms| of the exact sum, the bound the conformance suite allows.
// Modes: 0 Σ a, 1 Σ a², 2 Σ a·b, 3 max a (NaN if any element is NaN; +0 above -0).
#include "common.cuh"

__device__ __forceinline__ float term(const float* a, const float* b, int mode, i64 i) {
    float x = a[i];
    return mode == 0 ? x : mode == 1 ? x * x : mode == 2 ? x * b[i] : x;
}

extern "C" __global__ void reduce_partial(const float* a, const float* b, i64 n, int mode, float* partial) {
    __shared__ float scratch[32];
    float acc;
    if (mode == 3) {
        acc = -__int_as_float(0x7f800000);
        for (i64 i = global_index(); i < n; i += global_stride()) acc = max_java(acc, a[i]);
        acc = block_max(acc, scratch);
    } else {
        acc = 0.f;
        for (i64 i = global_index(); i < n; i += global_stride()) acc += term(a, b, mode, i);
        acc = block_sum(acc, scratch);
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

extern "C" __global__ void reduce_final(const float* partial, int count, int mode, float* out) {
    __shared__ float scratch[32];
    float acc = mode == 3 ? -__int_as_float(0x7f800000) : 0.f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) acc = mode == 3 ? max_java(acc, partial[i]) : acc + partial[i];
    acc = mode == 3 ? block_max(acc, scratch) : block_sum(acc, scratch);
    if (threadIdx.x == 0) out[0] = acc;
}
