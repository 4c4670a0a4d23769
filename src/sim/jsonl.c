/* jsonl.c - moe-balance's JSONL trace format: one JSON object per line with
 * layer, batch_id, topk_experts [tokens][k] and optionally origin_rows
 * [tokens], topk_weights, request_id. Each batch_id becomes one request. */
#include "moesim/sim.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct line_rec {
    uint64_t req;      /* index of its batch_id */
    uint32_t layer;
    uint32_t ntok;
    uint64_t id_off;   /* into ids */
    uint64_t or_off;   /* into rows, UINT64_MAX if none */
    uint64_t lineno;
} line_rec;

void ms_jsonl_trace_clear(ms_jsonl_trace *j) {
    if (!j) return;
    ms_trace_free(j->trace);
    ms_free(j->origin_rows);
    j->trace = NULL;
    j->origin_rows = NULL;
}

typedef struct growbuf {
    void *p;
    size_t n, cap, size;
} growbuf;

static int gb_reserve(growbuf *g, size_t more, ms_error *err) {
    if (g->n + more <= g->cap) return 0;
    size_t nc = g->cap ? g->cap : 1024;
    while (nc < g->n + more) nc *= 2;
    void *q = ms_realloc_array(g->p, nc, g->size, err);
    if (!q) return -1;
    g->p = q;
    g->cap = nc;
    return 0;
}

#define FAIL(...)                                                                                       \
    do {                                                                                                \
        st = ms_error_set(err, MS_E_INPUT, __VA_ARGS__);                                                \
        goto done;                                                                                      \
    } while (0)

