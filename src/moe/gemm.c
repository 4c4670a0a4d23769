/* gemm.c - the matrix product under the optimized MoE forward (cblas_sgemm,
 * or a blocked C GEMM without BLAS), BLAS thread control, machine
 * description and the matrix-product peak. */
#include "moesim/moe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moe/moe_internal.h"

#ifdef MOESIM_HAVE_BLAS
#include <cblas.h>
#endif

/* The C GEMM: C[i][j] (=|+=) sum_k A[i][k] * B[j][k]. B is packed per
 * (NB columns x KB depth) block into Bp[kk][jj] so the inner loop is a
 * contiguous axpy over NB accumulators (vectorised by the compiler). */
#define GEMM_NB 64
#define GEMM_KB 256

void ms_moe_sgemm_nt_c(uint32_t m, uint32_t n, uint32_t k, const float *a, uint32_t lda, const float *b,
                       uint32_t ldb, float beta, float *c, uint32_t ldc) {
    float bp[GEMM_KB * GEMM_NB];
    float acc[GEMM_NB];
    if (k == 0) {
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < n; j++) c[(uint64_t)i * ldc + j] = beta == 0.0f ? 0.0f : c[(uint64_t)i * ldc + j];
        return;
    }
    for (uint32_t j0 = 0; j0 < n; j0 += GEMM_NB) {
        uint32_t nb = n - j0 < GEMM_NB ? n - j0 : GEMM_NB;
        for (uint32_t k0 = 0; k0 < k; k0 += GEMM_KB) {
            uint32_t kb = k - k0 < GEMM_KB ? k - k0 : GEMM_KB;
            for (uint32_t kk = 0; kk < kb; kk++)
                for (uint32_t jj = 0; jj < GEMM_NB; jj++)
                    bp[kk * GEMM_NB + jj] = jj < nb ? b[(uint64_t)(j0 + jj) * ldb + k0 + kk] : 0.0f;
            for (uint32_t i = 0; i < m; i++) {
                float *cr = c + (uint64_t)i * ldc + j0;
                const float *ar = a + (uint64_t)i * lda + k0;
                if (k0 == 0 && beta == 0.0f) memset(acc, 0, sizeof acc);
                else {
                    memset(acc, 0, sizeof acc);
                    memcpy(acc, cr, nb * sizeof(float));
                }
                for (uint32_t kk = 0; kk < kb; kk++) {
                    float av = ar[kk];
                    const float *br = bp + kk * GEMM_NB;
                    for (uint32_t jj = 0; jj < GEMM_NB; jj++) acc[jj] += av * br[jj];
                }
                memcpy(cr, acc, nb * sizeof(float));
            }
        }
    }
}

/* ---- small-M products straight from the stored weights (fp32 or bf16),
 * AVX2 + FMA: one pass over each weight row for all m <= 8 activation rows,
 * no packing and no widening buffer. At a few tokens per expert the product
 * is bound by reading the weights, and this reads each weight once (half the
 * bytes in bf16), where sgemm packs the weight tile first. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MS_MOE_HAVE_SMALL_KERNEL 1

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 load8(const void *b, int bf16, uint64_t i) {
    if (bf16) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)b + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_loadu_ps((const float *)b + i);
}

__attribute__((target("avx2,fma"), always_inline)) static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* One kernel per (m, storage): the i loops unroll completely so the 2m
 * accumulators live in registers. */
#define SMALL_KERNEL(M, BF)                                                                                         \
    __attribute__((target("avx2,fma"))) static void small_m##M##_##BF(uint32_t n, uint32_t k, const float *a,       \
                                                                      uint32_t lda, const void *b, uint32_t ldb,    \
                                                                      float *c, uint32_t ldc) {                     \
        for (uint32_t j = 0; j < n; j++) {                                                                          \
            __m256 s0[M], s1[M];                                                                                    \
            _Pragma("GCC unroll 8") for (int i = 0; i < M; i++) s0[i] = s1[i] = _mm256_setzero_ps();                \
            uint64_t row = (uint64_t)j * ldb, kk = 0;                                                               \
            for (; kk + 16 <= k; kk += 16) {                                                                        \
                __m256 w0 = load8(b, BF, row + kk), w1 = load8(b, BF, row + kk + 8);                                \
                _Pragma("GCC unroll 8") for (int i = 0; i < M; i++) {                                               \
                    s0[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a + (uint64_t)i * lda + kk), w0, s0[i]);                \
                    s1[i] = _mm256_fmadd_ps(_mm256_loadu_ps(a + (uint64_t)i * lda + kk + 8), w1, s1[i]);            \
                }                                                                                                   \
            }                                                                                                       \
            for (int i = 0; i < M; i++) {                                                                           \
                float t = hsum8(_mm256_add_ps(s0[i], s1[i]));                                                       \
                for (uint64_t q = kk; q < k; q++)                                                                   \
                    t += a[(uint64_t)i * lda + q] *                                                                 \
                         (BF ? ms_moe_bf16_to_f32(((const uint16_t *)b)[row + q]) : ((const float *)b)[row + q]);  \
                c[(uint64_t)i * ldc + j] = t;                                                                       \
            }                                                                                                       \
        }                                                                                                           \
    }
