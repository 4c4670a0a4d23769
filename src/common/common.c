/* common.c - errors, the allocator, atomic files, time, random numbers. */
#include "moesim/common.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------ errors */

ms_status ms_error_set(ms_error *err, ms_status st, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = st;
    }
    return st;
}

ms_status ms_error_prefix(ms_error *err, const char *prefix) {
    if (!err) return MS_OK;
    char tmp[MS_ERROR_MAX];
    size_t n = strlen(prefix);
    if (n > MS_ERROR_MAX / 2) n = MS_ERROR_MAX / 2;
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = strnlen(err->msg, MS_ERROR_MAX - 1);
    if (rest > MS_ERROR_MAX - 3 - n) rest = MS_ERROR_MAX - 3 - n;
    memcpy(tmp + n + 2, err->msg, rest);
    tmp[n + 2 + rest] = '\0';
    memcpy(err->msg, tmp, sizeof tmp);
    return err->status;
}

void ms_error_clear(ms_error *err) {
    if (err) {
        err->status = MS_OK;
        err->msg[0] = '\0';
    }
}

int ms_status_exit_code(ms_status st) {
    switch (st) {
    case MS_OK: return 0;
    case MS_E_INPUT:
    case MS_E_IO:
    case MS_E_UNSUPPORTED: return 2;
    default: return 1;
    }
}

const char *ms_status_name(ms_status st) {
    switch (st) {
    case MS_OK: return "ok";
    case MS_E_INPUT: return "bad input";
    case MS_E_IO: return "i/o error";
    case MS_E_NOMEM: return "out of memory";
    case MS_E_INTERNAL: return "internal error";
    case MS_E_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}

/* --------------------------------------------------------- allocator */

int ms_mul_overflow(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

void *ms_alloc_array(size_t n, size_t size, ms_error *err) {
    size_t bytes;
    if (ms_mul_overflow(n, size, &bytes)) {
        ms_error_set(err, MS_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ms_error_set(err, MS_E_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *ms_calloc_array(size_t n, size_t size, ms_error *err) {
    size_t bytes;
    if (ms_mul_overflow(n, size, &bytes)) {
        ms_error_set(err, MS_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(bytes ? n : 1, bytes ? size : 1);
    if (!p) ms_error_set(err, MS_E_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *ms_realloc_array(void *p, size_t n, size_t size, ms_error *err) {
    size_t bytes;
    if (ms_mul_overflow(n, size, &bytes)) {
        ms_error_set(err, MS_E_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) ms_error_set(err, MS_E_NOMEM, "out of memory allocating %zu bytes", bytes);
    return q;
}

void ms_free(void *p) { free(p); }

int ms_thread_count(void) {
#ifdef MOESIM_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------------- files */

ms_status ms_file_read_all(const char *path, uint8_t **buf, size_t *len, ms_error *err) {
    *buf = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ms_error_set(err, MS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return ms_error_set(err, MS_E_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *b = ms_alloc_array(size + 1, 1, err);
    if (!b) {
        fclose(fp);
        return ms_error_prefix(err, path);
    }
    size_t got = size ? fread(b, 1, size, fp) : 0;
    int bad = ferror(fp);
    fclose(fp);
    if (bad || got != size) {
        ms_free(b);
        return ms_error_set(err, MS_E_IO, "%s: read failed", path);
    }
    b[size] = 0;
    *buf = b;
    *len = size;
    return MS_OK;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

ms_status ms_afile_open(ms_afile *f, const char *path, ms_error *err) {
    memset(f, 0, sizeof *f);
    if (strcmp(path, "-") == 0) {
        f->fp = stdout;
        return MS_OK;
    }
    size_t n = strlen(path);
    f->path = dup_string(path);
    f->tmp = malloc(n + 16);
    if (!f->path || !f->tmp) {
        ms_afile_abort(f);
        return ms_error_set(err, MS_E_NOMEM, "out of memory");
    }
    snprintf(f->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(f->tmp);
    if (fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        ms_afile_abort(f);
        return ms_error_set(err, MS_E_IO, "%s: cannot create: %s", path, strerror(e));
    }
    fchmod(fd, 0644);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        close(fd);
        ms_afile_abort(f);
        return ms_error_set(err, MS_E_IO, "%s: cannot open for writing", path);
    }
    return MS_OK;
}

ms_status ms_afile_commit(ms_afile *f, ms_error *err) {
    if (!f->tmp) { /* stdout */
        int bad = fflush(f->fp) != 0 || ferror(f->fp);
        memset(f, 0, sizeof *f);
        return bad ? ms_error_set(err, MS_E_IO, "write to stdout failed") : MS_OK;
    }
    int bad = fflush(f->fp) != 0 || ferror(f->fp) || fsync(fileno(f->fp)) != 0;
    bad |= fclose(f->fp) != 0;
    f->fp = NULL;
    if (bad || rename(f->tmp, f->path) != 0) {
        int e = errno;
        ms_status st = ms_error_set(err, MS_E_IO, "%s: write failed: %s", f->path, strerror(e));
        ms_afile_abort(f);
        return st;
    }
    free(f->tmp);
    free(f->path);
    memset(f, 0, sizeof *f);
    return MS_OK;
}

void ms_afile_abort(ms_afile *f) {
    if (f->fp && f->fp != stdout) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    memset(f, 0, sizeof *f);
}

ms_status ms_mkdir_p(const char *path, ms_error *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return ms_error_set(err, MS_E_IO, "bad directory path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return ms_error_set(err, MS_E_IO, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ms_error_set(err, MS_E_IO, "%s: not a directory", path);
    return MS_OK;
}

double ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ random */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ms_rng_seed(ms_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ms_rng_next(ms_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t ms_rng_below(ms_rng *r, uint64_t n) {
    /* Lemire's nearly divisionless method, with rejection for exactness. */
    uint64_t x = ms_rng_next(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = (0 - n) % n;
        while (l < t) {
            x = ms_rng_next(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double ms_rng_uniform(ms_rng *r) { return (double)(ms_rng_next(r) >> 11) * 0x1.0p-53; }

double ms_rng_normal(ms_rng *r) {
    double u1 = ms_rng_uniform(r), u2 = ms_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void ms_rng_shuffle_u64(ms_rng *r, uint64_t *v, uint64_t n) {
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = ms_rng_below(r, i);
        uint64_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

uint64_t ms_fnv1a(uint64_t h, const void *data, size_t len) {
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
