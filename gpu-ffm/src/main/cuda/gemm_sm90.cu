// bf16 matrix products on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the same contract as
// gemm.cu's gemm_bf16_* (C = alpha · op(A) · op(B) + beta · C over a batch in blockIdx.z, every matrix row-major
// with unit column stride, C f32; with beta == 0, C is not read), for operands that gemm.cu's _a variants accept:
// 16-byte aligned A and B, row and batch strides that are multiples of 8 elements. Kernel names end in the layout
// as gemm.cu's do. The backend uses these on GPUs of compute capability 9.0 only (wgmma exists on sm_90a alone).
//
// A 128×256 tile of C per block of two warpgroups (256 threads), each warpgroup 64×256 with m64n256k16 wgmma and
// its 128 f32 accumulators in registers. K in steps of 64 through a 4-stage cp.async pipeline (48 KiB a stage),
// two tiles loading ahead while one tile's products are issued and the previous tile's may still run.
// Shared tiles use the 128-byte swizzle of the wgmma descriptors (16-byte chunk c of a 128-byte row r of an
// 8-row, 1024-byte atom is stored at chunk c ^ r):
//   K-major operand (A not transposed, B transposed): rows of 64 k (128 bytes), 8-row atoms one after the other;
//     descriptor stride byte offset 1024 (the next 8 rows), leading byte offset unused; the k16 slice s starts
//     32·s bytes into the row.
//   M/N-major operand (A transposed, B not): 8 k-rows of 64 m or n (128 bytes) an atom; the eight k-atoms of a
//     64-column block one after the other, then the next 64-column block; leading byte offset 8192 (the next 64
//     columns), stride byte offset 1024 (the next 8 k); the k16 slice s starts 2048·s bytes in.
// Out-of-range rows and k are loaded as zeros (cp.async with fewer source bytes), so any M, N, K work.
#include "common.cuh"

#define W_BM 128
#define W_BN 256
#define W_BK 64
#define W_STAGES 4
#define W_A_BYTES (W_BM * W_BK * 2)
#define W_B_BYTES (W_BN * W_BK * 2)
#define W_STAGE_BYTES (W_A_BYTES + W_B_BYTES)
// The M/N-major descriptor's byte offsets (swapped, the H200 check gave wrong products for every layout that
// has an M/N-major operand, at every shape).
#define W_MN_LBO 8192
#define W_MN_SBO 1024

__device__ __forceinline__ void w_cp_async16(unsigned dst, const void* src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}

// Byte offset of 16-byte chunk c (8 elements) of 128-byte row r in a swizzled tile of consecutive 8-row atoms.
__device__ __forceinline__ unsigned w_swizzle(int r, int c) {
    return r * 128 + ((c ^ (r & 7)) << 4);
}

// One operand tile of `rows` (128 or 256) × 64 k into shared memory at `dst`. kMajor: global rows run along the
// tile's rows with k contiguous; otherwise global rows are k with the tile's rows contiguous. Out-of-range
// elements are zero.
template <bool kMajor, int rows>
__device__ __forceinline__ void w_load_tile(unsigned dst, const unsigned short* G, i64 ld, int limit, int K, int r0,
                                            int k0) {
    constexpr int chunks = rows * W_BK / 8;
#pragma unroll
    for (int i = 0; i < chunks / 256; i++) {
        int q = threadIdx.x + 256 * i;
        int valid;
        const unsigned short* src;
        unsigned off;
        if (kMajor) {
            int row = q >> 3, c = q & 7;
            int gr = r0 + row, gk = k0 + c * 8;
            valid = gr < limit ? max(0, min(8, K - gk)) : 0;
            src = G + (i64)gr * ld + gk;
            off = w_swizzle(row, c);
        } else {
            constexpr int perRow = rows / 8;  // chunks along the tile's rows in one k-row
            int k = q / perRow, c = q % perRow;
            int gk = k0 + k, gr = r0 + c * 8;
            valid = gk < K ? max(0, min(8, limit - gr)) : 0;
            src = G + (i64)gk * ld + gr;
            // block of 64 columns, then its k-atom, then the row inside the atom
            off = ((c >> 3) * (W_BK / 8) + (k >> 3)) * 1024 + w_swizzle(k & 7, c & 7);
        }
        w_cp_async16(dst + off, valid > 0 ? (const void*)src : (const void*)G, valid * 2);
    }
}

// A shared-memory matrix descriptor: start address, leading and stride byte offsets, 128-byte swizzle.
__device__ __forceinline__ unsigned long long w_desc(unsigned addr, unsigned lbo, unsigned sbo) {
    return (unsigned long long)((addr & 0x3FFFF) >> 4) | ((unsigned long long)((lbo >> 4) & 0x3FFF) << 16)
           | ((unsigned long long)((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}

// D (64×256, f32, 128 registers a thread) += op(A) · op(B) for one k16 slice; transA/transB: M/N-major operand.
template <int transA, int transB>
__device__ __forceinline__ void w_mma(float* d, unsigned long long da, unsigned long long db) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, 1, 1, 1, %130, %131;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(da), "l"(db), "n"(transA), "n"(transB));
}

// Keeps the compiler from moving accumulator registers across the asynchronous products.
__device__ __forceinline__ void w_fence_operands(float* d) {
    asm volatile("" : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])::"memory");
}

