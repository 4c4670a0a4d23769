/* placement_json.c - placements as files: moesim's JSON, SGLang's
 * --init-expert-location ({"physical_to_logical_map": ...}) and the peer
 * simulator's (moe-balance) placement.json. See moesim/place.h. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"

/* ------------------------------------------------------------- writing */

static void put_double(FILE *fp, double v) {
    if (isfinite(v)) fprintf(fp, "%.17g", v);
    else fputs("null", fp);
}

/* Writes s as a JSON string (escaped by jansson). */
static void put_string(FILE *fp, const char *s) {
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    fputs(t ? t : "\"\"", fp);
    free(t);
    json_decref(j);
}

static void put_i32_row(FILE *fp, const int32_t *v, size_t n) {
    fputc('[', fp);
    for (size_t i = 0; i < n; i++) fprintf(fp, i ? ", %d" : "%d", (int)v[i]);
    fputc(']', fp);
}

ms_status ms_placement_write_json(const ms_placement *p, const char *path, ms_error *err) {
    ms_status st = ms_placement_check(p, err);
    if (st != MS_OK) return st;
    if (!p->log2phy) return ms_error_set(err, MS_E_INPUT, "placement is not indexed (no log2phy)");
    ms_afile f;
    if ((st = ms_afile_open(&f, path, err)) != MS_OK) return st;
    FILE *fp = f.fp;
    const ms_cluster *c = &p->cluster;
    fprintf(fp,
            "{\n  \"format\": \"moesim-placement\",\n  \"version\": 1,\n  \"devices\": %u,\n  \"rows\": %u,\n"
            "  \"cols\": %u,\n  \"slots_per_device\": %u,\n  \"layers\": %u,\n  \"routed_experts\": %u,\n"
            "  \"shared_expert\": %s,\n  \"logical_experts\": %u,\n  \"max_replicas\": %u,\n",
            ms_cluster_devices(c), c->rows, c->cols, c->slots_per_device, p->n_layers, p->n_routed,
            p->has_shared ? "true" : "false", p->n_logical, p->max_replicas);
    fputs("  \"phy2log\": [\n", fp);
    for (uint32_t l = 0; l < p->n_layers; l++) {
        fputs("    ", fp);
        put_i32_row(fp, p->phy2log + (size_t)l * p->n_phys, p->n_phys);
        fputs(l + 1 < p->n_layers ? ",\n" : "\n", fp);
    }
    fputs("  ],\n  \"log2phy\": [\n", fp);
    for (uint32_t l = 0; l < p->n_layers; l++) {
        fputs("    [", fp);
        for (uint32_t e = 0; e < p->n_logical; e++) {
            if (e) fputs(", ", fp);
            put_i32_row(fp, p->log2phy + ((size_t)l * p->n_logical + e) * p->max_replicas, p->max_replicas);
        }
        fputs(l + 1 < p->n_layers ? "],\n" : "]\n", fp);
    }
    fputs("  ],\n  \"logcnt\": [\n", fp);
    for (uint32_t l = 0; l < p->n_layers; l++) {
        fputs("    [", fp);
        for (uint32_t e = 0; e < p->n_logical; e++)
            fprintf(fp, e ? ", %u" : "%u", p->logcnt[(size_t)l * p->n_logical + e]);
        fputs(l + 1 < p->n_layers ? "],\n" : "]\n", fp);
    }
    fputs("  ],\n  \"metadata\": {\n    \"algorithm\": ", fp);
    put_string(fp, p->algorithm);
    fputs(",\n    \"params\": ", fp);
    json_t *pj = p->params[0] ? json_loads(p->params, 0, NULL) : NULL;
    if (pj && (json_is_object(pj) || json_is_array(pj))) {
        char *t = json_dumps(pj, JSON_COMPACT);
        fputs(t ? t : "null", fp);
        free(t);
    } else {
        put_string(fp, p->params);
    }
    json_decref(pj);
    fputs(",\n    \"objective\": ", fp);
    put_double(fp, p->objective);
    fputs(",\n    \"lower_bound\": ", fp);
    put_double(fp, p->lower_bound);
    fputs(",\n    \"layer_bound\": ", fp);
    if (p->layer_bound) {
        fputc('[', fp);
        for (uint32_t l = 0; l < p->n_layers; l++) {
            if (l) fputs(", ", fp);
            put_double(fp, p->layer_bound[l]);
        }
        fputc(']', fp);
    } else {
        fputs("null", fp);
    }
    fputs(",\n    \"runtime_s\": ", fp);
    put_double(fp, p->runtime_s);
    fprintf(fp, ",\n    \"trace_digest\": \"0x%016" PRIx64 "\"\n  }\n}\n", p->trace_digest);
    return ms_afile_commit(&f, err);
}

