// Cross-entropy of logits (n, v) against int32 targets, fused with its gradient: one block of 256 threads per
// row. Pass 1 keeps a running (max, sum of exp) per thread and merges them over the block; pass 2 writes
// dlogits = gradScale · (softmax − onehot(target)), or 0 on an ignored row (target < 0). dlogits may alias
// logits: the target's logit is read before pass 2. rowLoss[r] = logsumexp − logit[target], 0 when ignored.
// A target >= v records the first such row in error[0] (atomicMin; the host initialises it to INT_MAX).
#include "common.cuh"

extern "C" __global__ void cross_entropy_f32(const float* logits, const int* targets, float* dlogits, float gradScale,
                                             float* rowLoss, int* error, i64 v) {
    __shared__ float scratch[32];
    __shared__ float targetLogit;
    i64 r = blockIdx.x;
    const float* x = logits + r * v;
    int target = targets[r];
    if (target >= v) {
        if (threadIdx.x == 0) atomicMin(error, (int)r);
        return;
    }
    float m = -__int_as_float(0x7f800000), s = 0.f;
    for (i64 j = threadIdx.x; j < v; j += blockDim.x) {
        float xj = x[j];
        if (xj > m) {
            s = s * expf(m - xj) + 1.f;
            m = xj;
        } else {
            // A logit of −∞ adds exp(−∞) = 0, also while m is still −∞ (expf(−∞ − −∞) would be NaN).
            s += xj == -__int_as_float(0x7f800000) ? 0.f : expf(xj - m);
        }
    }
    float rowMax = block_max(m, scratch);
    float scaled = m == -__int_as_float(0x7f800000) ? 0.f : s * expf(m - rowMax);
    float total = block_sum(scaled, scratch);
    float lse = rowMax + logf(total);
    if (threadIdx.x == 0) {
        targetLogit = target >= 0 ? x[target] : 0.f;
    }
    __syncthreads();
    if (threadIdx.x == 0) rowLoss[r] = target >= 0 ? lse - targetLogit : 0.f;
    if (dlogits == nullptr) return;
    float* d = dlogits + r * v;
    for (i64 j = threadIdx.x; j < v; j += blockDim.x) {
        d[j] = target < 0 ? 0.f : gradScale * (expf(x[j] - lse) - (j == target ? 1.f : 0.f));
    }
}
