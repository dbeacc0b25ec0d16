// Row kernels: one warp per row of a (rows, cols) row-major f32 matrix, blockDim.x = 256 (8 rows per block).
// Sums over a row are f32 lane sums folded by a butterfly; exp is expf. out may alias x: the last pass reads
// and writes each element in the same thread, after the row's reductions are complete.
#include "common.cuh"

#define WARPS_PER_BLOCK 8

__device__ __forceinline__ i64 warp_row() {
    return (i64)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5);
}

// Softmax of each row. With t > 0 (causal) row r sees columns j <= r % t + cols - t only; the others get 0.
extern "C" __global__ void softmax_f32(const float* x, float* out, i64 rows, i64 cols, i64 t) {
    i64 r = warp_row();
    if (r >= rows) return;
    int lane = threadIdx.x & 31;
    const float* xr = x + r * cols;
    float* yr = out + r * cols;
    i64 valid = t > 0 ? r % t + cols - t + 1 : cols;
    float m = -__int_as_float(0x7f800000);
    for (i64 j = lane; j < valid; j += 32) m = max_java(m, xr[j]);
    m = warp_max(m);
    float s = 0.f;
    for (i64 j = lane; j < valid; j += 32) s += expf(xr[j] - m);
    s = warp_sum(s);
    for (i64 j = lane; j < cols; j += 32) yr[j] = j < valid ? expf(xr[j] - m) / s : 0.f;
}

// dx = y ⊙ (dy − Σ_row dy ⊙ y); dx may alias dy.
extern "C" __global__ void softmax_backward_f32(const float* y, const float* dy, float* dx, i64 rows, i64 cols) {
    i64 r = warp_row();
    if (r >= rows) return;
    int lane = threadIdx.x & 31;
    const float* yr = y + r * cols;
    const float* gr = dy + r * cols;
    float s = 0.f;
    for (i64 j = lane; j < cols; j += 32) s += gr[j] * yr[j];
    s = warp_sum(s);
    for (i64 j = lane; j < cols; j += 32) dx[r * cols + j] = yr[j] * (gr[j] - s);
}

// out = x · rstd · w with rstd = 1 / sqrt(mean(x²) + eps), written to rstd[r]; x (rows, d), w (d).
extern "C" __global__ void rmsnorm_f32(const float* x, const float* w, float eps, float* out, float* rstd, i64 rows,
                                       i64 d) {
    i64 r = warp_row();
    if (r >= rows) return;
    int lane = threadIdx.x & 31;
    const float* xr = x + r * d;
    float ss = 0.f;
    for (i64 j = lane; j < d; j += 32) ss = fmaf(xr[j], xr[j], ss);
    ss = warp_sum(ss);
    float k = 1.f / sqrtf(ss / (float)d + eps);
    if (lane == 0) rstd[r] = k;
    for (i64 j = lane; j < d; j += 32) out[r * d + j] = xr[j] * k * w[j];
}

// dx = rstd · (g − x̂ · mean(g ⊙ x̂)) with x̂ = x · rstd, g = dy ⊙ w, per row.
extern "C" __global__ void rmsnorm_backward_f32(const float* x, const float* w, const float* rstd, const float* dy,
                                                float* dx, i64 rows, i64 d) {
    i64 r = warp_row();
    if (r >= rows) return;
    int lane = threadIdx.x & 31;
    const float* xr = x + r * d;
    const float* gr = dy + r * d;
    float k = rstd[r];
    float mean = 0.f;
    for (i64 j = lane; j < d; j += 32) mean = fmaf(gr[j] * w[j], xr[j] * k, mean);
    mean = warp_sum(mean) / (float)d;
    for (i64 j = lane; j < d; j += 32) dx[r * d + j] = k * (gr[j] * w[j] - xr[j] * k * mean);
}

// First half of dweight += Σ_rows dy ⊙ x̂: block (column block, row chunk) sums rows [chunk·per, +per) of its
// columns into partial[chunk, j]. Threads run along columns, so each row's loads are coalesced.
extern "C" __global__ void rmsnorm_dweight_partial(const float* x, const float* rstd, const float* dy, float* partial,
                                                   i64 rows, i64 d, i64 per) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    i64 r0 = (i64)blockIdx.y * per, r1 = min(rows, r0 + per);
    float acc = 0.f;
    for (i64 r = r0; r < r1; r++) acc = fmaf(dy[r * d + j], x[r * d + j] * rstd[r], acc);
    partial[(i64)blockIdx.y * d + j] = acc;
}

// Second half: dweight[j] += Σ_chunks partial[chunk, j], in chunk order.
extern "C" __global__ void rmsnorm_dweight_final(const float* partial, float* dweight, i64 chunks, i64 d) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    float acc = 0.f;
    for (i64 c = 0; c < chunks; c++) acc += partial[c * d + j];
    dweight[j] += acc;
}

// Rotary embedding in place, rotate-half pairing: x is (batches, t, h, d) contiguous, cos and sin (t, d/2).
// (x1, x2) <- (x1·c − x2·s, x1·s + x2·c) with s negated when inverse != 0. One thread per pair.
extern "C" __global__ void rope_f32(float* x, const float* cosines, const float* sines, int inverse, i64 batches,
                                    i64 t, i64 h, i64 d) {
    i64 half = d / 2, n = batches * t * h * half;
    for (i64 i = global_index(); i < n; i += global_stride()) {
        i64 k = i % half, row = i / half;  // row indexes (b, p, hh)
        i64 p = (row / h) % t;
        float c = cosines[p * half + k], s = sines[p * half + k];
        if (inverse) s = -s;
        float* base = x + row * d;
        float x1 = base[k], x2 = base[k + half];
        base[k] = fmaf(x1, c, -x2 * s);
        base[k + half] = fmaf(x1, s, x2 * c);
    }
}
