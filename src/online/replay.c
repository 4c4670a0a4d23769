/* replay.c - serving a trace step by step through placements that change
 * over time (see moesim/online.h). The steps between two placement changes
 * are simulated in one ms_sim_run call over that batch range (a batch gives
 * the same record whatever range it is simulated in), so a replay costs
 * about one simulation of the trace per placement it tries. */
#include "moesim/online.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

void ms_replay_opts_default(ms_replay_opts *o) {
    memset(o, 0, sizeof *o);
    o->policy = MS_REBALANCE_STATIC;
    o->every.n = 100;
    o->every.unit = MS_SPAN_STEPS;
    o->window.n = 0;
    o->window.unit = MS_SPAN_STEPS;
    o->max_moves = 64;
    o->variance_weight = 0;
    o->migration = MS_MIGRATION_STALL;
    o->after_step = UINT64_MAX;
}

void ms_replay_opts_set_weights(ms_replay_opts *o, const ms_model_preset *m) {
    o->expert_bytes = 3.0 * m->hidden * m->moe_intermediate * m->expert_weight_bytes;
    o->shared_bytes =
        m->shared_experts ? 3.0 * m->hidden * m->shared_intermediate * m->shared_experts * m->expert_weight_bytes : 0;
}

ms_status ms_replay_initial_placement(const ms_trace *t, const ms_batch_plan *plan, ms_span first,
                                      const ms_place_opts *po, ms_placement **out, ms_error *err) {
    *out = NULL;
    if (plan->n_batches == 0 || first.n == 0)
        return ms_error_set(err, MS_E_INPUT, "replay: the initial placement needs a plan with steps and a span > 0");
    ms_loads *l = NULL;
    ms_status st = ms_plan_loads(t, plan, 0, ms_plan_span_end(plan, 0, first), t->n_experts, false, &l, err);
    if (st != MS_OK) return st;
    ms_place_opts o = *po;
    if (!o.top_k) o.top_k = t->top_k;
    ms_place_input in = {l, NULL, t->digest};
    st = ms_place_run(&in, &o, out, err);
    ms_loads_free(l);
    return st;
}

void ms_replay_result_free(ms_replay_result *r) {
    if (!r) return;
    for (uint32_t v = 0; v < r->n_versions; v++) ms_placement_free(r->versions[v]);
    ms_free(r->versions);
    ms_free(r->steps);
    ms_free(r->events);
    ms_free(r);
}

typedef struct replay {
    const ms_trace *t;
    const ms_batch_plan *plan;
    const ms_sim_opts *sim;
    const ms_replay_opts *o;
    ms_replay_result *res;
    uint32_t cap_versions;
    uint64_t cap_events;
    uint32_t serving;        /* version serving now */
    double total_slots;      /* layers x slots: the incremental search's unlimited budget */
    double z;                /* the incremental search's variance weight */
} replay;

static uint64_t plan_tokens(const ms_batch_plan *p, uint64_t a, uint64_t b) { return p->off[b] - p->off[a]; }

/* The first step of the window that ends at point p. */
static uint64_t window_start(const replay *r, uint64_t p) {
    const ms_span w = r->o->window.n ? r->o->window : r->o->every;
    if (w.unit == MS_SPAN_STEPS) return p > w.n ? p - w.n : 0;
    uint64_t a = p - 1;
    while (a > 0 && plan_tokens(r->plan, a, p) < w.n) a--;
    return a;
}

static ms_status push_version(replay *r, ms_placement *p, ms_error *err) {
    ms_replay_result *res = r->res;
    if (res->n_versions == r->cap_versions) {
        uint32_t nc = r->cap_versions ? 2 * r->cap_versions : 16;
        ms_placement **nv = ms_realloc_array(res->versions, nc, sizeof *nv, err);
        if (!nv) {
            ms_placement_free(p);
            return MS_E_NOMEM;
        }
        res->versions = nv;
        r->cap_versions = nc;
    }
    res->versions[res->n_versions++] = p;
    return MS_OK;
}

