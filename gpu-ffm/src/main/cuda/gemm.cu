// Matrix products C = alpha · op(A) · op(B) + beta · C over a batch (blockIdx.z), op(X) = X or Xᵀ, every matrix
// row-major with unit column stride, row strides lda/ldb/ldc and batch strides in elements. op(A) is (M, K),
// op(B) is (K, N), C is (M, N) f32. With beta == 0, C is not read. Kernel names end in the layout: _nn, _nt
// (Bᵀ), _tn (Aᵀ), _tt.
//
// gemm_f32_*: f32 inputs on the CUDA cores. A 128×128 tile of C per block of 256 threads (two blocks a
//   multiprocessor), 8×8 outputs per thread, K in steps of 16 through two shared-memory buffers (the next step's
//   loads, 16 bytes at a time where the layout allows, are in flight while the current one is multiplied).
//   Products accumulate in f32 with fused multiply-adds, in k order per output.
//
// gemm_bf16_*: bf16 inputs on the tensor cores (mma.sync m16n8k16, f32 accumulation). A 128×128 tile per block
//   of 8 warps, each warp 64×32; K in steps of 32 through a 4-stage cp.async pipeline (64 KiB of dynamic shared
//   memory). Shared tiles keep the global layout (k-contiguous rows, or m/n-contiguous rows for the transposed
//   operand) with an XOR swizzle of 16-byte chunks so that ldmatrix reads are free of bank conflicts; ldmatrix
//   .trans turns an m/n-contiguous tile into the fragment the mma expects. The _a variants need 16-byte aligned
//   A and B, row and batch strides that are multiples of 8 elements; the _u variants take any layout and load
//   element by element.
#include "common.cuh"

// ---- f32 ----------------------------------------------------------------------------------------------------

#define F_BM 128
#define F_BN 128
#define F_BK 16
#define F_PAD 4

