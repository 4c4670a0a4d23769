/* placement.c - the placement object: allocation, indexing, invariants and
 * the maximum device load measure. See moesim/place.h. */
#include "moesim/place.h"

#include <math.h>
#include <string.h>

#define MS_MAX_SLOTS (1u << 24)
#define MS_MAX_LOG2PHY (1ull << 30) /* entries of the padded log2phy (4 GiB) */

ms_status ms_cluster_check(const ms_cluster *c, ms_error *err) {
    if (!c) return ms_error_set(err, MS_E_INPUT, "no cluster given");
    if (c->rows == 0 || c->cols == 0 || c->slots_per_device == 0)
        return ms_error_set(err, MS_E_INPUT, "cluster %ux%u with %u slots per device: rows, cols and slots must be positive",
                            c->rows, c->cols, c->slots_per_device);
    uint64_t total = (uint64_t)c->rows * c->cols * c->slots_per_device;
    if ((uint64_t)c->rows * c->cols > MS_MAX_SLOTS || total > MS_MAX_SLOTS)
        return ms_error_set(err, MS_E_INPUT, "cluster %ux%u with %u slots per device has %llu slots; at most %u allowed",
                            c->rows, c->cols, c->slots_per_device, (unsigned long long)total, MS_MAX_SLOTS);
    return MS_OK;
}

ms_status ms_placement_new(uint32_t n_layers, const ms_cluster *c, uint32_t n_routed, bool has_shared,
                           ms_placement **out, ms_error *err) {
    *out = NULL;
    ms_status st = ms_cluster_check(c, err);
    if (st != MS_OK) return st;
    if (n_layers == 0) return ms_error_set(err, MS_E_INPUT, "a placement needs at least one layer");
    if (n_routed == 0 || n_routed > MS_MAX_SLOTS)
        return ms_error_set(err, MS_E_INPUT, "%u routed experts: need between 1 and %u", n_routed, MS_MAX_SLOTS);
    ms_placement *p = ms_calloc_array(1, sizeof *p, err);
    if (!p) return MS_E_NOMEM;
    p->n_layers = n_layers;
    p->cluster = *c;
    p->n_phys = ms_cluster_slots(c);
    p->n_routed = n_routed;
    p->has_shared = has_shared;
    p->n_logical = n_routed + (has_shared ? 1 : 0);
    p->objective = NAN;
    p->lower_bound = NAN;
    p->phy2log = ms_alloc_array((size_t)n_layers * p->n_phys, sizeof *p->phy2log, err);
    if (!p->phy2log) {
        ms_free(p);
        return MS_E_NOMEM;
    }
    for (size_t i = 0; i < (size_t)n_layers * p->n_phys; i++) p->phy2log[i] = -1;
    *out = p;
    return MS_OK;
}

void ms_placement_free(ms_placement *p) {
    if (!p) return;
    ms_free(p->phy2log);
    ms_free(p->log2phy);
    ms_free(p->logcnt);
    ms_free(p->layer_bound);
    ms_free(p);
}

static void *dup_array(const void *src, size_t n, size_t size, ms_error *err) {
    if (!src) return NULL;
    void *d = ms_alloc_array(n, size, err);
    if (d) memcpy(d, src, n * size);
    return d;
}

ms_status ms_placement_clone(const ms_placement *p, ms_placement **out, ms_error *err) {
    *out = NULL;
    ms_placement *q = ms_calloc_array(1, sizeof *q, err);
    if (!q) return MS_E_NOMEM;
    *q = *p;
    q->phy2log = NULL;
    q->log2phy = NULL;
    q->logcnt = NULL;
    q->layer_bound = NULL;
    size_t nl = p->n_layers;
    q->phy2log = dup_array(p->phy2log, nl * p->n_phys, sizeof *p->phy2log, err);
    if (p->log2phy) q->log2phy = dup_array(p->log2phy, nl * p->n_logical * p->max_replicas, sizeof *p->log2phy, err);
    if (p->logcnt) q->logcnt = dup_array(p->logcnt, nl * p->n_logical, sizeof *p->logcnt, err);
    if (p->layer_bound) q->layer_bound = dup_array(p->layer_bound, nl, sizeof *p->layer_bound, err);
    if (!q->phy2log || (p->log2phy && !q->log2phy) || (p->logcnt && !q->logcnt) ||
        (p->layer_bound && !q->layer_bound)) {
        ms_placement_free(q);
        return MS_E_NOMEM;
    }
    *out = q;
    return MS_OK;
}