static ms_status push_event(replay *r, const ms_replay_event *e, ms_error *err) {
    ms_replay_result *res = r->res;
    if (res->n_events == r->cap_events) {
        uint64_t nc = r->cap_events ? 2 * r->cap_events : 16;
        ms_replay_event *ne = ms_realloc_array(res->events, nc, sizeof *ne, err);
        if (!ne) return MS_E_NOMEM;
        res->events = ne;
        r->cap_events = nc;
    }
    res->events[res->n_events++] = *e;
    return MS_OK;
}

/* Simulates steps [a, b) with version v into res->steps (records kept), or,
 * with serve_us set, only returns the range's serving time. */
static ms_status serve(replay *r, uint64_t a, uint64_t b, uint32_t v, double *serve_us, ms_error *err) {
    ms_sim_opts so = *r->sim;
    so.batch_begin = a;
    so.batch_end = b;
    so.keep_records = serve_us == NULL;
    ms_sim_result *sr = NULL;
    ms_status st = ms_sim_run(r->t, r->plan, r->res->versions[v], &so, NULL, &sr, err);
    if (st != MS_OK) return st;
    if (serve_us) {
        *serve_us = sr->summary.total_us;
        ms_sim_result_free(sr);
        return MS_OK;
    }
    const uint32_t nl = r->t->n_layers;
    for (uint64_t s = a; s < b; s++) {
        const ms_sim_record *rec = sr->records + (s - a) * nl;
        ms_replay_step *x = &r->res->steps[s];
        double mig = x->migration_us; /* a stall charged before the step stays */
        memset(x, 0, sizeof *x);
        x->step = s;
        x->tokens = rec[0].tokens;
        x->version = v;
        x->migration_us = mig;
        for (uint32_t l = 0; l < nl; l++) {
            x->imbalance += rec[l].imbalance;
            if (rec[l].imbalance > x->max_imbalance) x->max_imbalance = rec[l].imbalance;
            x->serve_us += rec[l].layer_us;
            x->comm_us += rec[l].dispatch_us + rec[l].combine_us;
            x->assignments += rec[l].assignments;
            x->dropped += rec[l].dropped;
            x->rerouted += rec[l].rerouted;
        }
        x->imbalance /= nl;
        x->layer_us = x->serve_us / nl;
    }
    ms_sim_result_free(sr);
    return MS_OK;
}

/* ---------------------------------------------------------- decisions */

/* The routed columns of a load matrix with a shared column (EPLB takes the
 * shared expert's load separately). */
static ms_status routed_only(const ms_loads *l, uint32_t n_routed, ms_loads **out, ms_error *err) {
    ms_status st = ms_loads_new(l->n_layers, n_routed, out, err);
    if (st != MS_OK) return st;
    for (uint32_t i = 0; i < l->n_layers; i++)
        memcpy((*out)->w + (size_t)i * n_routed, l->w + (size_t)i * l->n_experts, n_routed * sizeof(double));
    return MS_OK;
}

/* EPLB on loads (n_logical columns), shaped like cur. */
static ms_status decide_eplb(const replay *r, const ms_placement *cur, const ms_loads *loads, uint64_t tokens,
                             ms_placement **out, ms_error *err) {
    ms_loads *routed = NULL;
    ms_status st = routed_only(loads, cur->n_routed, &routed, err);
    if (st != MS_OK) return st;
    ms_place_opts po;
    ms_place_opts_default(&po);
    po.algo = "eplb";
    po.cluster = cur->cluster;
    po.shared_expert = cur->has_shared;
    if (cur->has_shared) {
        uint32_t n = 0;
        for (uint32_t s = 0; s < cur->n_phys; s++) n += cur->phy2log[s] == (int32_t)cur->n_routed;
        po.shared_replicas = n;
        po.shared_load = (double)tokens;
    }
    po.groups = r->o->eplb_groups;
    po.top_k = r->o->top_k ? r->o->top_k : r->t->top_k;
    po.lp_bound = false;
    po.threads = 1;
    ms_place_input in = {routed, NULL, 0};
    st = ms_place_run(&in, &po, out, err);
    ms_loads_free(routed);
    if (st != MS_OK) return ms_error_prefix(err, "periodic EPLB");
    return MS_OK;
}