template <bool TA, bool TB>
__device__ __forceinline__ void gemm_f32(const float* __restrict__ A, const float* __restrict__ B, float* C, int M,
                                         int N, int K, i64 lda, i64 ldb, i64 ldc, i64 sA, i64 sB, i64 sC,
                                         float alpha, float beta) {
    __shared__ __align__(16) float As[2][F_BK][F_BM + F_PAD];
    __shared__ __align__(16) float Bs[2][F_BK][F_BN + F_PAD];
    A += blockIdx.z * sA;
    B += blockIdx.z * sB;
    C += blockIdx.z * sC;
    const int tid = threadIdx.x, m0 = blockIdx.y * F_BM, n0 = blockIdx.x * F_BN;
    // Each thread moves two runs of 4 consecutive elements of each tile along the operand's contiguous dimension:
    // one 16-byte load where the operand's start and row stride allow it and the run is in range, else element by
    // element. A K-contiguous operand (A, or B transposed): tile row tid/4 + 64·i, k 4·(tid%4); an M- or
    // N-contiguous one (A transposed, or B): k tid/32 + 8·i, tile row 4·(tid%32).
    const bool vecA = (((unsigned long long)A & 15) == 0) && (lda & 3) == 0;
    const bool vecB = (((unsigned long long)B & 15) == 0) && (ldb & 3) == 0;
    auto fetch = [&](const float* G, i64 ld, bool kContig, bool vec, int limit, int r0, int k0, int i) {
        float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
        if (kContig) {
            int gr = r0 + (tid >> 2) + 64 * i, gk = k0 + (tid & 3) * 4;
            if (gr < limit) {
                const float* p = G + (i64)gr * ld + gk;
                if (vec && gk + 3 < K) {
                    v = *(const float4*)p;
                } else {
                    if (gk < K) v.x = p[0];
                    if (gk + 1 < K) v.y = p[1];
                    if (gk + 2 < K) v.z = p[2];
                    if (gk + 3 < K) v.w = p[3];
                }
            }
        } else {
            int gk = k0 + (tid >> 5) + 8 * i, gr = r0 + (tid & 31) * 4;
            if (gk < K) {
                const float* p = G + (i64)gk * ld + gr;
                if (vec && gr + 3 < limit) {
                    v = *(const float4*)p;
                } else {
                    if (gr < limit) v.x = p[0];
                    if (gr + 1 < limit) v.y = p[1];
                    if (gr + 2 < limit) v.z = p[2];
                    if (gr + 3 < limit) v.w = p[3];
                }
            }
        }
        return v;
    };
    auto put = [&](float (*S)[F_BM + F_PAD], bool kContig, int i, float4 v) {
        if (kContig) {
            int row = (tid >> 2) + 64 * i, k = (tid & 3) * 4;
            S[k][row] = v.x;
            S[k + 1][row] = v.y;
            S[k + 2][row] = v.z;
            S[k + 3][row] = v.w;
        } else {
            *(float4*)&S[(tid >> 5) + 8 * i][(tid & 31) * 4] = v;
        }
    };
    float4 ra[2], rb[2];
    auto load = [&](int k0) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            ra[i] = fetch(A, lda, !TA, vecA, M, m0, k0, i);
            rb[i] = fetch(B, ldb, TB, vecB, N, n0, k0, i);
        }
    };
    auto store = [&](int buf) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            put(As[buf], !TA, i, ra[i]);
            put(Bs[buf], TB, i, rb[i]);
        }
    };
    const int tx = tid & 15, ty = tid >> 4;
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = 0.f;
    load(0);
    store(0);
    __syncthreads();
    const int tiles = (K + F_BK - 1) / F_BK;
    for (int t = 0; t < tiles; t++) {
        const int cur = t & 1;
        if (t + 1 < tiles) load((t + 1) * F_BK);
#pragma unroll
        for (int k = 0; k < F_BK; k++) {
            float4 a0 = *(const float4*)&As[cur][k][ty * 4], a1 = *(const float4*)&As[cur][k][64 + ty * 4];
            float4 b0 = *(const float4*)&Bs[cur][k][tx * 4], b1 = *(const float4*)&Bs[cur][k][64 + tx * 4];
            float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
            float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        if (t + 1 < tiles) store(cur ^ 1);
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int gm = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + i - 4);
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int gn = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + j - 4);
            if (gn < N) {
                float* c = C + (i64)gm * ldc + gn;
                *c = beta == 0.f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;
            }
        }
    }
}

// The second argument of __launch_bounds__ asks ptxas for two blocks a multiprocessor (128 registers a thread);
// nn and tt fit without it, and with it ptxas spills there.
#define GEMM_F32(suffix, TA, TB, BOUNDS)                                                                           \
    extern "C" __global__ void __launch_bounds__ BOUNDS gemm_f32_##suffix(                                          \
        const float* A, const float* B, float* C, int M, int N, int K, i64 lda, i64 ldb, i64 ldc, i64 sA, i64 sB,  \
        i64 sC, float alpha, float beta) {                                                                         \
        gemm_f32<TA, TB>(A, B, C, M, N, K, lda, ldb, ldc, sA, sB, sC, alpha, beta);                                \
    }

GEMM_F32(nn, false, false, (256))
GEMM_F32(nt, false, true, (256, 2))
GEMM_F32(tn, true, false, (256, 2))
GEMM_F32(tt, true, true, (256))

// ---- bf16 on tensor cores -------------------------------------------------------------------------------------

#define H_BM 128
#define H_BN 128
#define H_BK 32
#define H_STAGES 4
#define H_TILE_BYTES (H_BM * H_BK * 2)
#define H_STAGE_BYTES (2 * H_TILE_BYTES)

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of 128 rows × 32 k (64-byte rows).
__device__ __forceinline__ unsigned rows_by_k(int row, int chunk) {
    return row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4);
}

