/*
 * A native reference for the decode bar of bench/quant: the matrix-vector product with 4-bit g128 asymmetric
 * weights, y[i] = sum_g s[i,g] * (sum_{j in g} q[i,j] * x[j]) - sum_g s[i,g] * z[i,g] * (sum_{j in g} x[j]),
 * computed the way jtune's QuantMatvec does it (8 codes per 32-bit lane masked in place against an x permuted and
 * scaled by 2^-4s, four rows side by side, one contiguous run of rows per thread), in C with AVX-512 intrinsics and
 * gcc -O3 -march=native. It reports weight bytes (codes, scales, zero points) read per second, the median over the
 * repetitions, and, for scale, the read bandwidth of a sum over 64 MB with the same threads.
 *
 * It tells how far the JVM's code is from what this machine does with the same algorithm natively; it is not a
 * peer library. With a fifth argument, vnni, it runs instead what the Vector API of JDK 25 cannot express: x rounded
 * to int8 per group of 128 and the codes multiplied in integers by AVX-512 VNNI's vpdpbusd (64 products an
 * instruction), the lever this machine would need for the decode bar. Rows 0..3 are checked against a plain scalar
 * computation before timing (within 1e-4 of the sum of |terms|; 2e-2 for vnni, whose x is rounded to 8 bits).
 *
 * Usage: quant_matvec ROWS COLS THREADS REPS [vnni]   (COLS a multiple of 128, ROWS of 4)
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int rows, cols, groups, threads;
static uint32_t *codes;              /* rows x cols/8 lanes of 8 codes, code s of a lane in bits 4s..4s+3 */
static float *scales, *zeros, *x, *xp, *xsum, *y;
static int8_t *xlo, *xhi;          /* vnni: x rounded to int8, even and odd columns of each group */
static float *xdq;                  /* vnni: the step of each group of x */
static int vnni;
static float *big;                   /* 64 MB for the read bandwidth */
static size_t bigN;
static double partial[64];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* xp: in each chunk of 128 columns, xp[16 s + m] = x[8 m + s] * 2^-4s (s < 7), and x[8 m + 7] for the top code,
 * which is shifted down instead of masked. */
static void prepare(void) {
    for (int c0 = 0; c0 < cols; c0 += 128)
        for (int m = 0; m < 16; m++)
            for (int s = 0; s < 8; s++)
                xp[c0 + 16 * s + m] = x[c0 + 8 * m + s] * (s == 7 ? 1.0f : ldexpf(1.0f, -4 * s));
    for (int g = 0; g < groups; g++) {
        float sum = 0, max = 0;
        for (int j = 0; j < 128; j++) {
            sum += x[128 * g + j];
            max = fmaxf(max, fabsf(x[128 * g + j]));
        }
        xsum[g] = sum;
        xdq[g] = max > 0 ? max / 127 : 1;
        /* Byte b of a row's codes holds the codes of columns 2b (low nibble) and 2b + 1 (high nibble). */
        for (int b = 0; b < 64; b++) {
            xlo[64 * g + b] = (int8_t)lrintf(x[128 * g + 2 * b] / xdq[g]);
            xhi[64 * g + b] = (int8_t)lrintf(x[128 * g + 2 * b + 1] / xdq[g]);
        }
    }
}

/* sum_g s[i,g] * z[i,g] * (sum of x over group g) */
static float zeroTerm(int i) {
    float zs = 0;
    for (int g = 0; g < groups; g++) {
        size_t e = (size_t)i * groups + g;
        zs += scales[e] * zeros[e] * xsum[g];
    }
    return zs;
}