static bool same_placement(const ms_placement *a, const ms_placement *b) {
    return memcmp(a->phy2log, b->phy2log, (size_t)a->n_layers * a->n_phys * sizeof(int32_t)) == 0;
}

/* The online decision at point p: a new placement (NULL when nothing changes). */
static ms_status decide_online(replay *r, uint64_t p, ms_placement **out, ms_replay_event *ev, ms_error *err) {
    *out = NULL;
    const ms_placement *cur = r->res->versions[r->serving];
    uint64_t w0 = window_start(r, p);
    ms_loads *loads = NULL;
    ms_status st = ms_plan_loads(r->t, r->plan, w0, p, cur->n_routed, cur->has_shared, &loads, err);
    if (st != MS_OK) return st;
    double t0 = ms_now();
    ms_placement *q = NULL;
    if (r->o->policy == MS_REBALANCE_PERIODIC_EPLB) {
        st = decide_eplb(r, cur, loads, plan_tokens(r->plan, w0, p), &q, err);
    } else {
        ms_loads *mean = NULL, *var = NULL;
        st = ms_plan_load_moments(r->t, r->plan, w0, p, cur->n_routed, cur->has_shared, &mean, &var, err);
        if (st == MS_OK) st = ms_replay_incremental(cur, mean, var, r->z, r->o->max_moves, &q, NULL, err);
        ms_loads_free(mean);
        ms_loads_free(var);
    }
    ev->decide_us = (ms_now() - t0) * 1e6;
    if (st == MS_OK) {
        ev->expected_before = ms_placement_expected_max(cur, loads);
        ev->expected_after = ms_placement_expected_max(q, loads);
        *out = q;
    }
    ms_loads_free(loads);
    return st;
}

/* The oracle at point a for the interval [a, b): the candidate that serves
 * it fastest (ties: the earlier candidate, the current placement first). */
static ms_status decide_oracle(replay *r, uint64_t a, uint64_t b, ms_placement **out, ms_replay_event *ev,
                               ms_error *err) {
    *out = NULL;
    const ms_placement *cur = r->res->versions[r->serving];
    ms_loads *loads = NULL;
    ms_status st = ms_plan_loads(r->t, r->plan, a, b, cur->n_routed, cur->has_shared, &loads, err);
    if (st != MS_OK) return st;
    double t0 = ms_now();
    enum { MAXC = 5 + 16 };
    ms_placement *cand[MAXC] = {0};
    const ms_placement *view[MAXC] = {0};
    uint32_t nc = 0;
    view[nc++] = cur;
    uint32_t unlimited = (uint32_t)(r->total_slots < UINT32_MAX ? r->total_slots : UINT32_MAX);
    ms_loads *mean = NULL, *var = NULL;
    st = decide_eplb(r, cur, loads, plan_tokens(r->plan, a, b), &cand[1], err);
    if (st == MS_OK) view[nc++] = cand[1];
    if (st == MS_OK) st = ms_plan_load_moments(r->t, r->plan, a, b, cur->n_routed, cur->has_shared, &mean, &var, err);
    if (st == MS_OK) st = ms_replay_incremental(cur, mean, var, r->z, unlimited, &cand[2], NULL, err);
    if (st == MS_OK) view[nc++] = cand[2];
    if (st == MS_OK) st = ms_replay_incremental(cand[1], mean, var, r->z, unlimited, &cand[3], NULL, err);
    if (st == MS_OK) view[nc++] = cand[3];
    ms_loads_free(mean);
    ms_loads_free(var);
    if (st == MS_OK) view[nc++] = r->res->versions[0]; /* the initial placement: never worse than static */
    for (uint32_t i = 0; st == MS_OK && i < r->o->n_rivals && nc < MAXC; i++) {
        const ms_replay_result *rv = r->o->rivals[i];
        view[nc++] = rv->versions[rv->steps[a].version];
    }
    /* the fastest on the interval; a temporary version slot holds each */
    uint32_t best = 0;
    double best_us = INFINITY;
    for (uint32_t i = 0; st == MS_OK && i < nc; i++) {
        bool dup = false;
        for (uint32_t j = 0; j < i && !dup; j++) dup = same_placement(view[i], view[j]);
        if (dup) continue;
        ms_placement *tmp = NULL;
        st = ms_placement_clone(view[i], &tmp, err);
        if (st == MS_OK) st = push_version(r, tmp, err);
        double us = 0;
        if (st == MS_OK) st = serve(r, a, b, r->res->n_versions - 1, &us, err);
        if (st == MS_OK) {
            ms_placement_free(r->res->versions[--r->res->n_versions]);
            if (us < best_us) {
                best_us = us;
                best = i;
            }
        }
    }
    ev->decide_us = (ms_now() - t0) * 1e6;
    if (st == MS_OK && best != 0) {
        ev->expected_before = ms_placement_expected_max(cur, loads);
        ev->expected_after = ms_placement_expected_max(view[best], loads);
        st = ms_placement_clone(view[best], out, err);
    }
    for (uint32_t i = 0; i < MAXC; i++) ms_placement_free(cand[i]);
    ms_loads_free(loads);
    return st;
}