ms_status ms_placement_write_sglang(const ms_placement *p, const char *path, ms_error *err) {
    ms_status st = ms_placement_check(p, err);
    if (st != MS_OK) return st;
    for (uint32_t l = 0; l < p->n_layers; l++)
        for (uint32_t s = 0; s < p->n_phys; s++)
            if (p->phy2log[(size_t)l * p->n_phys + s] < 0)
                return ms_error_set(err, MS_E_INPUT,
                                    "layer %u slot %u is empty; SGLang's physical_to_logical_map needs every slot filled", l, s);
    ms_afile f;
    if ((st = ms_afile_open(&f, path, err)) != MS_OK) return st;
    fputs("{\n  \"physical_to_logical_map\": [\n", f.fp);
    for (uint32_t l = 0; l < p->n_layers; l++) {
        fputs("    ", f.fp);
        put_i32_row(f.fp, p->phy2log + (size_t)l * p->n_phys, p->n_phys);
        fputs(l + 1 < p->n_layers ? ",\n" : "\n", f.fp);
    }
    fputs("  ]\n}\n", f.fp);
    return ms_afile_commit(&f, err);
}

ms_status ms_placement_write_peer(const ms_placement *p, uint32_t layer, const char *path, ms_error *err) {
    ms_status st = ms_placement_check(p, err);
    if (st != MS_OK) return st;
    if (!p->log2phy) return ms_error_set(err, MS_E_INPUT, "placement is not indexed (no log2phy)");
    if (layer >= p->n_layers)
        return ms_error_set(err, MS_E_INPUT, "layer %u out of range: the placement has %u layers", layer, p->n_layers);
    ms_afile f;
    if ((st = ms_afile_open(&f, path, err)) != MS_OK) return st;
    const ms_cluster *c = &p->cluster;
    uint32_t spd = c->slots_per_device;
    fputs("{", f.fp);
    for (uint32_t e = 0; e < p->n_logical; e++) {
        const int32_t *r = p->log2phy + ((size_t)layer * p->n_logical + e) * p->max_replicas;
        uint32_t n = p->logcnt[(size_t)layer * p->n_logical + e];
        fprintf(f.fp, "%s\n  \"%u\": [", e ? "," : "", e);
        for (uint32_t j = 0; j < n; j++) {
            uint32_t slot = (uint32_t)r[j], d = slot / spd;
            fprintf(f.fp,
                    "%s\n    {\n      \"device\": %u,\n      \"row\": %u,\n      \"col\": %u,\n      \"slot\": %u\n    }",
                    j ? "," : "", d, d / c->cols, d % c->cols, slot % spd);
        }
        fputs(n ? "\n  ]" : "]", f.fp);
    }
    fputs(p->n_logical ? "\n}" : "}", f.fp);
    return ms_afile_commit(&f, err);
}

/* ------------------------------------------------------------- reading */

/* Integer member `key` of object o in [lo, hi]; MS_E_INPUT naming it. */
static ms_status get_int(const char *path, json_t *o, const char *key, long long lo, long long hi, long long *out,
                         ms_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v) return ms_error_set(err, MS_E_INPUT, "%s: missing \"%s\"", path, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ms_error_set(err, MS_E_INPUT, "%s: \"%s\" must be an integer in [%lld, %lld]", path, key, lo, hi);
    *out = json_integer_value(v);
    return MS_OK;
}

