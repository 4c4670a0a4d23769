/*
 * moesim/place.h - stage 3: expert placement and replication on a device grid.
 *
 * A cluster is rows x cols devices (a row is a node: NVLink inside, network
 * between rows), each with slots_per_device expert slots per layer. Physical
 * slot p lives on device p / slots_per_device; device d is at row
 * d / cols, column d % cols.
 *
 * Logical experts are 0..n_routed-1, plus, when has_shared, the shared
 * expert with id n_routed that every token chooses.
 */
#ifndef MOESIM_PLACE_H
#define MOESIM_PLACE_H

#include <stdbool.h>
#include "moesim/common.h"
#include "moesim/trace.h"
#include "moesim/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_cluster {
    uint32_t rows;
    uint32_t cols;
    uint32_t slots_per_device;
} ms_cluster;

static inline uint32_t ms_cluster_devices(const ms_cluster *c) { return c->rows * c->cols; }
static inline uint32_t ms_cluster_slots(const ms_cluster *c) {
    return c->rows * c->cols * c->slots_per_device;
}

/* Validates a cluster shape: all positive, total slots <= 2^24. MS_E_INPUT. */
ms_status ms_cluster_check(const ms_cluster *c, ms_error *err);

typedef struct ms_placement {
    uint32_t n_layers;
    ms_cluster cluster;
    uint32_t n_phys;        /* rows * cols * slots_per_device */
    uint32_t n_routed;      /* routed experts per layer */
    uint32_t n_logical;     /* n_routed + (has_shared ? 1 : 0) */
    bool has_shared;
    int32_t *phy2log;       /* [n_layers][n_phys]; -1 = empty slot */
    /* Derived by ms_placement_index (replicas in ascending slot order unless
     * the source fixed another order, e.g. EPLB's rank order): */
    uint32_t max_replicas;
    int32_t *log2phy;       /* [n_layers][n_logical][max_replicas], padded with -1 */
    uint32_t *logcnt;       /* [n_layers][n_logical] */
    /* metadata */
    char algorithm[48];
    char params[512];       /* free text / JSON of the parameters used */
    double objective;       /* the algorithm's own objective (NAN if none) */
    double lower_bound;     /* LP/analytic lower bound on max device load (NAN if none) */
    double runtime_s;
    uint64_t trace_digest;  /* digest of the input trace/loads (0 if none) */
} ms_placement;

/* A placement with every slot empty (-1). Fails MS_E_INPUT on a bad cluster,
 * MS_E_NOMEM. */
ms_status ms_placement_new(uint32_t n_layers, const ms_cluster *c, uint32_t n_routed, bool has_shared,
                           ms_placement **out, ms_error *err);
void ms_placement_free(ms_placement *p);
ms_status ms_placement_clone(const ms_placement *p, ms_placement **out, ms_error *err);

/* Rebuilds log2phy / logcnt / max_replicas from phy2log (replicas in
 * ascending slot order). MS_E_NOMEM. */
ms_status ms_placement_index(ms_placement *p, ms_error *err);

/* Checks the invariants: ids in [-1, n_logical), every logical expert has at
 * least one slot in every layer, log2phy/logcnt agree with phy2log. Fails
 * MS_E_INPUT with a message naming the layer and expert or slot. */
ms_status ms_placement_check(const ms_placement *p, ms_error *err);

/* JSON (moesim's own format): devices, rows, cols, slots_per_device, layers,
 * routed_experts, shared_expert, phy2log, log2phy, logcnt, metadata{...}.
 * Written atomically; read back with every invariant checked. */
ms_status ms_placement_write_json(const ms_placement *p, const char *path, ms_error *err);
/* Reads moesim's JSON, SGLang's {"physical_to_logical_map": ...} (needs
 * cluster and n_routed from the caller: pass c/n_routed, 0 = infer) or the
 * peer's (moe-balance) placement.json (expert id -> [{device,row,col,slot}]).
 * The format is detected from the content. */
ms_status ms_placement_read_json(const char *path, const ms_cluster *c, uint32_t n_routed,
                                 ms_placement **out, ms_error *err);
/* SGLang's --init-expert-location file. */
ms_status ms_placement_write_sglang(const ms_placement *p, const char *path, ms_error *err);
/* The peer's placement.json for one layer. */
ms_status ms_placement_write_peer(const ms_placement *p, uint32_t layer, const char *path, ms_error *err);

/* ------------------------------------------------------- algorithms */

typedef struct ms_place_opts {
    const char *algo;          /* contiguous, round-robin, pair, replicate, eplb, one-per-gpu,
                                  tail, coact, balance, balance-coact, hot-tier, greedy-cost, ilp */
    ms_cluster cluster;
    bool shared_expert;        /* model the shared expert as logical id n_routed */
    uint32_t shared_replicas;  /* replicas of the shared expert (default: one per row) */
    uint32_t redundant;        /* extra replicas of routed experts; UINT32_MAX = fill all free slots */
    uint32_t groups;           /* expert groups for EPLB's hierarchical policy (0 = global) */
    char axis;                 /* 'r' or 'c' for balance/balance-coact/hot-tier */
    uint32_t hot_n;            /* hot-tier: number of hottest experts spread first */
    double tail_alpha;         /* tail: mean + alpha*std (negative = use p95) */
    double coact_weight;       /* coact / balance-coact penalty weight */
    double time_limit_s;       /* ilp / search */
    uint64_t seed;
    int threads;
} ms_place_opts;

/* Sets every option to its documented default. */
void ms_place_opts_default(ms_place_opts *o);

/* What a placement algorithm may look at: mean loads always; per-window loads
 * and co-activation when a trace was given (NULL otherwise). */
typedef struct ms_place_input {
    const ms_loads *loads;         /* [layers][n_routed] */
    const ms_stats *stats;         /* NULL or window/co-activation statistics */
    uint64_t digest;
} ms_place_input;

/* Runs opts->algo for every layer. MS_E_INPUT for an unknown algorithm, a
 * slot budget too small for the experts (slots < experts + shared replicas),
 * or options that make no sense; MS_E_UNSUPPORTED for ilp without GLPK. */
ms_status ms_place_run(const ms_place_input *in, const ms_place_opts *opts, ms_placement **out,
                       ms_error *err);

/* Names of the algorithms ms_place_run knows, NULL-terminated. */
const char *const *ms_place_algorithms(void);

/* Maximum over devices of summed load in `layer` when every expert's load is
 * split evenly over its replicas (EPLB's own measure). Cannot fail. */
double ms_placement_max_device_load(const ms_placement *p, const ms_loads *loads, uint32_t layer);

#ifdef __cplusplus
}
#endif
#endif
