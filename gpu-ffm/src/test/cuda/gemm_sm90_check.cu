// A device-side check of gemm_sm90.cu on its own, for a Hopper machine with nvcc (bench/gpu runs it when nvcc is
// there): every layout against a plain f32 product of the same bf16 values (small multiples of 1/8, so that every
// sum is exact and the results must be equal), at shapes with remainders and at 4096³, with row strides rounded up
// to 8 elements as the kernels require; then the time of each layout at 4096³ and 8192³ on random values of full
// bf16 precision (CUDA events, median of 10).
// Build: nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -o /tmp/gemm_sm90_check gemm_sm90_check.cu
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "../../main/cuda/gemm_sm90.cu"

__global__ void reference(const unsigned short* A, const unsigned short* B, float* C, int M, int N, int K, i64 lda,
                          i64 ldb, int ta, int tb) {
    int i = blockIdx.y * blockDim.y + threadIdx.y, j = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= M || j >= N) return;
    float s = 0.f;
    for (int l = 0; l < K; l++) {
        float a = bf16_to_f32(ta ? A[(i64)l * lda + i] : A[(i64)i * lda + l]);
        float b = bf16_to_f32(tb ? B[(i64)j * ldb + l] : B[(i64)l * ldb + j]);
        s = fmaf(a, b, s);
    }
    C[(i64)i * N + j] = s;
}

static unsigned short f32_to_bf16_host(float f) {  // exact for the values used here
    unsigned bits;
    memcpy(&bits, &f, 4);
    return (unsigned short)(bits >> 16);
}

typedef void (*gemm_fn)(const unsigned short*, const unsigned short*, float*, int, int, int, i64, i64, i64, i64, i64,
                        i64, float, float);
static gemm_fn kernels[4] = {gemm_bf16_nn_sm90, gemm_bf16_nt_sm90, gemm_bf16_tn_sm90, gemm_bf16_tt_sm90};
static const char* names[4] = {"nn", "nt", "tn", "tt"};

#define CHECK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA error %s at line %d: %s\n", \
    cudaGetErrorName(e), __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

// The kernels' contract: row strides of A and B are multiples of 8 elements (16 bytes).
static i64 ld_a(int layout, int M, int K) { return ((layout >> 1 ? M : K) + 7) / 8 * 8; }
static i64 ld_b(int layout, int N, int K) { return ((layout & 1 ? K : N) + 7) / 8 * 8; }

static void run(int layout, const unsigned short* A, const unsigned short* B, float* C, int M, int N, int K) {
    i64 lda = ld_a(layout, M, K), ldb = ld_b(layout, N, K);
    int smem = 4 * (128 + 256) * 64 * 2 + 1024;
    CHECK(cudaFuncSetAttribute(kernels[layout], cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    dim3 grid((N + 255) / 256, (M + 127) / 128, 1);
    kernels[layout]<<<grid, 256, smem>>>(A, B, C, M, N, K, lda, ldb, N, 0, 0, 0, 1.f, 0.f);
    CHECK(cudaGetLastError());
}

int main() {
    const int big = 8192;
    size_t elems = (size_t)big * big;
    std::vector<unsigned short> h(elems);
    srand(1);
    for (size_t i = 0; i < elems; i++) {  // small integers times powers of two: exact in bf16 and in f32 sums
        int v = rand() % 17 - 8;
        h[i] = f32_to_bf16_host(v / 8.f);
    }
    unsigned short *A, *B;
    float *C, *R;
    CHECK(cudaMalloc(&A, elems * 2));
    CHECK(cudaMalloc(&B, elems * 2));
    CHECK(cudaMalloc(&C, elems * 4));
    CHECK(cudaMalloc(&R, elems * 4));
    CHECK(cudaMemcpy(A, h.data(), elems * 2, cudaMemcpyHostToDevice));
    std::reverse(h.begin(), h.end());
    CHECK(cudaMemcpy(B, h.data(), elems * 2, cudaMemcpyHostToDevice));
    int shapes[][3] = {{1, 1, 8}, {7, 9, 16}, {128, 256, 64}, {129, 257, 72}, {300, 520, 200}, {64, 256, 520},
                       {1000, 700, 328}, {4096, 4096, 4096}};
    int bad = 0;
    for (auto& s : shapes) {
        int M = s[0], N = s[1], K = s[2];
        for (int layout = 0; layout < 4; layout++) {
            CHECK(cudaMemset(C, 0xff, (size_t)M * N * 4));
            run(layout, A, B, C, M, N, K);
            dim3 rb(16, 16), rg((N + 15) / 16, (M + 15) / 16);
            reference<<<rg, rb>>>(A, B, R, M, N, K, ld_a(layout, M, K), ld_b(layout, N, K), layout >> 1, layout & 1);
            CHECK(cudaDeviceSynchronize());
            std::vector<float> c((size_t)M * N), r((size_t)M * N);
            CHECK(cudaMemcpy(c.data(), C, c.size() * 4, cudaMemcpyDeviceToHost));
            CHECK(cudaMemcpy(r.data(), R, r.size() * 4, cudaMemcpyDeviceToHost));
            size_t wrong = 0, first = (size_t)-1;
            for (size_t i = 0; i < c.size(); i++) {
                if (!(c[i] == r[i])) {
                    if (first == (size_t)-1) first = i;
                    wrong++;
                }
            }
            printf("check %s %dx%dx%d: %s", names[layout], M, N, K, wrong ? "WRONG" : "exact");
            if (wrong) {
                printf(" (%zu of %zu differ; first at row %zu col %zu: %g, want %g)", wrong, c.size(),
                       first / N, first % N, c[first], r[first]);
                bad = 1;
            }
            printf("\n");
        }
    }
    // Timing on random values of full bf16 precision, as real data: the easy values above let the tensor cores
    // run cooler and faster.
    for (size_t i = 0; i < elems; i++) h[i] = f32_to_bf16_host((float)rand() / RAND_MAX * 2.f - 1.f);
    CHECK(cudaMemcpy(A, h.data(), elems * 2, cudaMemcpyHostToDevice));
    std::reverse(h.begin(), h.end());
    CHECK(cudaMemcpy(B, h.data(), elems * 2, cudaMemcpyHostToDevice));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    for (int n : {4096, 8192}) {
        for (int layout = 0; layout < 4; layout++) {
            std::vector<float> ms;
            for (int rep = 0; rep < 13; rep++) {
                CHECK(cudaEventRecord(e0));
                run(layout, A, B, C, n, n, n);
                CHECK(cudaEventRecord(e1));
                CHECK(cudaEventSynchronize(e1));
                float t;
                CHECK(cudaEventElapsedTime(&t, e0, e1));
                if (rep >= 3) ms.push_back(t);
            }
            std::sort(ms.begin(), ms.end());
            double med = (ms[4] + ms[5]) / 2;
            printf("time %s %d^3: %.3f ms, %.1f TFLOP/s\n", names[layout], n, med, 2.0 * n * n * (double)n / med / 1e9);
        }
    }
    return bad;
}