/* ---------------------------------------------------------- statistics */

static void summarise(replay *r) {
    ms_replay_result *res = r->res;
    ms_replay_summary *s = &res->summary;
    const uint64_t split = r->o->after_step;
    s->policy = r->o->policy;
    s->steps = res->n_steps;
    for (uint64_t i = 0; i < res->n_steps; i++) {
        const ms_replay_step *x = &res->steps[i];
        s->tokens += x->tokens;
        s->serve_us += x->serve_us;
        s->migration_us += x->migration_us;
        s->imbalance += x->imbalance;
        s->max_imbalance += x->max_imbalance;
        s->layer_us += x->layer_us;
        s->assignments += x->assignments;
        s->dropped += x->dropped;
        s->rerouted += x->rerouted;
        bool after = split != UINT64_MAX && x->step >= split;
        if (split == UINT64_MAX) continue;
        if (after) {
            s->steps_after++;
            s->imbalance_after += x->imbalance;
            s->layer_us_after += x->layer_us;
            s->total_us_after += x->serve_us + x->migration_us;
        } else {
            s->steps_before++;
            s->imbalance_before += x->imbalance;
            s->layer_us_before += x->layer_us;
            s->total_us_before += x->serve_us + x->migration_us;
        }
    }
    s->total_us = s->serve_us + s->migration_us;
    if (s->steps) {
        s->imbalance /= (double)s->steps;
        s->max_imbalance /= (double)s->steps;
        s->layer_us /= (double)s->steps;
    }
    if (s->steps_before) {
        s->imbalance_before /= (double)s->steps_before;
        s->layer_us_before /= (double)s->steps_before;
    }
    if (s->steps_after) {
        s->imbalance_after /= (double)s->steps_after;
        s->layer_us_after /= (double)s->steps_after;
    }
    s->replacements = res->n_events;
    for (uint64_t e = 0; e < res->n_events; e++) {
        ms_replay_event *ev = &res->events[e];
        s->moved += ev->cost.moved;
        s->moved_inter += ev->cost.moved_inter;
        s->bytes += ev->cost.bytes;
        s->inter_bytes += ev->cost.inter_bytes;
        /* mean imbalance under the old placement (since the previous change) and the new one */
        const uint64_t from = e > 0 ? res->events[e - 1].effective : 0;
        double sb = 0, sa = 0;
        uint64_t nb = 0, na = 0;
        for (uint64_t i = 0; i < res->n_steps; i++) {
            const ms_replay_step *x = &res->steps[i];
            if (x->version == ev->version) sa += x->imbalance, na++;
            else if (i >= from && i < ev->effective) sb += x->imbalance, nb++;
        }
        ev->imbalance_before = nb ? sb / (double)nb : NAN;
        ev->imbalance_after = na ? sa / (double)na : NAN;
    }
    double dsum = 0;
    uint64_t dn = 0;
    for (uint64_t e = 0; e < res->n_events; e++) {
        dsum += res->events[e].decide_us;
        dn++;
        if (res->events[e].decide_us > s->decide_us_max) s->decide_us_max = res->events[e].decide_us;
    }
    s->decide_us_mean = dn ? dsum / (double)dn : 0;
}