ms_status ms_placement_index(ms_placement *p, ms_error *err) {
    size_t nl = p->n_layers, nlog = p->n_logical;
    uint32_t *cnt = ms_calloc_array(nl * nlog, sizeof *cnt, err);
    if (!cnt) return MS_E_NOMEM;
    uint32_t maxr = 1;
    for (size_t l = 0; l < nl; l++) {
        const int32_t *row = p->phy2log + l * p->n_phys;
        uint32_t *c = cnt + l * nlog;
        for (uint32_t s = 0; s < p->n_phys; s++)
            if (row[s] >= 0 && (uint32_t)row[s] < nlog && ++c[row[s]] > maxr) maxr = c[row[s]];
    }
    if ((uint64_t)nl * nlog * maxr > MS_MAX_LOG2PHY) {
        ms_free(cnt);
        return ms_error_set(err, MS_E_NOMEM, "log2phy would need %llu entries (%zu layers x %zu experts x %u replicas)",
                            (unsigned long long)nl * nlog * maxr, nl, nlog, maxr);
    }
    int32_t *l2p = ms_alloc_array(nl * nlog, (size_t)maxr * sizeof(int32_t), err);
    if (!l2p) {
        ms_free(cnt);
        return MS_E_NOMEM;
    }
    for (size_t i = 0; i < nl * nlog * maxr; i++) l2p[i] = -1;
    uint32_t *fill = ms_calloc_array(nlog, sizeof *fill, err);
    if (!fill) {
        ms_free(cnt);
        ms_free(l2p);
        return MS_E_NOMEM;
    }
    for (size_t l = 0; l < nl; l++) {
        memset(fill, 0, nlog * sizeof *fill);
        const int32_t *row = p->phy2log + l * p->n_phys;
        for (uint32_t s = 0; s < p->n_phys; s++) {
            int32_t e = row[s];
            if (e < 0 || (uint32_t)e >= nlog) continue;
            l2p[(l * nlog + (size_t)e) * maxr + fill[e]++] = (int32_t)s;
        }
    }
    ms_free(fill);
    ms_free(p->log2phy);
    ms_free(p->logcnt);
    p->log2phy = l2p;
    p->logcnt = cnt;
    p->max_replicas = maxr;
    return MS_OK;
}

