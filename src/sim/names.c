/* names.c - names and parsers of the simulator's option values. */
#include "moesim/sim.h"

#include <string.h>

typedef struct name_tab {
    const char *what;
    const char *const *names;
    int n;
} name_tab;

static const char *const cost_names[] = {"mesh", "roofline"};
static const char *const batch_names[] = {"per-request", "prefill", "decode", "mixed"};
static const char *const order_names[] = {"seeded", "trace"};
static const char *const route_names[] = {"split", "round-robin", "random", "least-loaded", "row-local",
                                          "balanced-replicas"};
static const char *const overflow_names[] = {"accept", "reroute", "drop"};
static const char *const origin_names[] = {"average-rows", "round-robin", "random", "dp", "trace"};
static const char *const dp_names[] = {"round-robin", "least-loaded"};
static const char *const overlap_names[] = {"none", "two-micro-batch"};
static const char *const table_names[] = {"reference", "corrected"};

#define TAB(what, arr) ((name_tab){what, arr, (int)(sizeof arr / sizeof arr[0])})

static const char *name_of(name_tab t, int v) { return v >= 0 && v < t.n ? t.names[v] : "?"; }

static ms_status parse(name_tab t, const char *s, int *out, ms_error *err) {
    for (int i = 0; s && i < t.n; i++)
        if (strcmp(s, t.names[i]) == 0) {
            *out = i;
            return MS_OK;
        }
    char list[256] = "";
    for (int i = 0; i < t.n; i++) {
        strncat(list, t.names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < t.n) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    return ms_error_set(err, MS_E_INPUT, "unknown %s '%s' (expected one of: %s)", t.what, s ? s : "", list);
}

const char *ms_cost_model_name(ms_cost_model m) { return name_of(TAB("cost model", cost_names), (int)m); }
const char *ms_batch_mode_name(ms_batch_mode m) { return name_of(TAB("batch mode", batch_names), (int)m); }
const char *ms_order_name(ms_order o) { return name_of(TAB("arrival order", order_names), (int)o); }
const char *ms_route_name(ms_route r) { return name_of(TAB("route", route_names), (int)r); }
const char *ms_overflow_name(ms_overflow o) { return name_of(TAB("overflow", overflow_names), (int)o); }
const char *ms_origin_name(ms_origin o) { return name_of(TAB("origin rows", origin_names), (int)o); }
const char *ms_dp_name(ms_dp d) { return name_of(TAB("dp", dp_names), (int)d); }
const char *ms_overlap_name(ms_overlap o) { return name_of(TAB("overlap", overlap_names), (int)o); }
const char *ms_mesh_table_name(ms_mesh_table t) { return name_of(TAB("mesh table", table_names), (int)t); }

#define PARSER(fn, type, what, arr)                                                                   \
    ms_status fn(const char *s, type *out, ms_error *err) {                                          \
        int v = 0;                                                                                    \
        ms_status st = parse(TAB(what, arr), s, &v, err);                                             \
        if (st == MS_OK) *out = (type)v;                                                              \
        return st;                                                                                    \
    }

PARSER(ms_cost_model_parse, ms_cost_model, "cost model", cost_names)
PARSER(ms_batch_mode_parse, ms_batch_mode, "batch mode", batch_names)
PARSER(ms_order_parse, ms_order, "arrival order", order_names)
PARSER(ms_route_parse, ms_route, "route", route_names)
PARSER(ms_overflow_parse, ms_overflow, "overflow policy", overflow_names)
PARSER(ms_origin_parse, ms_origin, "origin rows mode", origin_names)
PARSER(ms_dp_parse, ms_dp, "data-parallel policy", dp_names)
PARSER(ms_overlap_parse, ms_overlap, "overlap mode", overlap_names)
PARSER(ms_mesh_table_parse, ms_mesh_table, "mesh table", table_names)
