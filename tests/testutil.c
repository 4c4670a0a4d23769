/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

const char *tu_src_dir(void) { return env_or("MOESIM_SRC", "."); }
const char *tu_tmp_dir(void) { return env_or("MOESIM_TMP", "/tmp"); }
const char *tu_bin(void) { return env_or("MOESIM_BIN", "moesim"); }

static const char *existing_dir(const char *root, const char *name, char *buf, size_t len) {
    struct stat st;
    snprintf(buf, len, "%s/%s", root, name);
    if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) return buf;
    return NULL;
}

const char *tu_data_dir(const char *name, char *buf, size_t len) {
    return existing_dir(env_or("MOESIM_DATA", "../shared/data"), name, buf, len);
}

const char *tu_ref_dir(const char *name, char *buf, size_t len) {
    return existing_dir(env_or("MOESIM_REF", "../shared/reference"), name, buf, len);
}

const char *tu_tmp_path(const char *prefix, const char *suffix, char *buf, size_t len) {
    static unsigned counter;
    snprintf(buf, len, "%s/%s-%d-%u%s", tu_tmp_dir(), prefix, (int)getpid(), counter++, suffix);
    return buf;
}

void tu_write_file(const char *path, const void *data, size_t len) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

int tu_run(const char *cmd, char *out, size_t outlen) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t used = 0;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, p)) > 0) {
        if (out && used + 1 < outlen) {
            size_t take = n < outlen - 1 - used ? n : outlen - 1 - used;
            memcpy(out + used, tmp, take);
            used += take;
        }
    }
    if (out && outlen) out[used] = '\0';
    int st = pclose(p);
    return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

int tu_have_numpy(void) {
    return tu_run("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1", NULL, 0) == 0;
}

void tu_assert_files_equal(const char *a, const char *b) {
    uint8_t *b1, *b2;
    size_t n1, n2;
    ms_error err = {0};
    assert_int_equal(ms_file_read_all(a, &b1, &n1, &err), MS_OK);
    assert_int_equal(ms_file_read_all(b, &b2, &n2, &err), MS_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    ms_free(b1);
    ms_free(b2);
}

/* ------------------------------------------------ placement fixtures */

ms_loads *tu_loads(uint32_t layers, uint32_t experts, const double *w) {
    ms_loads *l;
    ms_error err = {0};
    assert_int_equal(ms_loads_new(layers, experts, &l, &err), MS_OK);
    memcpy(l->w, w, (size_t)layers * experts * sizeof *w);
    return l;
}

ms_loads *tu_stats_loads(const ms_stats *s) {
    ms_loads *l;
    ms_error err = {0};
    assert_int_equal(ms_stats_to_loads(s, &l, &err), MS_OK);
    return l;
}

void tu_place_opts(ms_place_opts *o, const char *algo, uint32_t rows, uint32_t cols, uint32_t spd) {
    ms_place_opts_default(o);
    o->algo = algo;
    o->cluster.rows = rows;
    o->cluster.cols = cols;
    o->cluster.slots_per_device = spd;
}

ms_placement *tu_place_ok(const ms_loads *l, const ms_stats *s, const ms_place_opts *o) {
    ms_place_input in = {l, s, 0};
    ms_placement *p = NULL;
    ms_error err = {0};
    ms_status st = ms_place_run(&in, o, &p, &err);
    if (st != MS_OK) fprintf(stderr, "%s: %s\n", o->algo, err.msg);
    assert_int_equal(st, MS_OK);
    return p;
}

uint32_t tu_replicas(const ms_placement *p, uint32_t l, uint32_t e, int32_t *slots) {
    uint32_t n = p->logcnt[(size_t)l * p->n_logical + e];
    for (uint32_t k = 0; k < n; k++) slots[k] = p->log2phy[((size_t)l * p->n_logical + e) * p->max_replicas + k];
    return n;
}

uint32_t tu_shared_dev(const ms_cluster *c, uint32_t i) { return (i % c->rows) * c->cols + i % c->cols; }

void tu_check_placement(const ms_placement *p, const ms_place_opts *o, uint32_t E, uint32_t expect_total,
                        uint32_t budget) {
    const ms_cluster *c = &o->cluster;
    uint32_t spd = c->slots_per_device, nd = c->rows * c->cols;
    uint32_t ns = o->shared_expert ? (o->shared_replicas ? o->shared_replicas : c->rows) : 0;
    assert_int_equal(p->n_routed, E);
    assert_int_equal(p->n_phys, nd * spd);
    uint32_t *cnt = calloc(E + 1, sizeof *cnt), *sh = calloc(nd, sizeof *sh);
    assert_non_null(cnt);
    assert_non_null(sh);
    for (uint32_t i = 0; i < ns; i++) sh[tu_shared_dev(c, i)]++;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        memset(cnt, 0, (E + 1) * sizeof *cnt);
        const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        for (uint32_t d = 0; d < nd; d++) {
            uint32_t shd = 0;
            for (uint32_t s = 0; s < spd; s++) {
                int32_t e = row[d * spd + s];
                assert_true(e >= -1 && e < (int32_t)(E + (o->shared_expert ? 1 : 0)));
                if (e >= 0) cnt[e]++;
                if (o->shared_expert && e == (int32_t)E) {
                    shd++;
                    assert_true(s < sh[d]); /* lowest free slots, reserved first */
                }
            }
            assert_int_equal(shd, sh[d]);
        }
        uint32_t total = 0;
        for (uint32_t e = 0; e < E; e++) {
            assert_true(cnt[e] >= 1);
            total += cnt[e];
            assert_int_equal(p->logcnt[(size_t)l * p->n_logical + e], cnt[e]);
            for (uint32_t k = 0; k < cnt[e]; k++) {
                int32_t s = p->log2phy[((size_t)l * p->n_logical + e) * p->max_replicas + k];
                assert_true(s >= 0 && row[s] == (int32_t)e);
            }
        }
        if (expect_total) assert_int_equal(total, expect_total);
        assert_true(total <= budget);
    }
    free(cnt);
    free(sh);
}