// Byte offset of chunk `chunk` of k-row `row` in a tile of 32 k-rows × 128 (256-byte rows).
__device__ __forceinline__ unsigned k_by_rows(int row, int chunk) {
    return row * 256 + ((chunk ^ (row & 7)) << 4);
}

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// One 128×32 (or 32×128) tile of a bf16 operand into shared memory at `dst`: `kMajor` when the operand's
// rows run along the tile's 128 (k contiguous); otherwise its rows are k. Elements outside [0, rows) × [0, K)
// are zero. 512 chunks of 8 elements, 2 per thread.
template <bool kMajor, bool aligned>
__device__ __forceinline__ void load_tile(unsigned dst, const unsigned short* G, i64 ld, int rows, int K, int r0,
                                          int k0) {
#pragma unroll
    for (int c = 0; c < 2; c++) {
        int q = threadIdx.x + 256 * c;
        int row, chunk, valid;
        const unsigned short* src;
        unsigned off;
        if (kMajor) {
            row = q >> 2;
            chunk = q & 3;
            int gr = r0 + row, gk = k0 + chunk * 8;
            valid = gr < rows ? max(0, min(8, K - gk)) : 0;
            src = G + (i64)gr * ld + gk;
            off = rows_by_k(row, chunk);
        } else {
            row = q >> 4;
            chunk = q & 15;
            int gk = k0 + row, gr = r0 + chunk * 8;
            valid = gk < K ? max(0, min(8, rows - gr)) : 0;
            src = G + (i64)gk * ld + gr;
            off = k_by_rows(row, chunk);
        }
        if (aligned) {
            cp_async16(dst + off, valid > 0 ? (const void*)src : (const void*)G, valid * 2);
        } else {
            unsigned short v[8];
#pragma unroll
            for (int e = 0; e < 8; e++) v[e] = e < valid ? src[e] : (unsigned short)0;
            unsigned w0 = v[0] | ((unsigned)v[1] << 16), w1 = v[2] | ((unsigned)v[3] << 16);
            unsigned w2 = v[4] | ((unsigned)v[5] << 16), w3 = v[6] | ((unsigned)v[7] << 16);
            asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst + off), "r"(w0), "r"(w1), "r"(w2),
                         "r"(w3));
        }
    }
}

__device__ __forceinline__ void ldmatrix_x4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2,
                                                  unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <bool TA, bool TB, bool aligned>
