/* trace.c - routing traces in memory: loading per-request npz files in
 * parallel, building, validating, selecting and writing them. */
#include "moesim/trace.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef MOESIM_HAVE_OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------- building */

ms_status ms_trace_new(uint32_t n_layers, uint32_t n_experts, uint32_t top_k, uint32_t n_ranked,
                       uint64_t n_requests, uint64_t n_tokens, ms_trace **out, ms_error *err) {
    *out = NULL;
    if (n_layers == 0 || top_k == 0 || n_experts == 0)
        return ms_error_set(err, MS_E_INPUT, "trace needs at least one layer, expert and choice per token "
                            "(layers=%u experts=%u top_k=%u)", n_layers, n_experts, top_k);
    if (n_experts > 65536)
        return ms_error_set(err, MS_E_INPUT, "%u experts exceed the 16-bit ids moesim stores", n_experts);
    if (n_ranked != 0 && n_ranked < top_k)
        return ms_error_set(err, MS_E_INPUT, "ranked choices (%u) fewer than top_k (%u)", n_ranked, top_k);
    size_t ev, rk = 0;
    if (ms_mul_overflow((size_t)n_layers * top_k, (size_t)n_tokens, &ev) ||
        ms_mul_overflow((size_t)n_layers * n_ranked, (size_t)n_tokens, &rk) || n_requests > SIZE_MAX / 8)
        return ms_error_set(err, MS_E_NOMEM, "trace of %llu tokens x %u layers x %u choices is too large",
                            (unsigned long long)n_tokens, n_layers, top_k);
    ms_trace *t = ms_calloc_array(1, sizeof *t, err);
    if (!t) return MS_E_NOMEM;
    t->n_layers = n_layers;
    t->n_experts = n_experts;
    t->top_k = top_k;
    t->n_ranked = n_ranked;
    t->n_requests = n_requests;
    t->n_tokens = n_tokens;
    t->tok_offset = ms_calloc_array(n_requests + 1, sizeof *t->tok_offset, err);
    t->n_prompt = ms_calloc_array(n_requests ? n_requests : 1, sizeof *t->n_prompt, err);
    t->n_output = ms_calloc_array(n_requests ? n_requests : 1, sizeof *t->n_output, err);
    t->request_id = ms_calloc_array(n_requests ? n_requests : 1, sizeof *t->request_id, err);
    t->experts = ms_calloc_array(ev, sizeof *t->experts, err);
    if (n_ranked) t->ranked = ms_calloc_array(rk, sizeof *t->ranked, err);
    if (!t->tok_offset || !t->n_prompt || !t->n_output || !t->request_id || !t->experts ||
        (n_ranked && !t->ranked)) {
        ms_trace_free(t);
        return MS_E_NOMEM;
    }
    *out = t;
    return MS_OK;
}

void ms_trace_free(ms_trace *t) {
    if (!t) return;
    ms_free(t->tok_offset);
    ms_free(t->n_prompt);
    ms_free(t->n_output);
    ms_free(t->request_id);
    ms_free(t->experts);
    ms_free(t->ranked);
    ms_free(t);
}

/* FNV-1a-style hash over 64-bit words (bytes for the tail): a byte-wise
 * FNV over a billion ids would cost a second. */
static uint64_t hash_words(uint64_t h, const void *data, size_t len) {
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return ms_fnv1a(h, p + i, len - i);
}

ms_status ms_trace_finish(ms_trace *t, ms_error *err) {
    if (t->tok_offset[0] != 0 || t->tok_offset[t->n_requests] != t->n_tokens)
        return ms_error_set(err, MS_E_INPUT, "request offsets do not cover the %llu tokens",
                            (unsigned long long)t->n_tokens);
    for (uint64_t r = 0; r < t->n_requests; r++) {
        uint64_t rows = t->tok_offset[r + 1] - t->tok_offset[r];
        if (t->tok_offset[r + 1] < t->tok_offset[r] || t->n_prompt[r] > rows)
            return ms_error_set(err, MS_E_INPUT, "request %llu: offsets decrease or prompt (%u) exceeds rows (%llu)",
                                (unsigned long long)r, t->n_prompt[r], (unsigned long long)rows);
    }
    size_t ev = (size_t)t->n_layers * t->n_tokens * t->top_k;
    uint16_t bad = 0;
    for (size_t i = 0; i < ev; i++)
        if (t->experts[i] >= t->n_experts) bad = 1;
    if (bad) {
        for (size_t i = 0; i < ev; i++)
            if (t->experts[i] >= t->n_experts)
                return ms_error_set(err, MS_E_INPUT, "expert id %u at event %zu is out of range (experts: %u)",
                                    t->experts[i], i, t->n_experts);
    }
    uint64_t h = MS_FNV_OFFSET;
    uint32_t dims[4] = {t->n_layers, t->n_experts, t->top_k, t->n_ranked};
    h = hash_words(h, dims, sizeof dims);
    h = hash_words(h, t->tok_offset, (t->n_requests + 1) * sizeof *t->tok_offset);
    h = hash_words(h, t->n_prompt, t->n_requests * sizeof *t->n_prompt);
    h = hash_words(h, t->experts, ev * sizeof *t->experts);
    t->digest = h;
    return MS_OK;
}