#define SMALL_KERNELS(M) SMALL_KERNEL(M, 0) SMALL_KERNEL(M, 1)
SMALL_KERNELS(1)
SMALL_KERNELS(2)
SMALL_KERNELS(3)
SMALL_KERNELS(4)
SMALL_KERNELS(5)
SMALL_KERNELS(6)
SMALL_KERNELS(7)
SMALL_KERNELS(8)
#endif

int ms_moe_small_gemm(uint32_t m, uint32_t n, uint32_t k, const float *a, uint32_t lda, const void *b,
                      ms_moe_dtype dt, uint32_t ldb, float *c, uint32_t ldc) {
#ifdef MS_MOE_HAVE_SMALL_KERNEL
    if (m == 0 || m > MS_MOE_SMALL_M) return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    typedef void (*kernel)(uint32_t, uint32_t, const float *, uint32_t, const void *, uint32_t, float *, uint32_t);
    static const kernel ks[2][8] = {
        {small_m1_0, small_m2_0, small_m3_0, small_m4_0, small_m5_0, small_m6_0, small_m7_0, small_m8_0},
        {small_m1_1, small_m2_1, small_m3_1, small_m4_1, small_m5_1, small_m6_1, small_m7_1, small_m8_1}};
    ks[dt == MS_MOE_BF16][m - 1](n, k, a, lda, b, ldb, c, ldc);
    return 1;
#else
    (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)dt, (void)ldb, (void)c, (void)ldc;
    return 0;
#endif
}