static bool cluster_given(const ms_cluster *c) {
    return c && (c->rows || c->cols || c->slots_per_device);
}

static ms_status cluster_match(const char *path, const ms_cluster *want, const ms_cluster *got, ms_error *err) {
    if (!cluster_given(want)) return MS_OK;
    if (want->rows != got->rows || want->cols != got->cols || want->slots_per_device != got->slots_per_device)
        return ms_error_set(err, MS_E_INPUT, "%s: placement is for %ux%u devices x %u slots, expected %ux%u x %u", path,
                            got->rows, got->cols, got->slots_per_device, want->rows, want->cols, want->slots_per_device);
    return MS_OK;
}

/* Reads one layer row of n ints in [-1, limit) into dst. */
static ms_status read_row(const char *path, const char *what, uint32_t l, json_t *a, size_t n, long long limit,
                          int32_t *dst, ms_error *err) {
    if (!json_is_array(a) || json_array_size(a) != n)
        return ms_error_set(err, MS_E_INPUT, "%s: %s layer %u must be an array of %zu integers", path, what, l, n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) >= limit)
            return ms_error_set(err, MS_E_INPUT, "%s: %s layer %u entry %zu must be an integer in [-1, %lld)", path, what, l,
                                i, limit);
        dst[i] = (int32_t)json_integer_value(v);
    }
    return MS_OK;
}

/* Entries a reader may allocate per table beyond what the text itself
 * spells out: a fixed 2^24 (64 MiB of int32) plus 16 per input byte. */
static uint64_t alloc_budget(size_t len) {
    return (1ull << 24) + 16ull * len;
}

/* Fails MS_E_INPUT when the padded log2phy that ms_placement_index would
 * build for p (layers x logical experts x the most replicas any expert has in
 * any layer) exceeds alloc_budget(len), so that a small file of one heavily
 * replicated expert among many cannot make a huge table. */
static ms_status check_index_size(const char *path, const ms_placement *p, size_t len, ms_error *err) {
    uint32_t *cnt = ms_calloc_array(p->n_logical, sizeof *cnt, err);
    if (!cnt) return MS_E_NOMEM;
    uint32_t maxr = 1;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        for (uint32_t s = 0; s < p->n_phys; s++)
            if (row[s] >= 0 && (uint32_t)row[s] < p->n_logical && ++cnt[row[s]] > maxr) maxr = cnt[row[s]];
        for (uint32_t s = 0; s < p->n_phys; s++)
            if (row[s] >= 0 && (uint32_t)row[s] < p->n_logical) cnt[row[s]] = 0;
    }
    ms_free(cnt);
    uint64_t need = (uint64_t)p->n_layers * p->n_logical * maxr;
    if (need > alloc_budget(len))
        return ms_error_set(err, MS_E_INPUT,
                            "%s: %u layers x %u experts x up to %u replicas: the replica table (%llu entries) is too large "
                            "for a %zu-byte file",
                            path, p->n_layers, p->n_logical, maxr, (unsigned long long)need, len);
    return MS_OK;
}