ms_status ms_trace_check_compatible(const ms_trace *a, const ms_trace *b, ms_error *err) {
    if (a->n_layers != b->n_layers)
        return ms_error_set(err, MS_E_INPUT, "traces differ in layers: %u (%s) vs %u (%s)", a->n_layers, a->label,
                            b->n_layers, b->label);
    if (a->n_experts != b->n_experts)
        return ms_error_set(err, MS_E_INPUT, "traces differ in experts: %u (%s) vs %u (%s)", a->n_experts,
                            a->label, b->n_experts, b->label);
    if (a->top_k != b->top_k)
        return ms_error_set(err, MS_E_INPUT, "traces differ in top_k: %u (%s) vs %u (%s)", a->top_k, a->label,
                            b->top_k, b->label);
    return MS_OK;
}

ms_status ms_trace_select(const ms_trace *t, const uint64_t *requests, uint64_t n, ms_trace **out, ms_error *err) {
    *out = NULL;
    uint64_t tokens = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (requests[i] >= t->n_requests)
            return ms_error_set(err, MS_E_INPUT, "request index %llu out of range (%llu requests)",
                                (unsigned long long)requests[i], (unsigned long long)t->n_requests);
        tokens += t->tok_offset[requests[i] + 1] - t->tok_offset[requests[i]];
    }
    ms_trace *s;
    ms_status st = ms_trace_new(t->n_layers, t->n_experts, t->top_k, t->n_ranked, n, tokens, &s, err);
    if (st != MS_OK) return st;
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = requests[i];
        s->tok_offset[i] = pos;
        s->n_prompt[i] = t->n_prompt[r];
        s->n_output[i] = t->n_output[r];
        s->request_id[i] = t->request_id[r];
        pos += t->tok_offset[r + 1] - t->tok_offset[r];
    }
    s->tok_offset[n] = pos;
    for (uint32_t l = 0; l < t->n_layers; l++) {
        for (uint64_t i = 0; i < n; i++) {
            uint64_t r = requests[i], rows = t->tok_offset[r + 1] - t->tok_offset[r];
            memcpy(s->experts + ((size_t)l * tokens + s->tok_offset[i]) * t->top_k,
                   t->experts + ((size_t)l * t->n_tokens + t->tok_offset[r]) * t->top_k,
                   rows * t->top_k * sizeof(uint16_t));
            if (t->ranked)
                memcpy(s->ranked + ((size_t)l * tokens + s->tok_offset[i]) * t->n_ranked,
                       t->ranked + ((size_t)l * t->n_tokens + t->tok_offset[r]) * t->n_ranked,
                       rows * t->n_ranked * sizeof(uint16_t));
        }
    }
    memcpy(s->source_dtype, t->source_dtype, sizeof s->source_dtype);
    snprintf(s->label, sizeof s->label, "%s", t->label);
    st = ms_trace_finish(s, err);
    if (st != MS_OK) {
        ms_trace_free(s);
        return st;
    }
    *out = s;
    return MS_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

ms_status ms_trace_split(const ms_trace *t, double train_fraction, uint64_t seed, ms_trace **train,
                         ms_trace **test, ms_error *err) {
    *train = *test = NULL;
    if (t->n_requests < 2)
        return ms_error_set(err, MS_E_INPUT, "cannot split a trace of %llu request(s) into training and evaluation",
                            (unsigned long long)t->n_requests);
    if (!(train_fraction > 0 && train_fraction < 1))
        return ms_error_set(err, MS_E_INPUT, "training fraction must lie in (0, 1), got %g", train_fraction);
    uint64_t n = t->n_requests;
    uint64_t *idx = ms_alloc_array(n, sizeof *idx, err);
    if (!idx) return MS_E_NOMEM;
    for (uint64_t i = 0; i < n; i++) idx[i] = i;
    ms_rng rng;
    ms_rng_seed(&rng, seed);
    ms_rng_shuffle_u64(&rng, idx, n);
    uint64_t k = (uint64_t)(train_fraction * (double)n);
    if (k < 1) k = 1;
    if (k > n - 1) k = n - 1;
    qsort(idx, k, sizeof *idx, cmp_u64);
    qsort(idx + k, n - k, sizeof *idx, cmp_u64);
    ms_status st = ms_trace_select(t, idx, k, train, err);
    if (st == MS_OK) st = ms_trace_select(t, idx + k, n - k, test, err);
    if (st != MS_OK) {
        ms_trace_free(*train);
        *train = NULL;
    }
    ms_free(idx);
    return st;
}

