// Embedding gather and its backward, a scatter-add. ids are int32; an id outside [0, v) records the first
// such position in error[0] (atomicMin; the host initialises it to INT_MAX) and that position is left alone.
#include "common.cuh"

// out[i, :] = table[ids[i], :]; table (v, d), out (n, d). One thread per output element.
extern "C" __global__ void embedding_f32(const float* table, const int* ids, float* out, int* error, i64 n, i64 v,
                                         i64 d) {
    for (i64 e = global_index(); e < n * d; e += global_stride()) {
        i64 i = e / d, j = e % d;
        int id = ids[i];
        if (id < 0 || id >= v) {
            if (j == 0) atomicMin(error, (int)i);
            continue;
        }
        out[e] = table[(i64)id * d + j];
    }
}

// dtable[ids[i], :] += dout[i, :], deterministically and in the oracle's order: block i handles row i only if
// no earlier position has the same id; it then adds, in position order, every position with that id into a
// register that starts from the table's value, and stores once. Bit-identical to a sequential loop over i.
extern "C" __global__ void embedding_backward_f32(const float* dout, const int* ids, float* dtable, int* error, i64 n,
                                                  i64 v, i64 d) {
    __shared__ int earlier;
    i64 i = blockIdx.x;
    int id = ids[i];
    if (id < 0 || id >= v) {
        if (threadIdx.x == 0) atomicMin(error, (int)i);
        return;
    }
    if (threadIdx.x == 0) earlier = 0;
    __syncthreads();
    for (i64 k = threadIdx.x; k < i; k += blockDim.x) {
        if (ids[k] == id) earlier = 1;
    }
    __syncthreads();
    if (earlier) return;
    for (i64 j = threadIdx.x; j < d; j += blockDim.x) {
        float acc = dtable[(i64)id * d + j];
        for (i64 k = i; k < n; k++) {
            if (ids[k] == id) acc += dout[k * d + j];
        }
        dtable[(i64)id * d + j] = acc;
    }
}