static ms_status read_moesim(const char *path, size_t len, json_t *root, const ms_cluster *want, uint32_t want_routed,
                             ms_placement **out, ms_error *err) {
    long long rows = 0, cols = 0, spd = 0, layers = 0, routed = 0, devices = 0;
    ms_status st;
    if ((st = get_int(path, root, "rows", 1, 1 << 24, &rows, err)) != MS_OK ||
        (st = get_int(path, root, "cols", 1, 1 << 24, &cols, err)) != MS_OK ||
        (st = get_int(path, root, "slots_per_device", 1, 1 << 24, &spd, err)) != MS_OK ||
        (st = get_int(path, root, "layers", 1, 1 << 20, &layers, err)) != MS_OK ||
        (st = get_int(path, root, "routed_experts", 1, 1 << 24, &routed, err)) != MS_OK)
        return st;
    json_t *sh = json_object_get(root, "shared_expert");
    if (sh && !json_is_boolean(sh)) return ms_error_set(err, MS_E_INPUT, "%s: \"shared_expert\" must be true or false", path);
    bool has_shared = sh && json_is_true(sh);
    ms_cluster c = {(uint32_t)rows, (uint32_t)cols, (uint32_t)spd};
    if ((st = ms_cluster_check(&c, err)) != MS_OK) return ms_error_prefix(err, path);
    if (json_object_get(root, "devices")) {
        if ((st = get_int(path, root, "devices", 0, 1LL << 48, &devices, err)) != MS_OK) return st;
        if ((uint64_t)devices != ms_cluster_devices(&c))
            return ms_error_set(err, MS_E_INPUT, "%s: \"devices\" is %lld but rows x cols is %u", path, devices,
                                ms_cluster_devices(&c));
    }
    if ((st = cluster_match(path, want, &c, err)) != MS_OK) return st;
    if (want_routed && want_routed != (uint32_t)routed)
        return ms_error_set(err, MS_E_INPUT, "%s: placement has %lld routed experts, expected %u", path, routed, want_routed);
    json_t *ph = json_object_get(root, "phy2log");
    if (!json_is_array(ph) || json_array_size(ph) != (size_t)layers)
        return ms_error_set(err, MS_E_INPUT, "%s: \"phy2log\" must be an array of %lld layers", path, layers);
    /* sizes first, so that allocations are bounded by what the file holds */
    uint32_t n_phys = ms_cluster_slots(&c);
    if ((uint64_t)routed + has_shared > n_phys)
        return ms_error_set(err, MS_E_INPUT, "%s: %lld experts cannot each have a slot among %u", path,
                            routed + has_shared, n_phys);
    for (size_t l = 0; l < (size_t)layers; l++)
        if (!json_is_array(json_array_get(ph, l)) || json_array_size(json_array_get(ph, l)) != n_phys)
            return ms_error_set(err, MS_E_INPUT, "%s: phy2log layer %zu must be an array of %u integers", path, l, n_phys);
    json_t *lp = json_object_get(root, "log2phy");
    size_t width = 0;
    if (lp) {
        json_t *e0 = json_array_get(json_array_get(lp, 0), 0);
        width = json_is_array(e0) ? json_array_size(e0) : 0;
        bool ok = json_is_array(lp) && json_array_size(lp) == (size_t)layers && width > 0 && width <= n_phys;
        for (size_t l = 0; ok && l < (size_t)layers; l++) {
            json_t *la = json_array_get(lp, l);
            ok = json_is_array(la) && json_array_size(la) == (size_t)(routed + has_shared);
            for (size_t e = 0; ok && e < json_array_size(la); e++)
                ok = json_is_array(json_array_get(la, e)) && json_array_size(json_array_get(la, e)) == width;
        }
        if (!ok)
            return ms_error_set(err, MS_E_INPUT, "%s: \"log2phy\" must be [%lld layers][%lld experts][replicas] of integers",
                                path, layers, routed + has_shared);
    }
    ms_placement *p;
    if ((st = ms_placement_new((uint32_t)layers, &c, (uint32_t)routed, has_shared, &p, err)) != MS_OK)
        return ms_error_prefix(err, path);
    for (uint32_t l = 0; l < p->n_layers; l++)
        if ((st = read_row(path, "phy2log", l, json_array_get(ph, l), p->n_phys, p->n_logical,
                           p->phy2log + (size_t)l * p->n_phys, err)) != MS_OK)
            goto fail;
    if (lp) {
        p->max_replicas = (uint32_t)width;
        p->log2phy = ms_alloc_array((size_t)p->n_layers * p->n_logical, width * sizeof(int32_t), err);
        p->logcnt = ms_calloc_array((size_t)p->n_layers * p->n_logical, sizeof(uint32_t), err);
        if (!p->log2phy || !p->logcnt) {
            st = MS_E_NOMEM;
            goto fail;
        }
        for (uint32_t l = 0; l < p->n_layers; l++) {
            json_t *la = json_array_get(lp, l);
            if (!json_is_array(la) || json_array_size(la) != p->n_logical) {
                st = ms_error_set(err, MS_E_INPUT, "%s: \"log2phy\" layer %u must list %u experts", path, l, p->n_logical);
                goto fail;
            }
            for (uint32_t e = 0; e < p->n_logical; e++) {
                int32_t *dst = p->log2phy + ((size_t)l * p->n_logical + e) * width;
                if ((st = read_row(path, "log2phy", l, json_array_get(la, e), width, p->n_phys, dst, err)) != MS_OK) goto fail;
                uint32_t n = 0;
                while (n < width && dst[n] >= 0) n++;
                p->logcnt[(size_t)l * p->n_logical + e] = n;
            }
        }
        json_t *lc = json_object_get(root, "logcnt");
        if (lc) {
            for (uint32_t l = 0; l < p->n_layers; l++) {
                json_t *la = json_array_get(lc, l);
                if (!json_is_array(lc) || !json_is_array(la) || json_array_size(la) != p->n_logical) {
                    st = ms_error_set(err, MS_E_INPUT, "%s: \"logcnt\" must be [%lld layers][%u experts]", path, layers,
                                      p->n_logical);
                    goto fail;
                }
                for (uint32_t e = 0; e < p->n_logical; e++) {
                    json_t *v = json_array_get(la, e);
                    if (!json_is_integer(v) || json_integer_value(v) != (json_int_t)p->logcnt[(size_t)l * p->n_logical + e]) {
                        st = ms_error_set(err, MS_E_INPUT, "%s: \"logcnt\" layer %u expert %u disagrees with log2phy", path, l,
                                          e);
                        goto fail;
                    }
                }
            }
        }
    } else if ((st = check_index_size(path, p, len, err)) != MS_OK || (st = ms_placement_index(p, err)) != MS_OK) {
        goto fail;
    }
    json_t *md = json_object_get(root, "metadata");
    if (md && !json_is_object(md)) {
        st = ms_error_set(err, MS_E_INPUT, "%s: \"metadata\" must be an object", path);
        goto fail;
    }
    if (md) {
        json_t *v;
        if ((v = json_object_get(md, "algorithm")) && json_is_string(v))
            snprintf(p->algorithm, sizeof p->algorithm, "%s", json_string_value(v));
        if ((v = json_object_get(md, "params"))) {
            if (json_is_string(v)) snprintf(p->params, sizeof p->params, "%s", json_string_value(v));
            else if (json_is_object(v) || json_is_array(v)) {
                char *t = json_dumps(v, JSON_COMPACT);
                if (t && strlen(t) < sizeof p->params) strcpy(p->params, t);
                free(t);
            }
        }
        if ((v = json_object_get(md, "objective")) && json_is_number(v)) p->objective = json_number_value(v);
        if ((v = json_object_get(md, "lower_bound")) && json_is_number(v)) p->lower_bound = json_number_value(v);
        if ((v = json_object_get(md, "runtime_s")) && json_is_number(v)) p->runtime_s = json_number_value(v);
        if ((v = json_object_get(md, "trace_digest")) && json_is_string(v)) {
            errno = 0;
            char *end;
            unsigned long long d = strtoull(json_string_value(v), &end, 16);
            if (!errno && *end == '\0') p->trace_digest = d;
        }
        if ((v = json_object_get(md, "layer_bound")) && json_is_array(v) && json_array_size(v) == p->n_layers) {
            p->layer_bound = ms_alloc_array(p->n_layers, sizeof *p->layer_bound, err);
            if (!p->layer_bound) {
                st = MS_E_NOMEM;
                goto fail;
            }
            for (uint32_t l = 0; l < p->n_layers; l++) {
                json_t *b = json_array_get(v, l);
                p->layer_bound[l] = json_is_number(b) ? json_number_value(b) : NAN;
            }
        }
    }
    if ((st = ms_placement_check(p, err)) != MS_OK) {
        ms_error_prefix(err, path);
        goto fail;
    }
    *out = p;
    return MS_OK;
fail:
    ms_placement_free(p);
    return st;
}