/* ------------------------------------------------- shift: concat, permute */

/* Copies what describes t's requests (offsets, lengths, ids, provenance)
 * into s, which has t's request and token counts. */
static void copy_requests(const ms_trace *t, ms_trace *s, uint64_t req0, uint64_t tok0) {
    for (uint64_t r = 0; r < t->n_requests; r++) {
        s->tok_offset[req0 + r] = tok0 + t->tok_offset[r];
        s->n_prompt[req0 + r] = t->n_prompt[r];
        s->n_output[req0 + r] = t->n_output[r];
        s->request_id[req0 + r] = t->request_id[r];
    }
    s->tok_offset[req0 + t->n_requests] = tok0 + t->n_tokens;
    s->source_bytes += t->source_bytes;
    s->n_short_rows += t->n_short_rows;
}

ms_status ms_trace_concat(const ms_trace *a, const ms_trace *b, ms_trace **out, ms_error *err) {
    *out = NULL;
    if (a->n_layers != b->n_layers)
        return ms_error_set(err, MS_E_INPUT, "cannot concatenate traces that differ in layers: %u (%s) vs %u (%s)",
                            a->n_layers, a->label, b->n_layers, b->label);
    if (a->top_k != b->top_k)
        return ms_error_set(err, MS_E_INPUT, "cannot concatenate traces that differ in top_k: %u (%s) vs %u (%s)",
                            a->top_k, a->label, b->top_k, b->label);
    if (a->n_requests > UINT64_MAX - b->n_requests || a->n_tokens > UINT64_MAX - b->n_tokens)
        return ms_error_set(err, MS_E_NOMEM, "concatenation of %s and %s is too large", a->label, b->label);
    uint32_t E = a->n_experts > b->n_experts ? a->n_experts : b->n_experts;
    uint32_t R = a->n_ranked == b->n_ranked ? a->n_ranked : 0;
    uint64_t T = a->n_tokens + b->n_tokens;
    ms_trace *s;
    ms_status st = ms_trace_new(a->n_layers, E, a->top_k, R, a->n_requests + b->n_requests, T, &s, err);
    if (st != MS_OK) return st;
    copy_requests(a, s, 0, 0);
    copy_requests(b, s, a->n_requests, a->n_tokens);
    uint32_t K = a->top_k;
    for (uint32_t l = 0; l < a->n_layers; l++) {
        memcpy(s->experts + (size_t)l * T * K, a->experts + (size_t)l * a->n_tokens * K,
               a->n_tokens * K * sizeof(uint16_t));
        memcpy(s->experts + ((size_t)l * T + a->n_tokens) * K, b->experts + (size_t)l * b->n_tokens * K,
               b->n_tokens * K * sizeof(uint16_t));
        if (!R) continue;
        memcpy(s->ranked + (size_t)l * T * R, a->ranked + (size_t)l * a->n_tokens * R,
               a->n_tokens * R * sizeof(uint16_t));
        memcpy(s->ranked + ((size_t)l * T + a->n_tokens) * R, b->ranked + (size_t)l * b->n_tokens * R,
               b->n_tokens * R * sizeof(uint16_t));
    }
    memcpy(s->source_dtype, a->source_dtype, sizeof s->source_dtype);
    size_t cap = sizeof s->label - 1, n = strlen(a->label), lb = strlen(b->label);
    if (n > cap) n = cap;
    memcpy(s->label, a->label, n);
    if (n < cap) s->label[n++] = '+';
    if (lb > cap - n) lb = cap - n;
    memcpy(s->label + n, b->label, lb);
    s->label[n + lb] = '\0';
    st = ms_trace_finish(s, err);
    if (st != MS_OK) {
        ms_trace_free(s);
        return st;
    }
    *out = s;
    return MS_OK;
}

