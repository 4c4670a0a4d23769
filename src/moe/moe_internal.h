/* moe_internal.h - shared by the files of src/moe only. */
#ifndef MOESIM_MOE_INTERNAL_H
#define MOESIM_MOE_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#define MS_OMP(x) _Pragma(#x)
static inline int ms_moe_thread_id(void) { return omp_get_thread_num(); }
#else
#define MS_OMP(x)
static inline int ms_moe_thread_id(void) { return 0; }
#endif

/* Largest hidden / intermediate size accepted (keeps every index in 64 bits
 * and every GEMM dimension in a BLAS int). */
#define MS_MOE_MAX_DIM (1u << 20)

/* Weight rows per work unit of the TILES threading: auto picks between these. */
#define MS_MOE_TILE_MIN 64
#define MS_MOE_TILE_MAX 512

/* Tokens per work unit up to which the direct small-M kernel replaces sgemm. */
#ifndef MS_MOE_SMALL_M
#define MS_MOE_SMALL_M 8
#endif

#include "moesim/moe.h"

/* C[m][n] = A[m][k] . B[n][k]^T (beta 0) with B read straight from its
 * storage (fp32 or bf16), for 1 <= m <= MS_MOE_SMALL_M on CPUs with AVX2 and
 * FMA. Returns 1 when done, 0 when not applicable (caller uses sgemm). */
int ms_moe_small_gemm(uint32_t m, uint32_t n, uint32_t k, const float *a, uint32_t lda, const void *b,
                      ms_moe_dtype dt, uint32_t ldb, float *c, uint32_t ldc);

/* Forwards with fewer FLOPs than this run on one thread. */
#define MS_MOE_SERIAL_FLOPS 4e6

/* The benchmark clock: wall seconds, or (cpu) this process's CPU seconds
 * divided by the threads working, which estimates the wall time on idle
 * cores when other processes share the machine. */
static inline double ms_moe_clock(int cpu, int threads) {
    if (!cpu) return ms_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9) / (threads > 0 ? threads : 1);
}

/* Most groups a token may use (ms_moe_config_check enforces it). */
#define MS_MOE_MAX_TOPK_GROUP 64

/* Most expert groups (ms_moe_config_check enforces it). */
#define MS_MOE_MAX_GROUPS 1024

/* Experts whose selection scores the router caches on the stack. */
#define MS_MOE_SCORE_CACHE 1024

/* Widens n bf16 values to fp32 (exact). */
static inline void ms_moe_widen_bf16(const uint16_t *src, float *dst, uint64_t n) {
    MS_OMP(omp simd)
    for (uint64_t j = 0; j < n; j++) {
        uint32_t v = (uint32_t)src[j] << 16;
        float f;
        memcpy(&f, &v, 4);
        dst[j] = f;
    }
}

#endif