/* n_routed for files that only hold ids: want (id want = shared) or max+1. */
static ms_status routed_count(const char *path, long long max_id, uint32_t want, uint32_t slots, uint32_t *n_routed,
                              bool *shared, ms_error *err) {
    if (max_id < 0) return ms_error_set(err, MS_E_INPUT, "%s: the placement holds no experts", path);
    if (want && max_id > (long long)want)
        return ms_error_set(err, MS_E_INPUT, "%s: expert id %lld is out of range for %u routed experts (+1 shared)", path,
                            max_id, want);
    long long n = want ? (long long)want : max_id + 1;
    bool sh = want && max_id == (long long)want;
    if (n + sh > (long long)slots)
        return ms_error_set(err, MS_E_INPUT, "%s: %lld experts cannot each have a slot among %u", path, n + sh, slots);
    *n_routed = (uint32_t)n;
    *shared = sh;
    return MS_OK;
}

static ms_status read_sglang(const char *path, size_t len, json_t *root, const ms_cluster *want, uint32_t want_routed,
                             ms_placement **out, ms_error *err) {
    json_t *m = json_object_get(root, "physical_to_logical_map");
    if (!json_is_array(m) || json_array_size(m) == 0 || !json_is_array(json_array_get(m, 0)) ||
        json_array_size(json_array_get(m, 0)) == 0)
        return ms_error_set(err, MS_E_INPUT, "%s: \"physical_to_logical_map\" must be a non-empty array of layers", path);
    size_t layers = json_array_size(m), n = json_array_size(json_array_get(m, 0));
    if (layers > (1u << 20) || n > (1u << 24))
        return ms_error_set(err, MS_E_INPUT, "%s: physical_to_logical_map is too large", path);
    ms_cluster c = {1, (uint32_t)n, 1};
    if (cluster_given(want)) {
        if (ms_cluster_slots(want) != n)
            return ms_error_set(err, MS_E_INPUT, "%s: %zu slots per layer but the cluster %ux%u x %u has %u", path, n,
                                want->rows, want->cols, want->slots_per_device, ms_cluster_slots(want));
        c = *want;
    }
    /* every layer's length first, so that the allocation is bounded by the text */
    for (size_t l = 1; l < layers; l++)
        if (!json_is_array(json_array_get(m, l)) || json_array_size(json_array_get(m, l)) != n)
            return ms_error_set(err, MS_E_INPUT, "%s: physical_to_logical_map layer %zu must be an array of %zu integers",
                                path, l, n);
    int32_t *ids = ms_alloc_array(layers * n, sizeof *ids, err);
    if (!ids) return MS_E_NOMEM;
    ms_status st = MS_OK;
    long long max_id = -1;
    for (size_t l = 0; l < layers && st == MS_OK; l++) {
        st = read_row(path, "physical_to_logical_map", (uint32_t)l, json_array_get(m, l), n, 1 << 24, ids + l * n, err);
        for (size_t i = 0; st == MS_OK && i < n; i++)
            if (ids[l * n + i] > max_id) max_id = ids[l * n + i];
    }
    uint32_t n_routed = 0;
    bool shared = false;
    ms_placement *p = NULL;
    if (st == MS_OK) st = routed_count(path, max_id, want_routed, ms_cluster_slots(&c), &n_routed, &shared, err);
    if (st == MS_OK && (st = ms_placement_new((uint32_t)layers, &c, n_routed, shared, &p, err)) != MS_OK)
        ms_error_prefix(err, path);
    if (st == MS_OK) {
        memcpy(p->phy2log, ids, layers * n * sizeof *ids);
        snprintf(p->algorithm, sizeof p->algorithm, "sglang");
        if ((st = check_index_size(path, p, len, err)) == MS_OK && (st = ms_placement_index(p, err)) == MS_OK &&
            (st = ms_placement_check(p, err)) != MS_OK)
            ms_error_prefix(err, path);
    }
    ms_free(ids);
    if (st != MS_OK) {
        ms_placement_free(p);
        return st;
    }
    *out = p;
    return MS_OK;
}