void ms_trace_draw_permutation(uint64_t seed, uint32_t layer, uint32_t n_experts, uint32_t *perm) {
    uint64_t h = ms_fnv1a(MS_FNV_OFFSET, &seed, sizeof seed);
    ms_rng r;
    ms_rng_seed(&r, ms_fnv1a(h, &layer, sizeof layer));
    for (uint32_t e = 0; e < n_experts; e++) perm[e] = e;
    for (uint32_t i = n_experts; i > 1; i--) {
        uint32_t j = (uint32_t)ms_rng_below(&r, i), x = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = x;
    }
}

ms_status ms_trace_permute_experts(const ms_trace *t, uint64_t seed, ms_trace **out, ms_error *err) {
    *out = NULL;
    uint32_t E = t->n_experts, K = t->top_k, R = t->n_ranked;
    uint32_t *perm = ms_alloc_array(E, sizeof *perm, err);
    if (!perm) return MS_E_NOMEM;
    ms_trace *s;
    ms_status st = ms_trace_new(t->n_layers, E, K, R, t->n_requests, t->n_tokens, &s, err);
    if (st != MS_OK) {
        ms_free(perm);
        return st;
    }
    copy_requests(t, s, 0, 0);
    size_t nk = (size_t)t->n_tokens * K, nr = (size_t)t->n_tokens * R;
    for (uint32_t l = 0; l < t->n_layers; l++) {
        ms_trace_draw_permutation(seed, l, E, perm);
        const uint16_t *x = t->experts + (size_t)l * nk;
        uint16_t *y = s->experts + (size_t)l * nk;
        for (size_t i = 0; i < nk; i++) y[i] = (uint16_t)perm[x[i]];
        if (!R) continue;
        x = t->ranked + (size_t)l * nr;
        y = s->ranked + (size_t)l * nr;
        for (size_t i = 0; i < nr; i++) y[i] = (uint16_t)perm[x[i]];
    }
    ms_free(perm);
    memcpy(s->source_dtype, t->source_dtype, sizeof s->source_dtype);
    char suffix[32];
    int ns = snprintf(suffix, sizeof suffix, "@permute=%llu", (unsigned long long)seed);
    size_t ll = strlen(t->label), cap = sizeof s->label - 1 - (size_t)ns;
    memcpy(s->label, t->label, ll < cap ? ll : cap);
    memcpy(s->label + (ll < cap ? ll : cap), suffix, (size_t)ns + 1);
    st = ms_trace_finish(s, err);
    if (st != MS_OK) {
        ms_trace_free(s);
        return st;
    }
    *out = s;
    return MS_OK;
}

/* ----------------------------------------------------------- loading */

typedef struct file_list {
    char **paths;
    size_t n, cap;
} file_list;

static ms_status list_push(file_list *fl, const char *path, ms_error *err) {
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 64;
        char **p = ms_realloc_array(fl->paths, cap, sizeof *p, err);
        if (!p) return MS_E_NOMEM;
        fl->paths = p;
        fl->cap = cap;
    }
    size_t len = strlen(path) + 1;
    fl->paths[fl->n] = ms_alloc_array(len, 1, err);
    if (!fl->paths[fl->n]) return MS_E_NOMEM;
    memcpy(fl->paths[fl->n++], path, len);
    return MS_OK;
}

static void list_free(file_list *fl) {
    for (size_t i = 0; i < fl->n; i++) ms_free(fl->paths[i]);
    ms_free(fl->paths);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ends_with_npz(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".npz") == 0;
}