/* ---------------------------------------------------------- the loop */

static ms_status check_inputs(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *init,
                              const ms_sim_opts *sim, const ms_replay_opts *o, ms_error *err) {
    if (o->every.n == 0) return ms_error_set(err, MS_E_INPUT, "replay: --rebalance-every must be positive");
    if (!(o->variance_weight >= 0) || !isfinite(o->variance_weight))
        return ms_error_set(err, MS_E_INPUT, "replay: the variance weight must be >= 0");
    if (!(o->expert_bytes > 0)) return ms_error_set(err, MS_E_INPUT, "replay: expert bytes must be positive");
    if (!o->hw) return ms_error_set(err, MS_E_INPUT, "replay: a hardware preset is needed to price migration");
    if (sim->layer >= 0 || sim->batch_begin || sim->batch_end)
        return ms_error_set(err, MS_E_INPUT, "replay: serves every layer of every step (no layer or batch range)");
    if ((unsigned)o->policy >= MS_REBALANCE_COUNT || (unsigned)o->migration > MS_MIGRATION_OVERLAP)
        return ms_error_set(err, MS_E_INPUT, "replay: unknown policy or migration mode");
    if (init->n_layers != 1 && init->n_layers != t->n_layers)
        return ms_error_set(err, MS_E_INPUT, "replay: the placement has %u layers, the trace %u", init->n_layers,
                            t->n_layers);
    if (plan->n_batches == 0) return ms_error_set(err, MS_E_INPUT, "replay: the plan has no steps");
    if (o->n_rivals > 16) return ms_error_set(err, MS_E_INPUT, "replay: at most 16 rivals for the oracle");
    for (uint32_t i = 0; i < o->n_rivals; i++)
        if (!o->rivals[i] || o->rivals[i]->n_steps != plan->n_batches)
            return ms_error_set(err, MS_E_INPUT, "replay: rival %u replayed another plan", i);
    return MS_OK;
}

/* init with one layer per trace layer (a one-layer placement serves them all) */
static ms_status expand_init(const ms_trace *t, const ms_placement *init, ms_placement **out, ms_error *err) {
    if (init->n_layers == t->n_layers) return ms_placement_clone(init, out, err);
    ms_status st = ms_placement_new(t->n_layers, &init->cluster, init->n_routed, init->has_shared, out, err);
    if (st != MS_OK) return st;
    for (uint32_t l = 0; l < t->n_layers; l++)
        memcpy((*out)->phy2log + (size_t)l * init->n_phys, init->phy2log, init->n_phys * sizeof(int32_t));
    memcpy((*out)->algorithm, init->algorithm, sizeof init->algorithm);
    return ms_placement_index(*out, err);
}

