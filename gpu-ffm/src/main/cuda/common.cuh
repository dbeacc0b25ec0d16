// Shared helpers of jtune's kernels. Every kernel is extern "C" (its PTX name is its C name), takes device
// addresses of contiguous f32 data unless it says otherwise, and counts elements in 64-bit integers.
#pragma once

#include <cuda_fp16.h>

typedef long long i64;

// Thread index over a 1-D grid and the grid's total thread count, for grid-stride loops.
__device__ __forceinline__ i64 global_index() {
    return (i64)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ i64 global_stride() {
    return (i64)gridDim.x * blockDim.x;
}

// bf16 widens exactly by a shift.
__device__ __forceinline__ float bf16_to_f32(unsigned short h) {
    return __uint_as_float(((unsigned)h) << 16);
}

// f32 -> bf16, round to nearest even; a NaN stays a quiet NaN (the engine's Tensor.toBf16, bit for bit).
__device__ __forceinline__ unsigned short f32_to_bf16(float f) {
    unsigned bits = __float_as_uint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return (unsigned short)((bits >> 16) | 0x40u);
    }
    unsigned rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)((bits + rounding) >> 16);
}

__device__ __forceinline__ float f16_to_f32(unsigned short h) {
    return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ unsigned short f32_to_f16(float f) {
    return __half_as_ushort(__float2half_rn(f));
}

// max with Java's Math.max semantics: NaN wins, and +0 is above -0.
__device__ __forceinline__ float max_java(float a, float b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a == b) return __int_as_float(__float_as_int(a) & __float_as_int(b));
    return a > b ? a : b;
}

// Sum over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = max_java(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of up to 1024 threads (blockDim.x a multiple of 32); every thread gets the result.
// `shared` holds at least 32 floats. Synchronizes the block.
__device__ __forceinline__ float block_sum(float v, float* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : 0.f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : -__int_as_float(0x7f800000);
    return warp_max(v);
}

__device__ __forceinline__ float sigmoid(float x) {
    return 1.f / (1.f + expf(-x));
}