static bool is_id_key(const char *k) {
    if (!*k || strlen(k) > 8) return false;
    for (const char *s = k; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return k[0] != '0' || k[1] == '\0';
}

static ms_status read_peer(const char *path, size_t len, json_t *root, const ms_cluster *want, uint32_t want_routed,
                           ms_placement **out, ms_error *err) {
    const char *key;
    json_t *val;
    long long max_id = -1, max_row = -1, max_col = -1, max_slot = -1;
    size_t max_len = 0;
    json_object_foreach(root, key, val) {
        long long e = atoll(key);
        if (e > max_id) max_id = e;
        if (!json_is_array(val))
            return ms_error_set(err, MS_E_INPUT, "%s: expert \"%s\" must map to a list of replicas", path, key);
        if (json_array_size(val) > max_len) max_len = json_array_size(val);
        for (size_t j = 0; j < json_array_size(val); j++) {
            json_t *r = json_array_get(val, j);
            long long v[4] = {0, 0, 0, 0};
            static const char *const names[4] = {"device", "row", "col", "slot"};
            if (!json_is_object(r))
                return ms_error_set(err, MS_E_INPUT, "%s: expert %s replica %zu must be {device, row, col, slot}", path, key, j);
            for (int k = 0; k < 4; k++) {
                char where[96];
                snprintf(where, sizeof where, "%s: expert %s replica %zu", path, key, j);
                ms_status st = get_int(where, r, names[k], 0, (1 << 24) - 1, &v[k], err);
                if (st != MS_OK) return st;
            }
            if (v[1] > max_row) max_row = v[1];
            if (v[2] > max_col) max_col = v[2];
            if (v[3] > max_slot) max_slot = v[3];
        }
    }
    if (max_row < 0) return ms_error_set(err, MS_E_INPUT, "%s: the placement lists no replicas", path);
    ms_cluster c = {(uint32_t)max_row + 1, (uint32_t)max_col + 1, (uint32_t)max_slot + 1};
    if (cluster_given(want)) c = *want;
    ms_status st = ms_cluster_check(&c, err);
    if (st != MS_OK) return ms_error_prefix(err, path);
    /* an inferred grid must be backed by the text: at most 2^16 slots plus 64
     * per input byte (a listed replica takes some 40 bytes), so that a tiny
     * file naming row 4095 cannot allocate 2^24 slots */
    if (!cluster_given(want) && ms_cluster_slots(&c) > (1ull << 16) + 64ull * len)
        return ms_error_set(err, MS_E_INPUT,
                            "%s: the replicas imply a %ux%u grid with %u slots per device, too large for what the file "
                            "lists; pass the cluster explicitly",
                            path, c.rows, c.cols, c.slots_per_device);
    uint32_t n_routed = 0;
    bool shared = false;
    if ((st = routed_count(path, max_id, want_routed, ms_cluster_slots(&c), &n_routed, &shared, err)) != MS_OK) return st;
    ms_placement *p;
    if ((st = ms_placement_new(1, &c, n_routed, shared, &p, err)) != MS_OK) return ms_error_prefix(err, path);
    if ((uint64_t)p->n_logical * (max_len ? max_len : 1) > alloc_budget(len)) {
        ms_placement_free(p);
        return ms_error_set(err, MS_E_INPUT, "%s: %u experts with up to %zu replicas each: too large", path, n_routed,
                            max_len);
    }
    p->max_replicas = max_len ? (uint32_t)max_len : 1;
    p->log2phy = ms_alloc_array(p->n_logical, (size_t)p->max_replicas * sizeof(int32_t), err);
    p->logcnt = ms_calloc_array(p->n_logical, sizeof(uint32_t), err);
    if (!p->log2phy || !p->logcnt) {
        ms_placement_free(p);
        return MS_E_NOMEM;
    }
    for (size_t i = 0; i < (size_t)p->n_logical * p->max_replicas; i++) p->log2phy[i] = -1;
    json_object_foreach(root, key, val) {
        uint32_t e = (uint32_t)atoll(key);
        for (size_t j = 0; j < json_array_size(val); j++) {
            json_t *r = json_array_get(val, j);
            uint32_t dev = (uint32_t)json_integer_value(json_object_get(r, "device"));
            uint32_t row = (uint32_t)json_integer_value(json_object_get(r, "row"));
            uint32_t col = (uint32_t)json_integer_value(json_object_get(r, "col"));
            uint32_t slot = (uint32_t)json_integer_value(json_object_get(r, "slot"));
            if (row >= c.rows || col >= c.cols || slot >= c.slots_per_device || dev != row * c.cols + col) {
                st = ms_error_set(err, MS_E_INPUT,
                                  "%s: expert %s replica %zu: device %u row %u col %u slot %u does not fit a %ux%u grid with %u slots (device = row * cols + col)",
                                  path, key, j, dev, row, col, slot, c.rows, c.cols, c.slots_per_device);
                break;
            }
            uint32_t s = dev * c.slots_per_device + slot;
            if (p->phy2log[s] >= 0) {
                st = ms_error_set(err, MS_E_INPUT, "%s: device %u slot %u holds both expert %d and expert %s", path, dev, slot,
                                  (int)p->phy2log[s], key);
                break;
            }
            p->phy2log[s] = (int32_t)e;
            p->log2phy[(size_t)e * p->max_replicas + j] = (int32_t)s;
            p->logcnt[e]++;
        }
        if (st != MS_OK) break;
    }
    snprintf(p->algorithm, sizeof p->algorithm, "peer");
    if (st == MS_OK && (st = ms_placement_check(p, err)) != MS_OK) ms_error_prefix(err, path);
    if (st != MS_OK) {
        ms_placement_free(p);
        return st;
    }
    *out = p;
    return MS_OK;
}

ms_status ms_placement_parse_json(const char *text, size_t len, const char *label, const ms_cluster *c,
                                  uint32_t n_routed, ms_placement **out, ms_error *err) {
    *out = NULL;
    if (!label) label = "placement";
    if (!text) text = "", len = 0;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return ms_error_set(err, MS_E_INPUT, "%s: line %d: invalid JSON: %s", label, je.line, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return ms_error_set(err, MS_E_INPUT, "%s: a placement must be a JSON object", label);
    }
    bool all_ids = json_object_size(root) > 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) all_ids = all_ids && is_id_key(key);
    ms_status st;
    if (json_object_get(root, "phy2log")) st = read_moesim(label, len, root, c, n_routed, out, err);
    else if (json_object_get(root, "physical_to_logical_map")) st = read_sglang(label, len, root, c, n_routed, out, err);
    else if (all_ids) st = read_peer(label, len, root, c, n_routed, out, err);
    else
        st = ms_error_set(err, MS_E_INPUT,
                          "%s: not a placement: expected moesim's JSON (\"phy2log\"), SGLang's (\"physical_to_logical_map\") "
                          "or moe-balance's placement.json (expert id -> replicas)",
                          label);
    json_decref(root);
    return st;
}

ms_status ms_placement_read_json(const char *path, const ms_cluster *c, uint32_t n_routed, ms_placement **out,
                                 ms_error *err) {
    *out = NULL;
    uint8_t *buf;
    size_t len;
    ms_status st = ms_file_read_all(path, &buf, &len, err);
    if (st != MS_OK) return st;
    st = ms_placement_parse_json((const char *)buf, len, path, c, n_routed, out, err);
    ms_free(buf);
    return st;
}