/* Expands a directory into its *.npz files (name order); a file is itself. */
static ms_status collect(const char *path, file_list *fl, ms_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return ms_error_set(err, MS_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return list_push(fl, path, err);
    DIR *d = opendir(path);
    if (!d) return ms_error_set(err, MS_E_IO, "%s: cannot open directory: %s", path, strerror(errno));
    size_t first = fl->n;
    struct dirent *e;
    ms_status s = MS_OK;
    char buf[4096];
    while (s == MS_OK && (e = readdir(d)) != NULL) {
        if (!ends_with_npz(e->d_name)) continue;
        if ((size_t)snprintf(buf, sizeof buf, "%s/%s", path, e->d_name) >= sizeof buf) {
            s = ms_error_set(err, MS_E_INPUT, "%s/%s: path too long", path, e->d_name);
            break;
        }
        s = list_push(fl, buf, err);
    }
    closedir(d);
    if (s != MS_OK) return s;
    if (fl->n == first) return ms_error_set(err, MS_E_INPUT, "%s: directory holds no .npz files", path);
    qsort(fl->paths + first, fl->n - first, sizeof *fl->paths, cmp_str);
    return MS_OK;
}

/* One request as parsed from its file, token-major [rows][layers][k]. */
typedef struct parsed_req {
    uint32_t rows, prompt, output, layers, top_k, ranked_n;
    int64_t request_id;
    int64_t num_experts;     /* -1 when the file has no num_experts */
    uint16_t *ids;
    uint16_t *ranked;
    uint16_t max_id;
    char descr[16];
    uint64_t bytes;
    ms_error err;
    bool err_names_file; /* ms_npz_open's messages already start with the path */
} parsed_req;

static ms_status read_len(ms_npz *z, const char *name, uint64_t *len, ms_error *err) {
    ms_npy_array a = {0};
    ms_status st = ms_npz_read_array(z, name, &a, err);
    if (st != MS_OK) return st;
    if (a.ndim != 1) st = ms_error_set(err, MS_E_INPUT, "%s must be 1-D, has %d dimensions", name, a.ndim);
    *len = a.ndim == 1 ? a.shape[0] : 0;
    ms_npy_array_clear(&a);
    return st;
}

static ms_status read_scalar(ms_npz *z, const char *name, int64_t *v, ms_error *err) {
    ms_npy_array a = {0};
    ms_status st = ms_npz_read_array(z, name, &a, err);
    if (st != MS_OK) return st;
    if (a.count != 1) st = ms_error_set(err, MS_E_INPUT, "%s must hold one value, holds %llu", name,
                                        (unsigned long long)a.count);
    else st = ms_npy_get_int(&a, 0, v, err);
    ms_npy_array_clear(&a);
    return st;
}

static ms_status read_ids(ms_npz *z, const char *name, uint32_t limit, ms_npy_array *a, uint16_t **out,
                          ms_error *err) {
    ms_status st = ms_npz_read_array(z, name, a, err);
    if (st != MS_OK) return st;
    if (a->dtype.kind != 'i' && a->dtype.kind != 'u')
        return ms_error_set(err, MS_E_INPUT, "%s has dtype %s: expert ids must be integers", name, a->descr);
    if (a->ndim != 3)
        return ms_error_set(err, MS_E_INPUT, "%s must be 3-D [rows, layers, top_k], has %d dimensions", name,
                            a->ndim);
    if (a->shape[1] == 0 || a->shape[2] == 0)
        return ms_error_set(err, MS_E_INPUT, "%s has shape [%llu, %llu, %llu]: layers and top_k must be positive",
                            name, (unsigned long long)a->shape[0], (unsigned long long)a->shape[1],
                            (unsigned long long)a->shape[2]);
    if (a->shape[0] > UINT32_MAX || a->shape[1] > 65535 || a->shape[2] > 65535)
        return ms_error_set(err, MS_E_INPUT, "%s has an implausible shape", name);
    *out = ms_alloc_array(a->count, sizeof(uint16_t), err);
    if (!*out) return MS_E_NOMEM;
    return ms_npy_to_u16(a, limit, *out, err); /* its message names the array */
}

static void parse_one(const char *path, uint32_t limit, parsed_req *pr) {
    ms_error *err = &pr->err;
    ms_npz *z = NULL;
    ms_npy_array re = {0}, rk = {0};
    pr->num_experts = -1;
    if (ms_npz_open(path, &z, err) != MS_OK) {
        pr->err_names_file = true;
        goto fail;
    }
    pr->bytes = ms_npz_size(z);
    uint64_t p, d;
    if (read_len(z, "prompt_token_ids", &p, err) != MS_OK) goto fail;
    if (read_len(z, "output_token_ids", &d, err) != MS_OK) goto fail;
    if (ms_npz_has(z, "request_id")) {
        if (read_scalar(z, "request_id", &pr->request_id, err) != MS_OK) goto fail;
    } else {
        pr->request_id = -1;
    }
    if (ms_npz_has(z, "num_experts") && read_scalar(z, "num_experts", &pr->num_experts, err) != MS_OK) goto fail;
    if (read_ids(z, "routed_experts", limit, &re, &pr->ids, err) != MS_OK) goto fail;
    pr->rows = (uint32_t)re.shape[0];
    pr->layers = (uint32_t)re.shape[1];
    pr->top_k = (uint32_t)re.shape[2];
    snprintf(pr->descr, sizeof pr->descr, "%s", re.descr);
    if (p > UINT32_MAX || d > UINT32_MAX || (p + d != pr->rows && !(d >= 1 && p + d - 1 == pr->rows))) {
        ms_error_set(err, MS_E_INPUT, "routed_experts has %u rows but prompt + output = %llu + %llu = %llu",
                     pr->rows, (unsigned long long)p, (unsigned long long)d, (unsigned long long)(p + d));
        goto fail;
    }
    if (pr->rows == 0) {
        ms_error_set(err, MS_E_INPUT, "routed_experts has no rows");
        goto fail;
    }
    pr->prompt = (uint32_t)p;
    pr->output = (uint32_t)d;
    if (ms_npz_has(z, "routed_experts_ranked")) {
        if (read_ids(z, "routed_experts_ranked", limit, &rk, &pr->ranked, err) != MS_OK) goto fail;
        if (rk.shape[0] != re.shape[0] || rk.shape[1] != re.shape[1] || rk.shape[2] < re.shape[2]) {
            ms_error_set(err, MS_E_INPUT, "routed_experts_ranked shape [%llu, %llu, %llu] does not extend "
                         "routed_experts [%u, %u, %u]", (unsigned long long)rk.shape[0],
                         (unsigned long long)rk.shape[1], (unsigned long long)rk.shape[2], pr->rows, pr->layers,
                         pr->top_k);
            goto fail;
        }
        pr->ranked_n = (uint32_t)rk.shape[2];
    }
    uint16_t mx = 0;
    size_t n = (size_t)pr->rows * pr->layers * pr->top_k;
    for (size_t i = 0; i < n; i++) mx = pr->ids[i] > mx ? pr->ids[i] : mx;
    pr->max_id = mx;
    ms_npy_array_clear(&re);
    ms_npy_array_clear(&rk);
    ms_npz_free(z);
    return;
fail:
    if (err->status == MS_OK) err->status = MS_E_INTERNAL;
    ms_npy_array_clear(&re);
    ms_npy_array_clear(&rk);
    ms_npz_free(z);
    ms_free(pr->ids);
    ms_free(pr->ranked);
    pr->ids = pr->ranked = NULL;
}

static void free_parsed(parsed_req *prs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ms_free(prs[i].ids);
        ms_free(prs[i].ranked);
    }
    ms_free(prs);
}