static void matvec(int r0, int r1) {
    const __m512i m0 = _mm512_set1_epi32(0xf), m1 = _mm512_set1_epi32(0xf0), m2 = _mm512_set1_epi32(0xf00),
                  m3 = _mm512_set1_epi32(0xf000), m4 = _mm512_set1_epi32(0xf0000), m5 = _mm512_set1_epi32(0xf00000),
                  m6 = _mm512_set1_epi32(0xf000000);
    const __m512i mask[7] = {m0, m1, m2, m3, m4, m5, m6};
    for (int i = r0; i < r1; i += 4) {
        const uint32_t *p[4];
        __m512 t[4];
        for (int r = 0; r < 4; r++) {
            p[r] = codes + (size_t)(i + r) * (cols / 8);
            t[r] = _mm512_setzero_ps();
        }
        for (int c = 0; c < groups; c++) {
            __m512i v[4];
            __m512 a[4];
            const float *xc = xp + 128 * c;
            __m512 xv = _mm512_loadu_ps(xc + 112);
            for (int r = 0; r < 4; r++) {
                v[r] = _mm512_loadu_si512(p[r] + 16 * c);
                a[r] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(v[r], 28)), xv);
            }
            for (int s = 0; s < 7; s++) {
                xv = _mm512_loadu_ps(xc + 16 * s);
                for (int r = 0; r < 4; r++)
                    a[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(v[r], mask[s])), xv, a[r]);
            }
            for (int r = 0; r < 4; r++)
                t[r] = _mm512_fmadd_ps(a[r], _mm512_set1_ps(scales[(size_t)(i + r) * groups + c]), t[r]);
        }
        for (int r = 0; r < 4; r++) y[i + r] = _mm512_reduce_add_ps(t[r]) - zeroTerm(i + r);
    }
}

/* The integer variant: per group, vpdpbusd of the low and the high nibbles against the int8 x, then one convert and
 * one FMA with scale times step. */
static void matvecVnni(int r0, int r1) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int i = r0; i < r1; i += 4) {
        __m512 t[4];
        for (int r = 0; r < 4; r++) t[r] = _mm512_setzero_ps();
        for (int c = 0; c < groups; c++) {
            __m512i xl = _mm512_loadu_si512(xlo + 64 * c), xh = _mm512_loadu_si512(xhi + 64 * c);
            for (int r = 0; r < 4; r++) {
                __m512i v = _mm512_loadu_si512(codes + (size_t)(i + r) * (cols / 8) + 16 * c);
                __m512i a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(v, low), xl);
                a = _mm512_dpbusd_epi32(a, _mm512_and_si512(_mm512_srli_epi16(v, 4), low), xh);
                t[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a),
                                       _mm512_set1_ps(scales[(size_t)(i + r) * groups + c] * xdq[c]), t[r]);
            }
        }
        for (int r = 0; r < 4; r++) y[i + r] = _mm512_reduce_add_ps(t[r]) - zeroTerm(i + r);
    }
}