template <bool TA, bool TB>
__device__ __forceinline__ void gemm_wgmma(const unsigned short* A, const unsigned short* B, float* C, int M, int N,
                                           int K, i64 lda, i64 ldb, i64 ldc, i64 sA, i64 sB, i64 sC, float alpha,
                                           float beta) {
    extern __shared__ __align__(1024) unsigned char w_smem[];
    A += blockIdx.z * sA;
    B += blockIdx.z * sB;
    C += blockIdx.z * sC;
    // The swizzle is a function of address bits, so the stages start on 1024-byte boundaries.
    const unsigned raw = (unsigned)__cvta_generic_to_shared(w_smem);
    const unsigned base = (raw + 1023) & ~1023u;
    const int m0 = blockIdx.y * W_BM, n0 = blockIdx.x * W_BN;
    const int wg = threadIdx.x >> 7;
    const int tiles = (K + W_BK - 1) / W_BK;

    auto load_stage = [&](int stage, int kt) {
        unsigned s = base + stage * W_STAGE_BYTES;
        w_load_tile<!TA, W_BM>(s, A, lda, M, K, m0, kt * W_BK);
        w_load_tile<TB, W_BN>(s + W_A_BYTES, B, ldb, N, K, n0, kt * W_BK);
    };

    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.f;

    // Tiles kt + 1 and kt + 2 load while tile kt's products are issued and tile kt - 1's may still run: the buffer
    // refilled in iteration kt is that of tile kt - 2, whose products every warpgroup had waited for before the
    // barrier.
#pragma unroll
    for (int s = 0; s < W_STAGES - 2; s++) {
        if (s < tiles) load_stage(s, s);
        asm volatile("cp.async.commit_group;\n" ::);
    }
    for (int kt = 0; kt < tiles; kt++) {
        asm volatile("cp.async.wait_group %0;\n" ::"n"(W_STAGES - 3));
        // cp.async wrote through the generic proxy; wgmma reads through the async proxy.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        int next = kt + W_STAGES - 2;
        if (next < tiles) load_stage(next % W_STAGES, next);
        asm volatile("cp.async.commit_group;\n" ::);
        const unsigned sa = base + (kt % W_STAGES) * W_STAGE_BYTES, sb = sa + W_A_BYTES;
        w_fence_operands(d);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int s = 0; s < W_BK / 16; s++) {
            // A: this warpgroup's 64 rows; B: all 256 columns.
            unsigned long long da = TA ? w_desc(sa + wg * (W_BK / 8) * 1024 + s * 2048, W_MN_LBO, W_MN_SBO)
                                       : w_desc(sa + wg * 64 * 128 + s * 32, 16, 1024);
            unsigned long long db = TB ? w_desc(sb + s * 32, 16, 1024) : w_desc(sb + s * 2048, W_MN_LBO, W_MN_SBO);
            w_mma<TA ? 1 : 0, TB ? 0 : 1>(d, da, db);
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
        w_fence_operands(d);
    }
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
    w_fence_operands(d);
    asm volatile("cp.async.wait_group 0;\n" ::);

    // Accumulators i and i + 1 of a thread (i even): n8 block i/4, row +8 for i%4 >= 2, columns 2·(lane%4) and
    // the next, stored as one 8-byte pair where both are in range and the address allows.
    const int warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int row0 = m0 + wg * 64 + warp * 16 + (lane >> 2);
#pragma unroll
    for (int i = 0; i < 128; i += 2) {
        int gm = row0 + ((i & 2) ? 8 : 0);
        int gn = n0 + (i >> 2) * 8 + 2 * (lane & 3);
        if (gm < M && gn < N) {
            float* c = C + (i64)gm * ldc + gn;
            if (gn + 1 < N && ((unsigned long long)c & 7) == 0) {
                float2 v = make_float2(alpha * d[i], alpha * d[i + 1]);
                if (beta != 0.f) {
                    float2 old = *(const float2*)c;
                    v.x += beta * old.x;
                    v.y += beta * old.y;
                }
                *(float2*)c = v;
            } else {
                c[0] = beta == 0.f ? alpha * d[i] : alpha * d[i] + beta * c[0];
                if (gn + 1 < N) c[1] = beta == 0.f ? alpha * d[i + 1] : alpha * d[i + 1] + beta * c[1];
            }
        }
    }
}

#define GEMM_WGMMA(suffix, TA, TB)                                                                                 \
    extern "C" __global__ void __launch_bounds__(256, 1) gemm_bf16_##suffix##_sm90(                                 \
        const unsigned short* A, const unsigned short* B, float* C, int M, int N, int K, i64 lda, i64 ldb, i64 ldc, \
        i64 sA, i64 sB, i64 sC, float alpha, float beta) {                                                         \
        gemm_wgmma<TA, TB>(A, B, C, M, N, K, lda, ldb, ldc, sA, sB, sC, alpha, beta);                              \
    }

GEMM_WGMMA(nn, false, false)
GEMM_WGMMA(nt, false, true)
GEMM_WGMMA(tn, true, false)
GEMM_WGMMA(tt, true, true)
