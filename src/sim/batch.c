/* batch.c - batches as a serving engine forms them (per request, prefill
 * packed to a token budget, decode with continuous batching) and the
 * data-parallel rank each token starts on. */
#include "moesim/sim.h"

#include <string.h>

void ms_batch_opts_default(ms_batch_opts *o) {
    memset(o, 0, sizeof *o);
    o->mode = MS_BATCH_PER_REQUEST;
    o->batch_tokens = 4096;
    o->decode_batch = 64;
    o->dp = MS_DP_ROUND_ROBIN;
    o->order = MS_ORDER_SEEDED;
    o->seed = 0;
}

void ms_batch_plan_free(ms_batch_plan *p) {
    if (!p) return;
    ms_free(p->off);
    ms_free(p->tok);
    ms_free(p->origin);
    ms_free(p);
}

/* prompt rows of request r (never more than its rows) */
static uint64_t req_prompt(const ms_trace *t, uint64_t r) {
    uint64_t all = t->tok_offset[r + 1] - t->tok_offset[r];
    return t->n_prompt[r] < all ? t->n_prompt[r] : all;
}

/* rows of request r in the phase the mode uses */
static uint64_t req_rows(const ms_trace *t, uint64_t r, ms_batch_mode m) {
    uint64_t all = t->tok_offset[r + 1] - t->tok_offset[r];
    if (m == MS_BATCH_PREFILL) return req_prompt(t, r);
    if (m == MS_BATCH_DECODE) return all - req_prompt(t, r);
    return all;
}

static uint64_t req_first(const ms_trace *t, uint64_t r, ms_batch_mode m) {
    return t->tok_offset[r] + (m == MS_BATCH_DECODE ? req_prompt(t, r) : 0);
}

static uint32_t argmin_u64(const uint64_t *v, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] < v[best]) best = i;
    return best;
}