ms_trace *tu_random_trace(uint64_t seed, uint32_t layers, uint32_t E, uint32_t k, uint64_t tokens) {
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(layers, E, k, 0, 1, tokens, &t, &err), MS_OK);
    ms_rng r;
    ms_rng_seed(&r, seed);
    for (uint32_t l = 0; l < layers; l++)
        for (uint64_t tok = 0; tok < tokens; tok++) {
            uint16_t *row = t->experts + ((uint64_t)l * tokens + tok) * k;
            for (uint32_t j = 0; j < k; j++) {
                uint16_t e;
                int dup;
                do {
                    /* skew: squares of uniforms favour low ids */
                    double u = ms_rng_uniform(&r);
                    e = (uint16_t)(u * u * E);
                    if (e >= E) e = (uint16_t)(E - 1);
                    dup = 0;
                    for (uint32_t q = 0; q < j; q++) dup |= row[q] == e;
                } while (dup);
                row[j] = e;
            }
        }
    t->tok_offset[0] = 0;
    t->tok_offset[1] = tokens;
    t->n_prompt[0] = (uint32_t)tokens;
    t->n_output[0] = 0;
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

ms_trace *tu_trace_from_rows(uint32_t E, uint32_t k, const uint16_t *ids, uint64_t tokens) {
    ms_trace *t;
    ms_error err = {0};
    assert_int_equal(ms_trace_new(1, E, k, 0, 1, tokens, &t, &err), MS_OK);
    memcpy(t->experts, ids, tokens * k * sizeof *ids);
    t->tok_offset[0] = 0;
    t->tok_offset[1] = tokens;
    t->n_prompt[0] = (uint32_t)tokens;
    assert_int_equal(ms_trace_finish(t, &err), MS_OK);
    return t;
}

ms_stats *tu_stats_coact(const ms_trace *t, uint32_t window) {
    ms_stats_opts so;
    ms_stats_opts_default(&so);
    if (window) so.window = window;
    so.coact = true;
    ms_stats *s;
    ms_error err = {0};
    assert_int_equal(ms_stats_compute(t, &so, &s, &err), MS_OK);
    return s;
}