/* Checks the files agree with the first one and settles the expert count. */
static ms_status check_consistent(const file_list *fl, const parsed_req *prs, const ms_trace_load_opts *o,
                                  uint32_t *n_experts, ms_error *err) {
    const parsed_req *f = &prs[0];
    uint16_t max_id = 0;
    for (size_t i = 0; i < fl->n; i++) {
        const parsed_req *pr = &prs[i];
        if (pr->layers != f->layers)
            return ms_error_set(err, MS_E_INPUT, "%s: %u layers, but %s has %u", fl->paths[i], pr->layers,
                                fl->paths[0], f->layers);
        if (pr->top_k != f->top_k)
            return ms_error_set(err, MS_E_INPUT, "%s: top_k %u, but %s has %u", fl->paths[i], pr->top_k,
                                fl->paths[0], f->top_k);
        if (pr->ranked_n != f->ranked_n)
            return ms_error_set(err, MS_E_INPUT, "%s: %u ranked choices, but %s has %u", fl->paths[i],
                                pr->ranked_n, fl->paths[0], f->ranked_n);
        if (pr->num_experts != f->num_experts)
            return ms_error_set(err, MS_E_INPUT, "%s: num_experts %lld, but %s has %lld", fl->paths[i],
                                (long long)pr->num_experts, fl->paths[0], (long long)f->num_experts);
        if (pr->max_id > max_id) max_id = pr->max_id;
    }
    if (o->n_experts) *n_experts = o->n_experts;
    else if (f->num_experts >= 0) {
        if (f->num_experts == 0 || f->num_experts > 65536)
            return ms_error_set(err, MS_E_INPUT, "%s: num_experts %lld out of range", fl->paths[0],
                                (long long)f->num_experts);
        *n_experts = (uint32_t)f->num_experts;
    } else
        *n_experts = (uint32_t)max_id + 1;
    if (max_id >= *n_experts) {
        for (size_t i = 0; i < fl->n; i++)
            if (prs[i].max_id >= *n_experts)
                return ms_error_set(err, MS_E_INPUT, "%s: expert id %u out of range (experts: %u)", fl->paths[i],
                                    prs[i].max_id, *n_experts);
    }
    return MS_OK;
}

