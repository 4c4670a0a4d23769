/* sim_json.c - the simulator's summary and records as JSON objects. */
#include "moesim/sim.h"

#include <jansson.h>
#include <math.h>

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *dist(const ms_dist *d) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "mean", num(d->mean));
    json_object_set_new(o, "p50", num(d->p50));
    json_object_set_new(o, "p95", num(d->p95));
    json_object_set_new(o, "p99", num(d->p99));
    json_object_set_new(o, "max", num(d->max));
    return o;
}

json_t *ms_sim_summary_json(const ms_sim_summary *s, ms_cost_model model) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "batches", json_integer((json_int_t)s->batches));
    json_object_set_new(o, "layers", json_integer((json_int_t)s->layers));
    json_object_set_new(o, "records", json_integer((json_int_t)s->records));
    json_object_set_new(o, "tokens", json_integer((json_int_t)s->tokens));
    json_object_set_new(o, "events", json_integer((json_int_t)s->events));
    json_object_set_new(o, "assignments", json_integer((json_int_t)s->assignments));
    json_object_set_new(o, "dropped_tokens", json_integer((json_int_t)s->dropped));
    json_object_set_new(o, "rerouted_tokens", json_integer((json_int_t)s->rerouted));
    json_object_set_new(o, "capacity_factor", num(s->capacity_factor));
    json_object_set_new(o, "imbalance", dist(&s->imbalance));
    json_object_set_new(o, "layer_us", dist(&s->layer_us));
    json_object_set_new(o, "batch_us", dist(&s->batch_us));
    if (model == MS_COST_MESH) {
        json_object_set_new(o, "mean", num(s->layer_us.mean));
        json_object_set_new(o, "p95", num(s->layer_us.p95));
        json_object_set_new(o, "p99", num(s->layer_us.p99));
        json_t *c = json_array();
        for (int i = 0; i < 4; i++) json_array_append_new(c, num(s->coeffs[i]));
        json_object_set_new(o, "coeffs", c);
    } else {
        json_object_set_new(o, "dense_us", num(s->dense_us));
    }
    json_object_set_new(o, "dispatch_us", num(s->dispatch_us));
    json_object_set_new(o, "compute_us", num(s->compute_us));
    json_object_set_new(o, "combine_us", num(s->combine_us));
    json_object_set_new(o, "total_us", num(s->total_us));
    json_object_set_new(o, "tokens_per_second", num(s->tokens_per_second));
    json_object_set_new(o, "gpu_utilisation", num(s->gpu_utilisation));
    json_object_set_new(o, "intra_row_bytes", num(s->intra_bytes));
    json_object_set_new(o, "inter_row_bytes", num(s->inter_bytes));
    if (s->throttled) {
        json_object_set_new(o, "throttled_us", num(s->throttled_us));
        json_object_set_new(o, "throttled_share", num(s->throttled_share));
        json_object_set_new(o, "clock_mean", num(s->clock_mean));
        json_object_set_new(o, "clock_min", num(s->clock_min));
        json_object_set_new(o, "cap_unmet", json_integer((json_int_t)s->cap_unmet));
    }
    return o;
}

static json_t *darr(const double *v, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n; i++) json_array_append_new(a, num(v[i]));
    return a;
}

json_t *ms_sim_record_json(const ms_sim_record *r, const ms_sim_step *st) {
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "batch", json_integer((json_int_t)r->batch));
    json_object_set_new(o, "layer", json_integer((json_int_t)r->layer));
    json_object_set_new(o, "tokens", json_integer((json_int_t)r->tokens));
    json_object_set_new(o, "assignments", json_integer((json_int_t)r->assignments));
    json_object_set_new(o, "dropped", json_integer((json_int_t)r->dropped));
    json_object_set_new(o, "rerouted", json_integer((json_int_t)r->rerouted));
    json_object_set_new(o, "max_load", num(r->max_load));
    json_object_set_new(o, "mean_load", num(r->mean_load));
    json_object_set_new(o, "imbalance", num(r->imbalance));
    json_object_set_new(o, "dense_us", num(r->dense_us));
    json_object_set_new(o, "dispatch_us", num(r->dispatch_us));
    json_object_set_new(o, "compute_us", num(r->compute_us));
    json_object_set_new(o, "combine_us", num(r->combine_us));
    json_object_set_new(o, "layer_us", num(r->layer_us));
    json_object_set_new(o, "intra_row_bytes", num(r->intra_bytes));
    json_object_set_new(o, "inter_row_bytes", num(r->inter_bytes));
    if (st) {
        json_object_set_new(o, "device_load", darr(st->load, st->n_devices));
        json_object_set_new(o, "device_tokens", darr(st->origin_tokens, st->n_devices));
        json_object_set_new(o, "device_busy_us", darr(st->busy_us, st->n_devices));
        json_object_set_new(o, "device_idle_us", darr(st->idle_us, st->n_devices));
        if (st->clock) {
            json_object_set_new(o, "throttled_us", num(r->throttled_us));
            json_object_set_new(o, "clock_mean", num(r->clock_mean));
            json_object_set_new(o, "clock_min", num(r->clock_min));
            json_object_set_new(o, "cap_unmet", json_integer((json_int_t)r->cap_unmet));
            json_object_set_new(o, "device_clock", darr(st->clock, st->n_devices));
        }
    }
    return o;
}