__device__ __forceinline__ void gemm_bf16(const unsigned short* A, const unsigned short* B, float* C, int M, int N,
                                          int K, i64 lda, i64 ldb, i64 ldc, i64 sA, i64 sB, i64 sC, float alpha,
                                          float beta) {
    extern __shared__ __align__(128) unsigned char smem[];
    A += blockIdx.z * sA;
    B += blockIdx.z * sB;
    C += blockIdx.z * sC;
    const unsigned base = (unsigned)__cvta_generic_to_shared(smem);
    const int m0 = blockIdx.y * H_BM, n0 = blockIdx.x * H_BN;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = (warp & 1) * 64, wn = (warp >> 1) * 32;
    const int tiles = (K + H_BK - 1) / H_BK;

    auto load_stage = [&](int stage, int kt) {
        unsigned s = base + stage * H_STAGE_BYTES;
        load_tile<!TA, aligned>(s, A, lda, M, K, m0, kt * H_BK);
        load_tile<TB, aligned>(s + H_TILE_BYTES, B, ldb, N, K, n0, kt * H_BK);
    };

    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.f;

#pragma unroll
    for (int s = 0; s < H_STAGES - 1; s++) {
        if (s < tiles) load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < tiles; kt++) {
        cp_async_wait<H_STAGES - 2>();
        __syncthreads();
        int next = kt + H_STAGES - 1;
        if (next < tiles) load_stage(next % H_STAGES, next);
        cp_async_commit();
        const unsigned sa = base + (kt % H_STAGES) * H_STAGE_BYTES, sb = sa + H_TILE_BYTES;
#pragma unroll
        for (int ks = 0; ks < H_BK; ks += 16) {
            unsigned a[4][4], b[4][2];
#pragma unroll
            for (int mi = 0; mi < 4; mi++) {
                if (!TA) {
                    int row = wm + mi * 16 + (lane & 15), chunk = (ks >> 3) + (lane >> 4);
                    ldmatrix_x4(sa + rows_by_k(row, chunk), a[mi][0], a[mi][1], a[mi][2], a[mi][3]);
                } else {
                    int krow = ks + ((lane >> 4) << 3) + (lane & 7);
                    int col = wm + mi * 16 + (((lane >> 3) & 1) << 3);
                    ldmatrix_x4_trans(sa + k_by_rows(krow, col >> 3), a[mi][0], a[mi][1], a[mi][2], a[mi][3]);
                }
            }
#pragma unroll
            for (int nj = 0; nj < 2; nj++) {
                int i = lane >> 3;
                if (TB) {
                    int row = wn + nj * 16 + ((i >> 1) << 3) + (lane & 7), chunk = (ks >> 3) + (i & 1);
                    ldmatrix_x4(sb + rows_by_k(row, chunk), b[2 * nj][0], b[2 * nj][1], b[2 * nj + 1][0],
                                b[2 * nj + 1][1]);
                } else {
                    int krow = ks + ((i & 1) << 3) + (lane & 7), col = wn + nj * 16 + ((i >> 1) << 3);
                    ldmatrix_x4_trans(sb + k_by_rows(krow, col >> 3), b[2 * nj][0], b[2 * nj][1], b[2 * nj + 1][0],
                                      b[2 * nj + 1][1]);
                }
            }
#pragma unroll
            for (int mi = 0; mi < 4; mi++)
#pragma unroll
                for (int ni = 0; ni < 4; ni++) mma_bf16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
        }
    }
    cp_async_wait<0>();

    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < 4; mi++) {
#pragma unroll
        for (int half = 0; half < 2; half++) {
            int gm = m0 + wm + mi * 16 + g + half * 8;
            if (gm >= M) continue;
#pragma unroll
            for (int ni = 0; ni < 4; ni++) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int gn = n0 + wn + ni * 8 + 2 * t + e;
                    if (gn < N) {
                        float v = acc[mi][ni][half * 2 + e];
                        float* c = C + (i64)gm * ldc + gn;
                        *c = beta == 0.f ? alpha * v : alpha * v + beta * *c;
                    }
                }
            }
        }
    }
}

#define GEMM_BF16(suffix, TA, TB, aligned)                                                                         \
    extern "C" __global__ void __launch_bounds__(256) gemm_bf16_##suffix(                                           \
        const unsigned short* A, const unsigned short* B, float* C, int M, int N, int K, i64 lda, i64 ldb, i64 ldc, \
        i64 sA, i64 sB, i64 sC, float alpha, float beta) {                                                         \
        gemm_bf16<TA, TB, aligned>(A, B, C, M, N, K, lda, ldb, ldc, sA, sB, sC, alpha, beta);                      \
    }

GEMM_BF16(nn_a, false, false, true)
GEMM_BF16(nt_a, false, true, true)
GEMM_BF16(tn_a, true, false, true)
GEMM_BF16(tt_a, true, true, true)
GEMM_BF16(nn_u, false, false, false)
GEMM_BF16(nt_u, false, true, false)
GEMM_BF16(tn_u, true, false, false)
GEMM_BF16(tt_u, true, true, false)

// ---- split K ----------------------------------------------------------------------------------------------------

// The second half of a product split along K (a product of few tiles of C and a long K, such as a weight gradient
// over many tokens, runs its K-slices as a batch of partial products, each C' = op(A)_s · op(B)_s into W):
// C = alpha · Σ_s W[s] + beta · C over M×N, C with row stride ldc, W holding `splits` M×N matrices one after the
// other. The partials are summed in s order, so the result does not depend on timing. With beta == 0, C is not
// read.
extern "C" __global__ void gemm_splitk_reduce(const float* W, float* C, int M, int N, i64 ldc, int splits, float alpha,
                                              float beta) {
    const i64 total = (i64)M * N;
    for (i64 e = global_index(); e < total; e += global_stride()) {
        float s = 0.f;
        for (int p = 0; p < splits; p++) s += W[p * total + e];
        float* c = C + (e / N) * ldc + e % N;
        *c = beta == 0.f ? alpha * s : alpha * s + beta * *c;
    }
}