/* Copies a request's token-major ids into the trace's layer-major array. */
static void scatter_request(ms_trace *t, uint64_t r, const uint16_t *src, uint16_t *dst_base, uint32_t k) {
    uint64_t off = t->tok_offset[r], rows = t->tok_offset[r + 1] - off;
    /* layer-outer so each destination run is contiguous; a plain loop beats
     * memcpy calls for the few ids per token */
    for (uint32_t l = 0; l < t->n_layers; l++) {
        uint16_t *d = dst_base + ((size_t)l * t->n_tokens + off) * k;
        const uint16_t *s = src + (size_t)l * k;
        size_t stride = (size_t)t->n_layers * k;
        for (uint64_t row = 0; row < rows; row++, d += k, s += stride)
            for (uint32_t j = 0; j < k; j++) d[j] = s[j];
    }
}

ms_status ms_trace_load(const char *const *paths, size_t n_paths, const ms_trace_load_opts *opts,
                        ms_trace **out, ms_error *err) {
    *out = NULL;
    ms_trace_load_opts defaults = {0};
    const ms_trace_load_opts *o = opts ? opts : &defaults;
    if (n_paths == 0) return ms_error_set(err, MS_E_INPUT, "no trace given");
    if (o->n_experts > 65536)
        return ms_error_set(err, MS_E_INPUT, "%u experts exceed the 16-bit ids moesim stores", o->n_experts);
    file_list fl = {0};
    ms_status st = MS_OK;
    for (size_t i = 0; i < n_paths && st == MS_OK; i++) st = collect(paths[i], &fl, err);
    if (st != MS_OK) {
        list_free(&fl);
        return st;
    }
    parsed_req *prs = ms_calloc_array(fl.n, sizeof *prs, err);
    if (!prs) {
        list_free(&fl);
        return MS_E_NOMEM;
    }
    uint32_t limit = o->n_experts ? o->n_experts : 65536;
    uint64_t done = 0;
    long nfiles = (long)fl.n;
    int threads = o->threads > 0 ? o->threads : ms_thread_count();
    (void)threads;
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (long i = 0; i < nfiles; i++) {
        parse_one(fl.paths[i], limit, &prs[i]);
        uint64_t now;
#pragma omp atomic capture
        now = ++done;
        if (o->progress) {
#pragma omp critical(ms_trace_progress)
            o->progress(o->progress_ctx, now, (uint64_t)nfiles);
        }
    }
    for (size_t i = 0; i < fl.n && st == MS_OK; i++) {
        if (prs[i].err.status != MS_OK) {
            ms_error e = prs[i].err;
            if (!prs[i].err_names_file) ms_error_prefix(&e, fl.paths[i]);
            if (err) *err = e;
            st = e.status;
        }
    }
    uint32_t n_experts = 0;
    if (st == MS_OK) st = check_consistent(&fl, prs, o, &n_experts, err);
    ms_trace *t = NULL;
    if (st == MS_OK) {
        uint64_t tokens = 0;
        for (size_t i = 0; i < fl.n; i++) tokens += prs[i].rows;
        st = ms_trace_new(prs[0].layers, n_experts, prs[0].top_k, prs[0].ranked_n, fl.n, tokens, &t, err);
    }
    if (st == MS_OK) {
        uint64_t pos = 0;
        for (size_t i = 0; i < fl.n; i++) {
            t->tok_offset[i] = pos;
            t->n_prompt[i] = prs[i].prompt;
            t->n_output[i] = prs[i].output;
            t->request_id[i] = prs[i].request_id >= 0 ? prs[i].request_id : (int64_t)i;
            if (prs[i].rows != (uint64_t)prs[i].prompt + prs[i].output) t->n_short_rows++;
            t->source_bytes += prs[i].bytes;
            pos += prs[i].rows;
        }
        t->tok_offset[fl.n] = pos;
#pragma omp parallel for schedule(dynamic, 8) num_threads(threads)
        for (long i = 0; i < nfiles; i++) {
            scatter_request(t, (uint64_t)i, prs[i].ids, t->experts, t->top_k);
            if (t->ranked) scatter_request(t, (uint64_t)i, prs[i].ranked, t->ranked, t->n_ranked);
            ms_free(prs[i].ids);
            ms_free(prs[i].ranked);
            prs[i].ids = prs[i].ranked = NULL;
        }
        snprintf(t->source_dtype, sizeof t->source_dtype, "%s", prs[0].descr);
        snprintf(t->label, sizeof t->label, "%s", paths[0]);
        st = ms_trace_finish(t, err);
    }
    free_parsed(prs, fl.n);
    list_free(&fl);
    if (st != MS_OK) {
        ms_trace_free(t);
        return st;
    }
    *out = t;
    return MS_OK;
}