ms_status ms_replay_run(const ms_trace *t, const ms_batch_plan *plan, const ms_placement *init,
                        const ms_sim_opts *sim, const ms_replay_opts *o, ms_replay_result **out, ms_error *err) {
    *out = NULL;
    ms_status st = check_inputs(t, plan, init, sim, o, err);
    if (st != MS_OK) return st;
    replay r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.plan = plan;
    r.sim = sim;
    r.o = o;
    r.res = ms_calloc_array(1, sizeof *r.res, err);
    if (!r.res) return MS_E_NOMEM;
    ms_replay_result *res = r.res;
    res->n_steps = plan->n_batches;
    res->steps = ms_calloc_array(plan->n_batches, sizeof *res->steps, err);
    ms_placement *p0 = NULL;
    if (!res->steps) st = MS_E_NOMEM;
    if (st == MS_OK) st = expand_init(t, init, &p0, err);
    if (st == MS_OK) st = push_version(&r, p0, err);
    if (st == MS_OK) {
        r.serving = 0;
        r.total_slots = (double)p0->n_layers * p0->n_phys;
        r.z = o->variance_weight;
    }
    const uint64_t nb = plan->n_batches;
    const bool online = o->policy == MS_REBALANCE_PERIODIC_EPLB || o->policy == MS_REBALANCE_INCREMENTAL;
    /* a background copy in flight: its event, the link time it still needs */
    int64_t inflight = -1;
    double remaining = 0;
    uint64_t a = 0;
    while (st == MS_OK && a < nb) {
        uint64_t b = ms_plan_span_end(plan, a, o->every);
        ms_replay_event ev;
        memset(&ev, 0, sizeof ev);
        ms_placement *q = NULL;
        if (o->policy == MS_REBALANCE_ORACLE) {
            st = decide_oracle(&r, a, b, &q, &ev, err);
        } else if (online && a > 0) {
            res->summary.decisions++;
            if (inflight >= 0) res->summary.skipped++;
            else st = decide_online(&r, a, &q, &ev, err);
        }
        if (st == MS_OK && o->policy == MS_REBALANCE_ORACLE) res->summary.decisions++;
        if (st == MS_OK && q) {
            st = ms_migration_price(res->versions[r.serving], q, o->expert_bytes, o->shared_bytes, o->hw, &ev.cost,
                                    err);
            if (st == MS_OK && ev.cost.moved == 0) {
                ms_placement_free(q);
                q = NULL;
            }
        }
        if (st == MS_OK && q) {
            ev.point = a;
            ev.version = res->n_versions;
            st = push_version(&r, q, err);
            if (st == MS_OK) {
                if (o->policy == MS_REBALANCE_ORACLE || o->migration == MS_MIGRATION_STALL) {
                    /* the oracle's copies are free and instant: it is the bound */
                    if (o->policy != MS_REBALANCE_ORACLE) res->steps[a].migration_us += ev.cost.copy_us;
                    r.serving = ev.version;
                    ev.effective = a;
                } else {
                    inflight = (int64_t)res->n_events;
                    remaining = ev.cost.copy_us;
                    ev.effective = nb;
                }
                st = push_event(&r, &ev, err);
            }
        }
        /* serve [a, b): step by step while a copy shares the links */
        uint64_t s = a;
        while (st == MS_OK && inflight >= 0 && s < b) {
            st = serve(&r, s, s + 1, r.serving, NULL, err);
            if (st != MS_OK) break;
            ms_replay_step *x = &res->steps[s];
            if (remaining >= x->serve_us) {
                x->migration_us += x->comm_us;
                remaining -= x->serve_us;
            } else {
                x->migration_us += x->serve_us > 0 ? x->comm_us * remaining / x->serve_us : 0;
                remaining = 0;
            }
            s++;
            if (remaining <= 0) {
                ms_replay_event *e = &res->events[inflight];
                e->effective = s;
                r.serving = e->version;
                inflight = -1;
            }
        }
        if (st == MS_OK && s < b) st = serve(&r, s, b, r.serving, NULL, err);
        a = b;
    }
    if (st == MS_OK) summarise(&r);
    if (st != MS_OK) {
        ms_replay_result_free(res);
        return st;
    }
    *out = res;
    return MS_OK;
}

/* ---------------------------------------------------------- JSON */

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