void ms_moe_sgemm_nt(uint32_t m, uint32_t n, uint32_t k, const float *a, uint32_t lda, const float *b, uint32_t ldb,
                     float beta, float *c, uint32_t ldc) {
    if (m == 0 || n == 0) return;
#ifdef MOESIM_HAVE_BLAS
    if (k == 0) {
        ms_moe_sgemm_nt_c(m, n, k, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                beta, c, (int)ldc);
#else
    ms_moe_sgemm_nt_c(m, n, k, a, lda, b, ldb, beta, c, ldc);
#endif
}

int ms_moe_blas_set_threads(int n) {
#if defined(MOESIM_HAVE_BLAS) && defined(OPENBLAS_VERSION)
    int prev = openblas_get_num_threads();
    if (n > 0 && n != prev) openblas_set_num_threads(n);
    return prev;
#else
    (void)n;
    return 1;
#endif
}

void ms_moe_blas_describe(char *buf, size_t len) {
#if defined(MOESIM_HAVE_BLAS) && defined(OPENBLAS_VERSION)
    char ver[32];
    snprintf(ver, sizeof ver, "%s", OPENBLAS_VERSION);
    char *v = ver;
    while (*v == ' ') v++;
    size_t l = strlen(v);
    while (l && v[l - 1] == ' ') v[--l] = '\0';
    snprintf(buf, len, "%s (%s kernels, %d threads max)", v, openblas_get_corename(), openblas_get_num_procs());
#elif defined(MOESIM_HAVE_BLAS)
    snprintf(buf, len, "cblas");
#else
    snprintf(buf, len, "none (blocked C GEMM)");
#endif
}

void ms_moe_blas_hint(char *buf, size_t len) {
    if (len) buf[0] = '\0';
#if defined(MOESIM_HAVE_BLAS) && defined(OPENBLAS_VERSION) && defined(__x86_64__) && defined(__GNUC__)
    const char *core = openblas_get_corename();
    __builtin_cpu_init();
    const char *env = getenv("OPENBLAS_CORETYPE");
    if (!core || !__builtin_cpu_supports("avx512f") ||
        !(strcmp(core, "Haswell") == 0 || strcmp(core, "Zen") == 0 || strcmp(core, "Sandybridge") == 0))
        return;
    if (env && *env)
        snprintf(buf, len,
                 "OPENBLAS_CORETYPE=%s in the environment keeps OpenBLAS on %s kernels on this AVX-512 CPU; "
                 "unset it or set SkylakeX for the AVX-512 kernels (about 1.8x faster here, docs/PERFORMANCE.md)",
                 env, core);
    else
        snprintf(buf, len,
                 "OpenBLAS chose its %s kernels on this AVX-512 CPU; OPENBLAS_CORETYPE=SkylakeX selects the "
                 "AVX-512 ones (about 1.8x faster here, docs/PERFORMANCE.md)",
                 core);
#endif
}

void ms_moe_machine_describe(char *buf, size_t len) {
    char model[256] = "unknown CPU";
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (fp) {
        char line[512];
        while (fgets(line, sizeof line, fp)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            char *p = strchr(line, ':');
            if (!p) continue;
            p++;
            while (*p == ' ' || *p == '\t') p++;
            size_t l = strlen(p);
            while (l && (p[l - 1] == '\n' || p[l - 1] == ' ')) p[--l] = '\0';
            snprintf(model, sizeof model, "%s", p);
            break;
        }
        fclose(fp);
    }
    snprintf(buf, len, "%s, %ld cores", model, sysconf(_SC_NPROCESSORS_ONLN));
}

/* One measurement of the n^3 product: BLAS-threaded (blocks = 0) or split in
 * column blocks over OpenMP threads with single-threaded BLAS calls. */
static double peak_once(uint32_t n, int threads, uint32_t block, const float *a, const float *b, float *c,
                        bool cpu) {
    double t0 = ms_moe_clock(cpu, threads);
    if (block == 0) {
        ms_moe_sgemm_nt(n, n, n, a, n, b, n, 0.0f, c, n);
    } else {
        int prev = ms_moe_blas_set_threads(1);
        (void)threads;
        MS_OMP(omp parallel for schedule(dynamic, 1) num_threads(threads))
        for (int64_t q = 0; q < (int64_t)((n + block - 1) / block); q++) {
            uint32_t j0 = (uint32_t)q * block, nb = n - j0 < block ? n - j0 : block;
#ifdef MOESIM_HAVE_BLAS
            ms_moe_sgemm_nt(n, nb, n, a, n, b + (uint64_t)j0 * n, n, 0.0f, c + j0, n);
#else
            ms_moe_sgemm_nt_c(n, nb, n, a, n, b + (uint64_t)j0 * n, n, 0.0f, c + j0, n);
#endif
        }
        ms_moe_blas_set_threads(prev);
    }
    return ms_moe_clock(cpu, threads) - t0;
}

ms_status ms_moe_measure_peak(uint32_t n, int threads, int reps, bool cpu_clock, double *gflops,
                              ms_error *err) {
    *gflops = 0;
    if (n == 0) return ms_error_set(err, MS_E_INPUT, "peak: matrix size 0");
    if (threads <= 0) threads = ms_thread_count();
    if (reps <= 0) reps = 1;
    float *a = ms_alloc_array((size_t)n * n, sizeof(float), err);
    float *b = ms_alloc_array((size_t)n * n, sizeof(float), err);
    float *c = ms_alloc_array((size_t)n * n, sizeof(float), err);
    if (!a || !b || !c) {
        ms_free(a);
        ms_free(b);
        ms_free(c);
        return MS_E_NOMEM;
    }
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)((i * 7) % 13) * 0.01f - 0.06f;
        b[i] = (float)((i * 5) % 11) * 0.01f - 0.05f;
    }
    double best = 1e300;
    int prev = ms_moe_blas_set_threads(threads);
    /* the first run of each kind warms up; then the kinds alternate */
    for (int r = 0; r < reps + 1; r++) {
        double dt;
#ifdef MOESIM_HAVE_BLAS
        dt = peak_once(n, threads, 0, a, b, c, cpu_clock);
        if (r > 0 && dt < best) best = dt;
        if (threads > 1) {
            dt = peak_once(n, threads, 256, a, b, c, cpu_clock);
            if (r > 0 && dt < best) best = dt;
        }
#else
        dt = peak_once(n, threads, 256, a, b, c, cpu_clock);
        if (r > 0 && dt < best) best = dt;
#endif
    }
    ms_moe_blas_set_threads(prev);
    *gflops = 2.0 * n * (double)n * n / best / 1e9;
    ms_free(a);
    ms_free(b);
    ms_free(c);
    return MS_OK;
}