/* ----------------------------------------------------------- writing */

/* Gathers request r's ids from layer-major storage into token-major i32. */
static void gather_request(const ms_trace *t, uint64_t r, const uint16_t *src, uint32_t k, int32_t *dst) {
    uint64_t off = t->tok_offset[r], rows = t->tok_offset[r + 1] - off;
    for (uint64_t row = 0; row < rows; row++)
        for (uint32_t l = 0; l < t->n_layers; l++) {
            const uint16_t *s = src + ((size_t)l * t->n_tokens + off + row) * k;
            int32_t *d = dst + (row * t->n_layers + l) * k;
            for (uint32_t j = 0; j < k; j++) d[j] = s[j];
        }
}

static ms_status write_request(const ms_trace *t, uint64_t r, const char *dir, bool compress, ms_error *err) {
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/req_%06llu.npz", dir, (unsigned long long)r) >= sizeof path)
        return ms_error_set(err, MS_E_IO, "%s: path too long", dir);
    uint64_t rows = t->tok_offset[r + 1] - t->tok_offset[r];
    uint32_t kmax = t->n_ranked > t->top_k ? t->n_ranked : t->top_k;
    uint64_t np = t->n_prompt[r], nd = t->n_output[r];
    size_t cells = (size_t)rows * t->n_layers * kmax;
    int32_t *buf = ms_alloc_array(cells > np + nd ? cells : np + nd + 1, sizeof *buf, err);
    if (!buf) return MS_E_NOMEM;
    ms_npz_writer *w;
    ms_status st = ms_npz_writer_open(path, compress, &w, err);
    if (st != MS_OK) {
        ms_free(buf);
        return st;
    }
    int64_t rid = t->request_id[r], ne = t->n_experts;
    for (uint64_t i = 0; i < np + nd; i++) buf[i] = -1; /* token ids are not kept */
    uint64_t shape[3] = {np, 0, 0};
    st = ms_npz_writer_add(w, "request_id", "<i8", 0, shape, &rid, err);
    if (st == MS_OK) st = ms_npz_writer_add(w, "prompt_token_ids", "<i4", 1, shape, buf, err);
    shape[0] = nd;
    if (st == MS_OK) st = ms_npz_writer_add(w, "output_token_ids", "<i4", 1, shape, buf, err);
    shape[0] = rows;
    shape[1] = t->n_layers;
    shape[2] = t->top_k;
    if (st == MS_OK) {
        gather_request(t, r, t->experts, t->top_k, buf);
        st = ms_npz_writer_add(w, "routed_experts", "<i4", 3, shape, buf, err);
    }
    if (st == MS_OK && t->ranked) {
        shape[2] = t->n_ranked;
        gather_request(t, r, t->ranked, t->n_ranked, buf);
        st = ms_npz_writer_add(w, "routed_experts_ranked", "<i4", 3, shape, buf, err);
    }
    if (st == MS_OK) st = ms_npz_writer_add(w, "num_experts", "<i8", 0, shape, &ne, err);
    ms_free(buf);
    if (st != MS_OK) {
        ms_npz_writer_abort(w);
        return st;
    }
    return ms_npz_writer_close(w, err);
}

ms_status ms_trace_write_npz_dir(const ms_trace *t, const char *dir, bool compress, ms_progress_fn progress,
                                 void *progress_ctx, ms_error *err) {
    ms_status st = ms_mkdir_p(dir, err);
    if (st != MS_OK) return st;
    long n = (long)t->n_requests;
    uint64_t done = 0;
    int failed = 0;
    ms_error first = {0};
#pragma omp parallel for schedule(dynamic, 4)
    for (long r = 0; r < n; r++) {
        int skip;
#pragma omp atomic read
        skip = failed;
        if (skip) continue;
        ms_error e = {0};
        if (write_request(t, (uint64_t)r, dir, compress, &e) != MS_OK) {
#pragma omp critical(ms_trace_write_err)
            {
                if (!failed) first = e;
                failed = 1;
            }
        }
        uint64_t now;
#pragma omp atomic capture
        now = ++done;
        if (progress) {
#pragma omp critical(ms_trace_write_progress)
            progress(progress_ctx, now, (uint64_t)n);
        }
    }
    if (failed) {
        if (err) *err = first;
        return first.status;
    }
    return MS_OK;
}
