/* bench_ingest.c - trace ingest speed against raw zlib inflate.
 *
 * Reads every npz of a trace directory into memory once, then times, on one
 * thread: (a) inflating every zip member with zlib alone (walking local
 * headers, no validation) - the floor any npz reader pays; (b) moesim's
 * ms_npz_open_mem + ms_npz_read_array + ms_npy_to_u16 over the same bytes.
 * The ratio (b-a)/a is the parsing overhead. Then (c) ms_trace_load end to end
 * with all threads, from disk (page cache). Trace: MOESIM_BENCH_TRACE or
 * ../shared/data/deepseek-v2-lite-puffin. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bench.h"
#include "moesim/trace.h"

typedef struct blob {
    uint8_t *buf;
    size_t len;
} blob;

typedef struct corpus {
    blob *files;
    size_t n;
    size_t bytes;
    uint8_t *scratch;
    size_t scratch_len;
    uint64_t sink;
} corpus;

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int read_corpus(const char *dir, corpus *c) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".npz")) continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n] = malloc(strlen(dir) + l + 2);
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    c->files = calloc(n, sizeof *c->files);
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        ms_error err;
        if (ms_file_read_all(names[i], &c->files[i].buf, &c->files[i].len, &err) != MS_OK) return -1;
        c->bytes += c->files[i].len;
        free(names[i]);
    }
    free(names);
    c->scratch_len = 64 << 20;
    c->scratch = malloc(c->scratch_len);
    return n ? 0 : -1;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* (a) zlib alone: walk local headers, inflate each member. */
static void inflate_only(void *ctx) {
    corpus *c = ctx;
    for (size_t i = 0; i < c->n; i++) {
        const uint8_t *p = c->files[i].buf, *end = p + c->files[i].len;
        while (p + 30 <= end && rd32(p) == 0x04034b50) {
            uint16_t method = rd16(p + 8);
            uint32_t csize = rd32(p + 18);
            const uint8_t *data = p + 30 + rd16(p + 26) + rd16(p + 28);
            if (data + csize > end) break;
            if (method == 8) {
                z_stream s;
                memset(&s, 0, sizeof s);
                inflateInit2(&s, -MAX_WBITS);
                s.next_in = (Bytef *)data;
                s.avail_in = csize;
                s.next_out = c->scratch;
                s.avail_out = (uInt)c->scratch_len;
                inflate(&s, Z_FINISH);
                c->sink += s.total_out + c->scratch[0];
                inflateEnd(&s);
            } else {
                c->sink += csize;
            }
            p = data + csize;
        }
    }
}

/* (b) moesim's reader on the same bytes. */
static void moesim_parse(void *ctx) {
    corpus *c = ctx;
    static const char *names[] = {"request_id", "prompt_token_ids", "output_token_ids", "routed_experts"};
    for (size_t i = 0; i < c->n; i++) {
        ms_npz *z;
        ms_error err;
        if (ms_npz_open_mem(c->files[i].buf, c->files[i].len, "bench", &z, &err) != MS_OK) abort();
        for (int k = 0; k < 4; k++) {
            ms_npy_array a = {0};
            if (ms_npz_read_array(z, names[k], &a, &err) != MS_OK) abort();
            if (k == 3) {
                if (a.count * 2 > c->scratch_len) abort();
                if (ms_npy_to_u16(&a, 65536, (uint16_t *)c->scratch, &err) != MS_OK) abort();
            }
            c->sink += a.count;
            ms_npy_array_clear(&a);
        }
        ms_npz_free(z);
    }
}

int bench_ingest(void) {
    const char *dir = getenv("MOESIM_BENCH_TRACE");
    if (!dir) dir = "../shared/data/deepseek-v2-lite-puffin";
    corpus c = {0};
    if (read_corpus(dir, &c) != 0) {
        printf("ingest: no trace at %s (set MOESIM_BENCH_TRACE): skipped\n", dir);
        return 0;
    }
    ms_trace *t;
    ms_error err;
    const char *paths[1] = {dir};
    double t_load = 1e300;
    for (int r = 0; r < 3; r++) {
        double t0 = ms_now();
        if (ms_trace_load(paths, 1, NULL, &t, &err) != MS_OK) {
            printf("ingest: %s\n", err.msg);
            return 1;
        }
        double dt = ms_now() - t0;
        if (dt < t_load) t_load = dt;
        if (r < 2) ms_trace_free(t);
    }
    double events = (double)t->n_tokens * t->n_layers * t->top_k;
    double t_inflate = bench_best_of(3, inflate_only, &c);
    double t_parse = bench_best_of(3, moesim_parse, &c);
    double mb = (double)c.bytes / 1e6;
    printf("trace: %s (%zu files, %.1f MB npz, %.0f routing events)\n", dir, c.n, mb, events);
    printf("zlib inflate only, 1 thread:      %.3f s  %.1f MB/s\n", t_inflate, mb / t_inflate);
    printf("moesim npz parse, 1 thread:       %.3f s  %.1f MB/s  %.3g events/s\n", t_parse, mb / t_parse,
           events / t_parse);
    printf("parsing overhead over inflate:    %.1f%%\n", 100 * (t_parse - t_inflate) / t_inflate);
    printf("ms_trace_load, %d threads, cached: %.3f s  %.1f MB/s  %.3g events/s\n", ms_thread_count(), t_load,
           mb / t_load, events / t_load);
    ms_trace_free(t);
    for (size_t i = 0; i < c.n; i++) ms_free(c.files[i].buf);
    free(c.files);
    free(c.scratch);
    return c.sink == 42 ? 1 : 0;
}
