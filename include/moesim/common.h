/*
 * moesim/common.h - status codes, error reporting and the allocator shared
 * by every stage of libmoesim.
 *
 * Conventions (every public function follows them):
 *  - Functions that can fail at run time return ms_status and take a
 *    caller-provided `ms_error *err` (may be NULL) that receives a one-line
 *    message naming the input and what is wrong.
 *  - MS_E_INPUT means the input (file, option, config) is bad: the CLI exits 2.
 *    Everything else that is not MS_OK is an internal/resource failure: exit 1.
 *  - Objects come in _new/_free pairs; _free(NULL) is a no-op.
 *  - asserts guard programmer errors only, never input.
 */
#ifndef MOESIM_COMMON_H
#define MOESIM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MS_VERSION "0.1.0"
#define MS_ERROR_MAX 512

typedef enum ms_status {
    MS_OK = 0,
    MS_E_INPUT = 1,    /* bad input: file contents, options, configs */
    MS_E_IO = 2,       /* cannot open/read/write a file */
    MS_E_NOMEM = 3,    /* allocation failed or size would overflow */
    MS_E_INTERNAL = 4, /* a bug or an unexpected library failure */
    MS_E_UNSUPPORTED = 5 /* valid input this build cannot handle (e.g. no GLPK) */
} ms_status;

typedef struct ms_error {
    ms_status status;
    char msg[MS_ERROR_MAX];
} ms_error;

/* Records `st` and a printf-style message in err (if not NULL) and returns st.
 * Cannot fail; the message is truncated to MS_ERROR_MAX-1 bytes. */
ms_status ms_error_set(ms_error *err, ms_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in err with "prefix: " (e.g. a file name).
 * Returns err->status (MS_OK if err is NULL). */
ms_status ms_error_prefix(ms_error *err, const char *prefix);

/* Clears err to MS_OK with an empty message. */
void ms_error_clear(ms_error *err);

/* Process exit code for a status: 0 ok, 2 bad input or unreadable file,
 * 1 everything else (internal errors). */
int ms_status_exit_code(ms_status st);

/* Human name of a status ("bad input", "i/o error", ...). Never NULL. */
const char *ms_status_name(ms_status st);

/* The one allocator. Sizes are checked for overflow: ms_alloc_array(n, size)
 * returns NULL (and sets MS_E_NOMEM) when n*size overflows or malloc fails.
 * ms_calloc_array zero-fills. ms_free(NULL) is a no-op. */
void *ms_alloc_array(size_t n, size_t size, ms_error *err);
void *ms_calloc_array(size_t n, size_t size, ms_error *err);
void *ms_realloc_array(void *p, size_t n, size_t size, ms_error *err);
void ms_free(void *p);

/* Overflow-checked multiply: returns 0 and stores a*b in *out, or returns -1. */
int ms_mul_overflow(size_t a, size_t b, size_t *out);

/* Number of worker threads to use (OpenMP max threads, or 1 without OpenMP). */
int ms_thread_count(void);

/* ------------------------------------------------------------ files */

/* Reads a whole file into a new buffer (NUL-terminated for convenience; len
 * excludes the NUL). Fails MS_E_IO when it cannot be opened or read,
 * MS_E_NOMEM when too large to hold. */
ms_status ms_file_read_all(const char *path, uint8_t **buf, size_t *len, ms_error *err);

/* An output file written atomically: writes go to "path.tmp.XXXXXX" in the
 * same directory and ms_afile_commit renames it over path, so a failure never
 * leaves a half-written file that looks whole. path "-" writes to stdout. */
typedef struct ms_afile {
    FILE *fp;
    char *path;
    char *tmp;      /* NULL for stdout */
} ms_afile;

/* Fails MS_E_IO when the temp file cannot be created. */
ms_status ms_afile_open(ms_afile *f, const char *path, ms_error *err);
/* Flushes, fsyncs and renames. Fails MS_E_IO on any write error (the temp
 * file is removed then). Always releases f. */
ms_status ms_afile_commit(ms_afile *f, ms_error *err);
/* Removes the temp file; path untouched. Safe on a zeroed or committed f. */
void ms_afile_abort(ms_afile *f);

/* Creates a directory and its parents (mkdir -p). Fails MS_E_IO. */
ms_status ms_mkdir_p(const char *path, ms_error *err);

/* Seconds from a monotonic clock. */
double ms_now(void);

/* ------------------------------------------------------------- random */

/* xoshiro256** seeded by splitmix64: every random choice in moesim draws from
 * one of these, seeded explicitly, so the same seed gives the same bytes. */
typedef struct ms_rng {
    uint64_t s[4];
} ms_rng;

void ms_rng_seed(ms_rng *r, uint64_t seed);
uint64_t ms_rng_next(ms_rng *r);
/* Uniform integer in [0, n), n > 0 (unbiased). */
uint64_t ms_rng_below(ms_rng *r, uint64_t n);
/* Uniform double in [0, 1). */
double ms_rng_uniform(ms_rng *r);
/* Standard normal (Box-Muller, no cached state). */
double ms_rng_normal(ms_rng *r);
/* Fisher-Yates shuffle of n uint64 values. */
void ms_rng_shuffle_u64(ms_rng *r, uint64_t *v, uint64_t n);

/* FNV-1a 64-bit hash, continuing from h (start with MS_FNV_OFFSET). */
#define MS_FNV_OFFSET 0xcbf29ce484222325ULL
uint64_t ms_fnv1a(uint64_t h, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