ms_status ms_batch_plan_build(const ms_trace *t, const ms_batch_opts *o, uint32_t n_devices,
                              ms_batch_plan **out, ms_error *err) {
    *out = NULL;
    if (n_devices == 0) return ms_error_set(err, MS_E_INPUT, "batches: the cluster has no devices");
    if (t->n_tokens >= UINT32_MAX)
        return ms_error_set(err, MS_E_INPUT, "batches: the trace has %llu tokens (at most 2^32-2 supported)",
                            (unsigned long long)t->n_tokens);
    if (o->mode == MS_BATCH_PREFILL && o->batch_tokens == 0)
        return ms_error_set(err, MS_E_INPUT, "batches: --batch-tokens must be positive");
    if ((o->mode == MS_BATCH_DECODE || o->mode == MS_BATCH_MIXED) && o->decode_batch == 0)
        return ms_error_set(err, MS_E_INPUT, "batches: --decode-batch must be positive");
    if (o->mode == MS_BATCH_MIXED && o->batch_tokens == 0)
        return ms_error_set(err, MS_E_INPUT, "batches: --batch-tokens must be positive");

    uint64_t nreq = 0, ntok = 0;
    for (uint64_t r = 0; r < t->n_requests; r++) {
        uint64_t n = req_rows(t, r, o->mode);
        if (n) {
            nreq++;
            ntok += n;
        }
    }
    if (ntok == 0)
        return ms_error_set(err, MS_E_INPUT, "batches: the trace has no %s rows",
                            o->mode == MS_BATCH_PREFILL ? "prompt (prefill)"
                            : o->mode == MS_BATCH_DECODE ? "decode"
                                                         : "");

    ms_status st = MS_E_NOMEM;
    ms_batch_plan *p = ms_calloc_array(1, sizeof *p, err);
    uint64_t *order = NULL, *devload = NULL;
    uint64_t *slot_req = NULL, *slot_pos = NULL;
    uint32_t *slot_dev = NULL;
    if (!p) return MS_E_NOMEM;
    p->mode = o->mode;
    p->n_devices = n_devices;
    p->n_tokens = ntok;
    p->tok = ms_alloc_array(ntok, sizeof *p->tok, err);
    p->origin = ms_alloc_array(ntok, sizeof *p->origin, err);
    order = ms_alloc_array(nreq, sizeof *order, err);
    devload = ms_calloc_array(n_devices, sizeof *devload, err);
    if (!p->tok || !p->origin || !order || !devload) goto fail;
    {
        uint64_t i = 0;
        for (uint64_t r = 0; r < t->n_requests; r++)
            if (req_rows(t, r, o->mode)) order[i++] = r;
    }
    if (o->mode != MS_BATCH_PER_REQUEST && o->order == MS_ORDER_SEEDED) {
        ms_rng rng;
        ms_rng_seed(&rng, o->seed);
        ms_rng_shuffle_u64(&rng, order, nreq);
    }

    uint64_t pos = 0, nb = 0, cap_b = 0;
    uint64_t rr = 0;
#define PUSH_BATCH_START()                                                                              \
    do {                                                                                                 \
        if (nb + 1 >= cap_b) {                                                                           \
            uint64_t nc = cap_b ? cap_b * 2 : 1024;                                                      \
            uint64_t *no = ms_realloc_array(p->off, nc, sizeof *p->off, err);                            \
            if (!no) goto fail;                                                                          \
            p->off = no;                                                                                 \
            cap_b = nc;                                                                                  \
        }                                                                                                \
        p->off[nb] = pos;                                                                                \
    } while (0)

    if (o->mode == MS_BATCH_PER_REQUEST) {
        for (uint64_t i = 0; i < nreq; i++) {
            uint64_t r = order[i], n = req_rows(t, r, o->mode), f = req_first(t, r, o->mode);
            uint32_t dev = o->dp == MS_DP_ROUND_ROBIN ? (uint32_t)(rr++ % n_devices) : argmin_u64(devload, n_devices);
            devload[dev] += n;
            PUSH_BATCH_START();
            for (uint64_t k = 0; k < n; k++, pos++) {
                p->tok[pos] = (uint32_t)(f + k);
                p->origin[pos] = dev;
            }
            nb++;
        }
    } else if (o->mode == MS_BATCH_PREFILL) {
        uint64_t in_batch = 0;
        for (uint64_t i = 0; i < nreq; i++) {
            uint64_t r = order[i], n = req_rows(t, r, o->mode), f = req_first(t, r, o->mode);
            if (in_batch == 0) {
                PUSH_BATCH_START();
                memset(devload, 0, n_devices * sizeof *devload);
            }
            uint32_t dev = o->dp == MS_DP_ROUND_ROBIN ? (uint32_t)(rr++ % n_devices) : argmin_u64(devload, n_devices);
            devload[dev] += n;
            for (uint64_t k = 0; k < n; k++, pos++) {
                p->tok[pos] = (uint32_t)(f + k);
                p->origin[pos] = dev;
            }
            in_batch += n;
            if (in_batch >= o->batch_tokens) {
                nb++;
                in_batch = 0;
            }
        }
        if (in_batch) nb++;
    } else if (o->mode == MS_BATCH_MIXED) {
        /* slot_*[0..nrun): running requests in admission order with their
         * next decode row and device; adm_*: requests admitted this step,
         * which join after the step (a request without prompt rows joins at
         * once and decodes in the step it enters) */
        uint32_t B = o->decode_batch;
        slot_req = ms_alloc_array(2 * (size_t)B, sizeof *slot_req, err);
        slot_pos = ms_alloc_array(B, sizeof *slot_pos, err);
        slot_dev = ms_alloc_array(2 * (size_t)B, sizeof *slot_dev, err);
        if (!slot_req || !slot_pos || !slot_dev) goto fail;
        uint64_t *adm_req = slot_req + B;
        uint32_t *adm_dev = slot_dev + B;
        uint64_t next = 0;
        uint32_t nrun = 0;
        while (next < nreq || nrun > 0) {
            PUSH_BATCH_START();
            uint32_t nadm = 0;
            uint64_t ptok = 0;
            while (next < nreq && nrun + nadm < B) {
                uint64_t r = order[next], pr = req_prompt(t, r);
                if (ptok > 0 && ptok + pr > o->batch_tokens) break;
                next++;
                uint32_t dev = o->dp == MS_DP_ROUND_ROBIN ? (uint32_t)(rr++ % n_devices) : argmin_u64(devload, n_devices);
                for (uint64_t k = 0; k < pr; k++, pos++) {
                    p->tok[pos] = (uint32_t)(t->tok_offset[r] + k);
                    p->origin[pos] = dev;
                }
                ptok += pr;
                if (req_rows(t, r, MS_BATCH_DECODE) == 0) continue; /* a prompt only: done */
                devload[dev]++;
                if (pr == 0) {
                    slot_req[nrun] = r;
                    slot_pos[nrun] = 0;
                    slot_dev[nrun++] = dev;
                } else {
                    adm_req[nadm] = r;
                    adm_dev[nadm++] = dev;
                }
            }
            uint32_t keep = 0;
            for (uint32_t s = 0; s < nrun; s++) {
                uint64_t r = slot_req[s];
                p->tok[pos] = (uint32_t)(req_first(t, r, MS_BATCH_DECODE) + slot_pos[s]);
                p->origin[pos] = slot_dev[s];
                pos++;
                if (++slot_pos[s] == req_rows(t, r, MS_BATCH_DECODE)) {
                    devload[slot_dev[s]]--;
                    continue;
                }
                slot_req[keep] = r;
                slot_pos[keep] = slot_pos[s];
                slot_dev[keep] = slot_dev[s];
                keep++;
            }
            for (uint32_t s = 0; s < nadm; s++) {
                slot_req[keep + s] = adm_req[s];
                slot_pos[keep + s] = 0;
                slot_dev[keep + s] = adm_dev[s];
            }
            nrun = keep + nadm;
            nb++;
        }
    } else {
        uint32_t B = o->decode_batch;
        slot_req = ms_alloc_array(B, sizeof *slot_req, err);
        slot_pos = ms_alloc_array(B, sizeof *slot_pos, err);
        slot_dev = ms_alloc_array(B, sizeof *slot_dev, err);
        if (!slot_req || !slot_pos || !slot_dev) goto fail;
        uint64_t next = 0, active = 0;
        /* devload = active requests per device */
        for (uint32_t s = 0; s < B; s++) slot_req[s] = UINT64_MAX;
        for (;;) {
            /* refill empty slots, in slot order */
            for (uint32_t s = 0; s < B && next < nreq; s++) {
                if (slot_req[s] != UINT64_MAX) continue;
                uint64_t r = order[next++];
                uint32_t dev = o->dp == MS_DP_ROUND_ROBIN ? (uint32_t)(rr++ % n_devices) : argmin_u64(devload, n_devices);
                devload[dev]++;
                slot_req[s] = r;
                slot_pos[s] = 0;
                slot_dev[s] = dev;
                active++;
            }
            if (active == 0) break;
            PUSH_BATCH_START();
            for (uint32_t s = 0; s < B; s++) {
                uint64_t r = slot_req[s];
                if (r == UINT64_MAX) continue;
                p->tok[pos] = (uint32_t)(req_first(t, r, o->mode) + slot_pos[s]);
                p->origin[pos] = slot_dev[s];
                pos++;
                if (++slot_pos[s] == req_rows(t, r, o->mode)) {
                    slot_req[s] = UINT64_MAX;
                    devload[slot_dev[s]]--;
                    active--;
                }
            }
            nb++;
        }
    }
#undef PUSH_BATCH_START
    if (pos != ntok) {
        st = ms_error_set(err, MS_E_INTERNAL, "batches: placed %llu of %llu tokens", (unsigned long long)pos,
                          (unsigned long long)ntok);
        goto fail;
    }
    if (nb + 1 > cap_b) { /* cannot happen: PUSH reserves one more */
        st = ms_error_set(err, MS_E_INTERNAL, "batches: offsets overflow");
        goto fail;
    }
    p->off[nb] = pos;
    p->n_batches = nb;
    ms_free(order);
    ms_free(devload);
    ms_free(slot_req);
    ms_free(slot_pos);
    ms_free(slot_dev);
    *out = p;
    return MS_OK;
fail:
    ms_free(order);
    ms_free(devload);
    ms_free(slot_req);
    ms_free(slot_pos);
    ms_free(slot_dev);
    ms_batch_plan_free(p);
    return st;
}