ms_status ms_placement_check(const ms_placement *p, ms_error *err) {
    if (!p || !p->phy2log) return ms_error_set(err, MS_E_INPUT, "placement is empty");
    if (p->n_phys != ms_cluster_slots(&p->cluster))
        return ms_error_set(err, MS_E_INPUT, "placement has %u slots per layer but its %ux%u cluster with %u slots per device has %u",
                            p->n_phys, p->cluster.rows, p->cluster.cols, p->cluster.slots_per_device,
                            ms_cluster_slots(&p->cluster));
    if (p->n_logical != p->n_routed + (p->has_shared ? 1u : 0u))
        return ms_error_set(err, MS_E_INPUT, "placement has %u logical experts but %u routed%s", p->n_logical,
                            p->n_routed, p->has_shared ? " + 1 shared" : "");
    size_t nlog = p->n_logical;
    uint32_t *cnt = ms_alloc_array(nlog, sizeof *cnt, err);
    uint8_t *seen = ms_alloc_array(p->n_phys, 1, err);
    ms_status st = MS_OK;
    if (!cnt || !seen) {
        st = MS_E_NOMEM;
        goto done;
    }
    for (uint32_t l = 0; l < p->n_layers && st == MS_OK; l++) {
        const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
        memset(cnt, 0, nlog * sizeof *cnt);
        for (uint32_t s = 0; s < p->n_phys; s++) {
            if (row[s] < -1 || (row[s] >= 0 && (uint32_t)row[s] >= nlog)) {
                st = ms_error_set(err, MS_E_INPUT, "layer %u slot %u holds expert %d; ids must be -1 (empty) or in [0, %zu)",
                                  l, s, (int)row[s], nlog);
                break;
            }
            if (row[s] >= 0) cnt[row[s]]++;
        }
        if (st != MS_OK) break;
        for (size_t e = 0; e < nlog; e++)
            if (cnt[e] == 0) {
                st = ms_error_set(err, MS_E_INPUT, "layer %u: %s expert %zu has no slot", l,
                                  (p->has_shared && e == p->n_routed) ? "shared" : "logical", e);
                break;
            }
        if (st != MS_OK || !p->log2phy) continue;
        if (!p->logcnt) {
            st = ms_error_set(err, MS_E_INPUT, "placement has log2phy but no logcnt");
            break;
        }
        memset(seen, 0, p->n_phys);
        for (size_t e = 0; e < nlog && st == MS_OK; e++) {
            uint32_t c = p->logcnt[(size_t)l * nlog + e];
            if (c != cnt[e]) {
                st = ms_error_set(err, MS_E_INPUT, "layer %u expert %zu: logcnt says %u replicas but %u slots hold it", l, e,
                                  c, cnt[e]);
                break;
            }
            if (c > p->max_replicas) {
                st = ms_error_set(err, MS_E_INPUT, "layer %u expert %zu: %u replicas exceed max_replicas %u", l, e, c,
                                  p->max_replicas);
                break;
            }
            const int32_t *r = p->log2phy + ((size_t)l * nlog + e) * p->max_replicas;
            for (uint32_t j = 0; j < c; j++) {
                if (r[j] < 0 || (uint32_t)r[j] >= p->n_phys || row[r[j]] != (int32_t)e || seen[r[j]]) {
                    st = ms_error_set(err, MS_E_INPUT, "layer %u expert %zu: log2phy entry %u (slot %d) %s", l, e, j, (int)r[j],
                                      (r[j] < 0 || (uint32_t)r[j] >= p->n_phys) ? "is out of range"
                                      : seen[r[j]]                             ? "is listed twice"
                                                                               : "does not hold this expert");
                    break;
                }
                seen[r[j]] = 1;
            }
            if (st != MS_OK) break;
            uint32_t bad = 0;
            for (uint32_t j = c; j < p->max_replicas; j++) bad |= (uint32_t)r[j] + 1u;
            if (bad)
                for (uint32_t j = c; j < p->max_replicas; j++)
                    if (r[j] != -1) {
                        st = ms_error_set(err, MS_E_INPUT, "layer %u expert %zu: log2phy entry %u is %d after its %u replicas; expected -1",
                                          l, e, j, (int)r[j], c);
                        break;
                    }
        }
    }
done:
    ms_free(cnt);
    ms_free(seen);
    return st;
}

double ms_placement_max_device_load(const ms_placement *p, const ms_loads *loads, uint32_t layer) {
    if (!p || !loads || !p->logcnt || layer >= p->n_layers || layer >= loads->n_layers) return NAN;
    if (loads->n_experts != p->n_routed && loads->n_experts != p->n_logical) return NAN;
    const int32_t *row = p->phy2log + (size_t)layer * p->n_phys;
    const double *w = loads->w + (size_t)layer * loads->n_experts;
    const uint32_t *cnt = p->logcnt + (size_t)layer * p->n_logical;
    uint32_t spd = p->cluster.slots_per_device;
    double best = 0;
    for (uint32_t d = 0; d < p->n_phys / spd; d++) {
        double sum = 0;
        for (uint32_t k = 0; k < spd; k++) {
            int32_t e = row[d * spd + k];
            if (e >= 0 && (uint32_t)e < loads->n_experts && cnt[e] > 0) sum += w[e] / cnt[e];
        }
        if (sum > best) best = sum;
    }
    return best;
}