json_t *ms_replay_summary_json(const ms_replay_summary *s) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "policy", json_string(ms_rebalance_name(s->policy)));
    json_object_set_new(o, "steps", json_integer((json_int_t)s->steps));
    json_object_set_new(o, "tokens", json_integer((json_int_t)s->tokens));
    json_object_set_new(o, "decisions", json_integer((json_int_t)s->decisions));
    json_object_set_new(o, "replacements", json_integer((json_int_t)s->replacements));
    json_object_set_new(o, "skipped", json_integer((json_int_t)s->skipped));
    json_object_set_new(o, "replicas_moved", json_integer((json_int_t)s->moved));
    json_object_set_new(o, "replicas_moved_inter_row", json_integer((json_int_t)s->moved_inter));
    json_object_set_new(o, "bytes_moved", num(s->bytes));
    json_object_set_new(o, "bytes_moved_inter_row", num(s->inter_bytes));
    json_object_set_new(o, "serve_us", num(s->serve_us));
    json_object_set_new(o, "migration_us", num(s->migration_us));
    json_object_set_new(o, "total_us", num(s->total_us));
    json_object_set_new(o, "imbalance", num(s->imbalance));
    json_object_set_new(o, "max_imbalance", num(s->max_imbalance));
    json_object_set_new(o, "layer_us", num(s->layer_us));
    json_object_set_new(o, "tokens_per_second", num(s->total_us > 0 ? (double)s->tokens / (s->total_us * 1e-6) : 0));
    if (s->steps_before || s->steps_after) {
        json_t *b = json_object(), *a = json_object();
        json_object_set_new(b, "steps", json_integer((json_int_t)s->steps_before));
        json_object_set_new(b, "imbalance", num(s->steps_before ? s->imbalance_before : NAN));
        json_object_set_new(b, "layer_us", num(s->steps_before ? s->layer_us_before : NAN));
        json_object_set_new(b, "total_us", num(s->total_us_before));
        json_object_set_new(a, "steps", json_integer((json_int_t)s->steps_after));
        json_object_set_new(a, "imbalance", num(s->steps_after ? s->imbalance_after : NAN));
        json_object_set_new(a, "layer_us", num(s->steps_after ? s->layer_us_after : NAN));
        json_object_set_new(a, "total_us", num(s->total_us_after));
        json_object_set_new(o, "before", b);
        json_object_set_new(o, "after", a);
    }
    json_object_set_new(o, "assignments", json_integer((json_int_t)s->assignments));
    json_object_set_new(o, "dropped", json_integer((json_int_t)s->dropped));
    json_object_set_new(o, "rerouted", json_integer((json_int_t)s->rerouted));
    json_object_set_new(o, "decide_wall_us_mean", num(s->decide_us_mean));
    json_object_set_new(o, "decide_wall_us_max", num(s->decide_us_max));
    return o;
}

json_t *ms_replay_event_json(const ms_replay_event *e) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "point", json_integer((json_int_t)e->point));
    json_object_set_new(o, "effective", json_integer((json_int_t)e->effective));
    json_object_set_new(o, "version", json_integer(e->version));
    json_object_set_new(o, "replicas_moved", json_integer(e->cost.moved));
    json_object_set_new(o, "replicas_moved_inter_row", json_integer(e->cost.moved_inter));
    json_object_set_new(o, "bytes", num(e->cost.bytes));
    json_object_set_new(o, "bytes_inter_row", num(e->cost.inter_bytes));
    json_object_set_new(o, "copy_us", num(e->cost.copy_us));
    json_object_set_new(o, "expected_max_before", num(e->expected_before));
    json_object_set_new(o, "expected_max_after", num(e->expected_after));
    json_object_set_new(o, "imbalance_before", num(e->imbalance_before));
    json_object_set_new(o, "imbalance_after", num(e->imbalance_after));
    json_object_set_new(o, "decide_wall_us", num(e->decide_us));
    return o;
}

json_t *ms_replay_step_json(const ms_replay_step *s) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "step", json_integer((json_int_t)s->step));
    json_object_set_new(o, "tokens", json_integer(s->tokens));
    json_object_set_new(o, "version", json_integer(s->version));
    json_object_set_new(o, "imbalance", num(s->imbalance));
    json_object_set_new(o, "max_imbalance", num(s->max_imbalance));
    json_object_set_new(o, "layer_us", num(s->layer_us));
    json_object_set_new(o, "serve_us", num(s->serve_us));
    json_object_set_new(o, "comm_us", num(s->comm_us));
    json_object_set_new(o, "migration_us", num(s->migration_us));
    return o;
}