ms_status ms_jsonl_trace_load(const char *path, uint32_t n_experts, ms_jsonl_trace *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) return st;
    growbuf lines = {NULL, 0, 0, sizeof(line_rec)}, ids = {NULL, 0, 0, sizeof(uint16_t)},
            rows = {NULL, 0, 0, sizeof(uint16_t)};
    growbuf reqid = {NULL, 0, 0, sizeof(int64_t)};
    json_t *map = json_object(); /* batch_id text -> request index */
    uint8_t *seen = NULL;
    uint32_t *req_tok = NULL;
    ms_trace *t = NULL;
    uint16_t *orow = NULL;
    uint32_t k = 0, max_layer = 0, max_id = 0;
    int have_rows = -1;
    bool any = false;
    if (!map) {
        st = ms_error_set(err, MS_E_NOMEM, "out of memory");
        goto done;
    }
    size_t pos = 0;
    uint64_t lineno = 0;
    while (pos < len) {
        size_t e = pos;
        while (e < len && buf[e] != '\n') e++;
        lineno++;
        size_t a = pos, b = e;
        pos = e + 1;
        while (a < b && (buf[a] == ' ' || buf[a] == '\t' || buf[a] == '\r')) a++;
        while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t' || buf[b - 1] == '\r')) b--;
        if (a == b) continue;
        json_error_t je;
        json_t *o = json_loadb((const char *)buf + a, b - a, 0, &je);
        if (!o) FAIL("%s: line %llu: %s", path, (unsigned long long)lineno, je.text);
        if (!json_is_object(o)) {
            json_decref(o);
            FAIL("%s: line %llu: not a JSON object", path, (unsigned long long)lineno);
        }
        json_t *jl = json_object_get(o, "layer"), *jb = json_object_get(o, "batch_id"),
               *jt = json_object_get(o, "topk_experts"), *jo = json_object_get(o, "origin_rows"),
               *jr = json_object_get(o, "request_id");
        char key[64];
        const char *why = NULL;
        if (!json_is_integer(jl) || json_integer_value(jl) < 0 || json_integer_value(jl) > 65535)
            why = "'layer' must be an integer in 0..65535";
        else if (json_is_integer(jb))
            snprintf(key, sizeof key, "i%lld", (long long)json_integer_value(jb));
        else if (json_is_string(jb) && json_string_length(jb) < sizeof key - 2)
            snprintf(key, sizeof key, "s%s", json_string_value(jb));
        else
            why = "'batch_id' must be an integer or a short string";
        if (!why && !json_is_array(jt)) why = "'topk_experts' must be an array of arrays";
        if (!why && jo && !json_is_null(jo) && (!json_is_array(jo) || json_array_size(jo) != json_array_size(jt)))
            why = "'origin_rows' must be an array with one row per token";
        if (!why && jr && !json_is_null(jr) && !json_is_integer(jr)) why = "'request_id' must be an integer";
        if (why) {
            json_decref(o);
            FAIL("%s: line %llu: %s", path, (unsigned long long)lineno, why);
        }
        bool hr = jo && !json_is_null(jo);
        if (have_rows < 0) have_rows = hr;
        else if (have_rows != (int)hr) {
            json_decref(o);
            FAIL("%s: line %llu: origin_rows given on some lines but not on others", path, (unsigned long long)lineno);
        }
        json_t *ji = json_object_get(map, key);
        uint64_t req;
        if (ji) req = (uint64_t)json_integer_value(ji);
        else {
            req = reqid.n;
            if (gb_reserve(&reqid, 1, err) || json_object_set_new(map, key, json_integer((json_int_t)req))) {
                json_decref(o);
                st = MS_E_NOMEM;
                goto done;
            }
            ((int64_t *)reqid.p)[reqid.n++] =
                jr && json_is_integer(jr) ? (int64_t)json_integer_value(jr)
                : json_is_integer(jb)     ? (int64_t)json_integer_value(jb)
                                          : (int64_t)req;
        }
        size_t ntok = json_array_size(jt);
        if (ntok > UINT32_MAX / 2) {
            json_decref(o);
            FAIL("%s: line %llu: too many tokens", path, (unsigned long long)lineno);
        }
        if (gb_reserve(&lines, 1, err)) {
            json_decref(o);
            st = MS_E_NOMEM;
            goto done;
        }
        line_rec *L = (line_rec *)lines.p + lines.n++;
        L->req = req;
        L->layer = (uint32_t)json_integer_value(jl);
        L->ntok = (uint32_t)ntok;
        L->id_off = ids.n;
        L->or_off = hr ? rows.n : UINT64_MAX;
        L->lineno = lineno;
        if (L->layer > max_layer) max_layer = L->layer;
        for (size_t i = 0; i < ntok; i++) {
            json_t *row = json_array_get(jt, i);
            size_t kk = json_is_array(row) ? json_array_size(row) : 0;
            if (!json_is_array(row) || kk == 0 || (any && kk != k)) {
                json_decref(o);
                FAIL("%s: line %llu: token %zu: topk_experts rows must be non-empty arrays of the same length%s",
                     path, (unsigned long long)lineno, i, any ? " as earlier rows" : "");
            }
            if (!any) {
                k = (uint32_t)kk;
                any = true;
            }
            if (gb_reserve(&ids, kk, err)) {
                json_decref(o);
                st = MS_E_NOMEM;
                goto done;
            }
            for (size_t j = 0; j < kk; j++) {
                json_t *v = json_array_get(row, j);
                json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
                if (x < 0 || x > 65535 || (n_experts && (uint64_t)x >= n_experts)) {
                    json_decref(o);
                    FAIL("%s: line %llu: token %zu: expert id must be an integer in 0..%u", path,
                         (unsigned long long)lineno, i, n_experts ? n_experts - 1 : 65535);
                }
                if ((uint32_t)x > max_id) max_id = (uint32_t)x;
                ((uint16_t *)ids.p)[ids.n++] = (uint16_t)x;
            }
            if (hr) {
                json_t *v = json_array_get(jo, i);
                json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
                if (x < 0 || x > 65535) {
                    json_decref(o);
                    FAIL("%s: line %llu: token %zu: origin row must be an integer in 0..65535", path,
                         (unsigned long long)lineno, i);
                }
                if (gb_reserve(&rows, 1, err)) {
                    json_decref(o);
                    st = MS_E_NOMEM;
                    goto done;
                }
                ((uint16_t *)rows.p)[rows.n++] = (uint16_t)x;
            }
        }
        json_decref(o);
    }
    if (lines.n == 0) FAIL("%s: no records", path);
    if (!any) FAIL("%s: every record has zero tokens", path);
    {
        uint64_t nreq = reqid.n;
        uint32_t nl = max_layer + 1;
        /* Fewer lines than (batch, layer) pairs: some batch lacks a layer. When
         * the batches x layers table would be large, find that batch and layer
         * without it, so that a few lines naming layer 65535 among many
         * batches cannot allocate far more than the file holds (found by
         * fuzz/fuzz-jsonl.c). */
        if (nreq * nl > lines.n && nreq * nl > (1u << 20)) {
            const line_rec *LR0 = lines.p;
            uint64_t *cnt = ms_calloc_array(nreq, sizeof *cnt, err);
            uint8_t *have = ms_calloc_array(nl, 1, err);
            if (!cnt || !have) {
                ms_free(cnt);
                ms_free(have);
                st = MS_E_NOMEM;
                goto done;
            }
            for (size_t i = 0; i < lines.n; i++) cnt[LR0[i].req]++;
            uint64_t r = 0;
            while (cnt[r] >= nl) r++; /* exists: the counts add up to fewer than nreq * nl */
            for (size_t i = 0; i < lines.n; i++)
                if (LR0[i].req == r) have[LR0[i].layer] = 1;
            uint32_t l = 0;
            while (have[l]) l++; /* fewer than nl lines: a layer is missing */
            ms_free(cnt);
            ms_free(have);
            FAIL("%s: batch number %llu (batch_id of request_id %lld) has no line for layer %u", path,
                 (unsigned long long)r, (long long)((int64_t *)reqid.p)[r], l);
        }
        seen = ms_calloc_array(nreq * nl, 1, err);
        req_tok = ms_alloc_array(nreq, sizeof *req_tok, err);
        if (!seen || !req_tok) {
            st = MS_E_NOMEM;
            goto done;
        }
        for (uint64_t r = 0; r < nreq; r++) req_tok[r] = UINT32_MAX;
        const line_rec *LR = lines.p;
        for (size_t i = 0; i < lines.n; i++) {
            const line_rec *L = &LR[i];
            if (seen[L->req * nl + L->layer])
                FAIL("%s: line %llu: batch %llu, layer %u appears twice", path, (unsigned long long)L->lineno,
                     (unsigned long long)L->req, L->layer);
            seen[L->req * nl + L->layer] = 1;
            if (req_tok[L->req] == UINT32_MAX) req_tok[L->req] = L->ntok;
            else if (req_tok[L->req] != L->ntok)
                FAIL("%s: line %llu: layer %u of this batch has %u tokens, another layer %u", path,
                     (unsigned long long)L->lineno, L->layer, L->ntok, req_tok[L->req]);
        }
        for (uint64_t r = 0; r < nreq; r++)
            for (uint32_t l = 0; l < nl; l++)
                if (!seen[r * nl + l])
                    FAIL("%s: batch number %llu (batch_id of request_id %lld) has no line for layer %u", path,
                         (unsigned long long)r, (long long)((int64_t *)reqid.p)[r], l);
        uint64_t ntok = 0;
        for (uint64_t r = 0; r < nreq; r++) ntok += req_tok[r];
        uint32_t ne = n_experts ? n_experts : max_id + 1;
        st = ms_trace_new(nl, ne, k, 0, nreq, ntok, &t, err);
        if (st != MS_OK) goto done;
        t->tok_offset[0] = 0;
        for (uint64_t r = 0; r < nreq; r++) {
            t->tok_offset[r + 1] = t->tok_offset[r] + req_tok[r];
            t->n_prompt[r] = req_tok[r];
            t->n_output[r] = 0;
            t->request_id[r] = ((int64_t *)reqid.p)[r];
        }
        if (have_rows == 1) {
            orow = ms_alloc_array((size_t)nl * (ntok ? ntok : 1), sizeof *orow, err);
            if (!orow) {
                st = MS_E_NOMEM;
                goto done;
            }
        }
        for (size_t i = 0; i < lines.n; i++) {
            const line_rec *L = &LR[i];
            uint64_t base = (uint64_t)L->layer * ntok + t->tok_offset[L->req];
            memcpy(t->experts + base * k, (uint16_t *)ids.p + L->id_off, (size_t)L->ntok * k * sizeof(uint16_t));
            if (orow) memcpy(orow + base, (uint16_t *)rows.p + L->or_off, (size_t)L->ntok * sizeof(uint16_t));
        }
        snprintf(t->label, sizeof t->label, "%s", path);
        t->source_bytes = len;
        snprintf(t->source_dtype, sizeof t->source_dtype, "jsonl");
        st = ms_trace_finish(t, err);
        if (st != MS_OK) {
            ms_error_prefix(err, path);
            goto done;
        }
    }
    out->trace = t;
    out->origin_rows = orow;
    t = NULL;
    orow = NULL;
done:
    json_decref(map);
    ms_free(buf);
    ms_free(lines.p);
    ms_free(ids.p);
    ms_free(rows.p);
    ms_free(reqid.p);
    ms_free(seen);
    ms_free(req_tok);
    ms_trace_free(t);
    ms_free(orow);
    return st;
}