static double sum(size_t from, size_t to) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t e = from; e < to; e += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(big + e));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(big + e + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(big + e + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(big + e + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* Persistent threads released by a generation counter: thread 0 is the main thread. */
static atomic_int generation, done, job;

static void part(int t) {
    if (atomic_load(&job) == 0) {
        int blocks = rows / 4;
        int r0 = 4 * (int)((long)t * blocks / threads), r1 = 4 * (int)((long)(t + 1) * blocks / threads);
        if (vnni) matvecVnni(r0, r1);
        else matvec(r0, r1);
    } else {
        size_t per = bigN / threads / 64 * 64;
        partial[t] = sum(t * per, (t + 1) * per);
    }
}

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg, seen = 0;
    for (;;) {
        int g;
        while ((g = atomic_load(&generation)) == seen) _mm_pause();
        if (g < 0) return NULL;
        seen = g;
        part(t);
        atomic_fetch_add(&done, 1);
    }
}

static void run(int which) {
    atomic_store(&job, which);
    atomic_store(&done, 0);
    atomic_fetch_add(&generation, 1);
    part(0);
    atomic_fetch_add(&done, 1);
    while (atomic_load(&done) < threads) _mm_pause();
}

static int cmp(const void *a, const void *b) {
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

static double median_seconds(int which, int reps) {
    double *t = malloc(sizeof(double) * reps);
    for (int r = 0; r < 3; r++) run(which);
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        run(which);
        t[r] = now() - t0;
    }
    qsort(t, reps, sizeof(double), cmp);
    double m = t[reps / 2];
    free(t);
    return m;
}

int main(int argc, char **argv) {
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "vnni") == 0)) {
        fprintf(stderr, "usage: quant_matvec ROWS COLS THREADS REPS [vnni]\n");
        return 2;
    }
    rows = atoi(argv[1]);
    cols = atoi(argv[2]);
    threads = atoi(argv[3]);
    int reps = atoi(argv[4]);
    vnni = argc == 6;
    if (rows <= 0 || cols <= 0 || cols % 128 || threads < 1 || threads > 64 || rows % 4 || reps < 1) {
        fprintf(stderr, "quant_matvec: COLS must be a positive multiple of 128, ROWS of 4, THREADS from 1 to 64, "
                        "REPS at least 1; got %s %s %s %s\n", argv[1], argv[2], argv[3], argv[4]);
        return 2;
    }
    groups = cols / 128;
    size_t lanes = (size_t)rows * cols / 8;
    codes = aligned_alloc(64, lanes * 4);
    scales = malloc(sizeof(float) * rows * groups);
    zeros = malloc(sizeof(float) * rows * groups);
    x = malloc(sizeof(float) * cols);
    xp = aligned_alloc(64, sizeof(float) * cols);
    xsum = malloc(sizeof(float) * groups);
    xdq = malloc(sizeof(float) * groups);
    xlo = aligned_alloc(64, cols / 2);
    xhi = aligned_alloc(64, cols / 2);
    y = malloc(sizeof(float) * rows);
    bigN = (size_t)16 << 20;
    big = aligned_alloc(64, bigN * sizeof(float));
    srand(7);
    for (size_t e = 0; e < lanes; e++) codes[e] = (uint32_t)rand() << 16 ^ (uint32_t)rand();
    for (size_t e = 0; e < (size_t)rows * groups; e++) {
        scales[e] = 0.001f + (rand() % 1000) * 1e-5f;
        zeros[e] = (float)(rand() % 16);
    }
    for (int j = 0; j < cols; j++) x[j] = (rand() % 2001 - 1000) * 1e-3f;
    for (size_t e = 0; e < bigN; e++) big[e] = 1.0f;
    prepare();

    pthread_t tid[64];
    for (int t = 1; t < threads; t++) pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t);

    run(0);
    for (int i = 0; i < 4; i++) {
        double want = 0, scale = 0;
        for (int j = 0; j < cols; j++) {
            int q = codes[(size_t)i * (cols / 8) + j / 8] >> (4 * (j % 8)) & 15;
            size_t e = (size_t)i * groups + j / 128;
            double w = scales[e] * (q - zeros[e]);
            want += w * x[j];
            scale += fabs(w * x[j]);
        }
        if (fabs(y[i] - want) > (vnni ? 2e-2 : 1e-4) * scale + 1e-6) {
            fprintf(stderr, "quant_matvec: row %d gives %g, the scalar computation %g\n", i, y[i], want);
            return 1;
        }
    }

    double bytes = (double)lanes * 4 + (double)rows * groups * 8;
    double tm = median_seconds(0, reps);
    double ts = median_seconds(1, reps);
    double total = 0;
    for (int t = 0; t < threads; t++) total += partial[t];
    if (total != (double)(bigN / threads / 64 * 64 * threads)) {
        fprintf(stderr, "quant_matvec: the sum of ones came to %g\n", total);
        return 1;
    }
    atomic_store(&generation, -1);
    for (int t = 1; t < threads; t++) pthread_join(tid[t], NULL);
    printf("native%s int4 g128 %dx%d, %d threads: matvec %.1f GB/s of weights; sum of 64 MB %.1f GB/s\n", vnni ? " vnni" : "", rows, cols,
           threads, bytes / tm / 1e9, (double)(bigN / threads / 64 * 64 * threads) * 4 / ts / 1e9);
    return 0;
}
