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
    double objective;       /* the algorithm's own objective; ms_place_run sets it, when the
                               algorithm leaves NAN, to the mean over layers of the maximum
                               device load (ms_placement_max_device_load) (NAN if none) */
    double lower_bound;     /* mean over layers of layer_bound (NAN if none): comparable
                               with objective */
    double *layer_bound;    /* [n_layers] lower bound on each layer's max device load, or
                               NULL when unknown (ms_place_run fills it; JSON keeps it) */
    double runtime_s;       /* seconds the algorithm itself ran */
    uint64_t trace_digest;  /* digest of the input trace/loads (0 if none) */
} ms_placement;

/* A placement with every slot empty (-1), log2phy/logcnt/layer_bound NULL,
 * objective/lower_bound NAN. Fails MS_E_INPUT on a bad cluster, n_layers or
 * n_routed of 0, or n_routed > 2^24; MS_E_NOMEM. */
ms_status ms_placement_new(uint32_t n_layers, const ms_cluster *c, uint32_t n_routed, bool has_shared,
                           ms_placement **out, ms_error *err);
void ms_placement_free(ms_placement *p);
ms_status ms_placement_clone(const ms_placement *p, ms_placement **out, ms_error *err);

/* Rebuilds log2phy / logcnt / max_replicas from phy2log (replicas in
 * ascending slot order; max_replicas is at least 1). Ids outside
 * [0, n_logical) are skipped (ms_placement_check reports them). MS_E_NOMEM,
 * also when the padded log2phy would exceed 2^30 entries. */
ms_status ms_placement_index(ms_placement *p, ms_error *err);

/* Checks the invariants: ids in [-1, n_logical), every logical expert has at
 * least one slot in every layer, and (when log2phy is not NULL) log2phy/logcnt
 * agree with phy2log: each expert's first logcnt entries are distinct slots
 * holding it, in any order, logcnt equals its slot count, the rest is -1.
 * Fails MS_E_INPUT with a message naming the layer and expert or slot;
 * MS_E_NOMEM. */
ms_status ms_placement_check(const ms_placement *p, ms_error *err);

/* JSON (moesim's own format): format "moesim-placement", version 1, devices,
 * rows, cols, slots_per_device, layers, routed_experts, shared_expert,
 * logical_experts, max_replicas, phy2log, log2phy, logcnt (one line per
 * layer), metadata{algorithm, params, objective, lower_bound, layer_bound,
 * runtime_s, trace_digest} (NAN -> null, digest as a hex string). Checks the
 * invariants first (MS_E_INPUT) and writes atomically ("-" = stdout; MS_E_IO).
 * The same placement always gives the same bytes. */
ms_status ms_placement_write_json(const ms_placement *p, const char *path, ms_error *err);
/* Reads moesim's JSON, SGLang's {"physical_to_logical_map": ...} or the
 * peer's (moe-balance) placement.json (expert id -> [{device,row,col,slot}],
 * one layer). The format is detected from the content.
 *  - c: NULL (or all zero) = infer; otherwise the cluster the file must match.
 *    moesim JSON carries its own cluster (checked against c when given).
 *    SGLang: inferred as 1 row x N columns x 1 slot (N = slots per layer).
 *    peer: rows/cols/slots = largest row/col/slot + 1.
 *  - n_routed: 0 = infer (largest id + 1, no shared expert); otherwise the
 *    routed expert count, and id n_routed, if present, is the shared expert.
 * Replicas keep the file's order in log2phy (moesim: its log2phy; peer: the
 * listed order, so instances are numbered expert-major as the peer does;
 * SGLang: ascending slots). Fails MS_E_IO if unreadable, MS_E_INPUT (naming
 * the file and the offending field) on anything malformed or inconsistent. */
ms_status ms_placement_read_json(const char *path, const ms_cluster *c, uint32_t n_routed,
                                 ms_placement **out, ms_error *err);
/* The same from len bytes of text (need not be NUL-terminated); label (NULL =
 * "placement") names the input in messages. ms_placement_read_json reads the
 * file and calls this. Memory use is bounded by the text (besides jansson's
 * tree, no table exceeds 2^24 + 16 * len entries): fails MS_E_INPUT when the
 * padded log2phy (layers x experts x the most replicas of one expert) would
 * be larger, and when a peer file's inferred grid has more than
 * 2^16 + 64 * len slots (pass c for such a grid). MS_E_NOMEM. */
ms_status ms_placement_parse_json(const char *text, size_t len, const char *label, const ms_cluster *c,
                                  uint32_t n_routed, ms_placement **out, ms_error *err);
/* SGLang's --init-expert-location file: {"physical_to_logical_map": [[...]
 * per layer]} (the shared expert, when modelled, appears as id n_routed).
 * MS_E_INPUT when a slot is empty (SGLang needs every slot filled); MS_E_IO. */
ms_status ms_placement_write_sglang(const ms_placement *p, const char *path, ms_error *err);
/* The peer's placement.json for one layer, formatted as Python's
 * json.dump(indent=2): keys "0".."n_logical-1" ascending, each expert's
 * replicas in log2phy order as {device, row, col, slot}. Needs an indexed
 * placement. MS_E_INPUT for a layer out of range; MS_E_IO. */
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
    /* The shared expert's load per layer (every token chooses it). With a
     * trace (stats given) it is the layer's token count. With loads only:
     * shared_load when >= 0; else row sum / top_k when top_k > 0 (exact for
     * token-count loads); else the layer's largest routed load (a lower bound
     * on the token count: each token picks an expert at most once). */
    double shared_load;        /* default -1 (derive) */
    uint32_t top_k;            /* default 0 (unknown) */
    /* Ask ms_place_lower_bound (GLPK's LP relaxation) for each layer's bound
     * besides the analytic one. Default true; the LP can take long on large
     * instances, so callers that run placements in loops turn it off. */
    bool lp_bound;
} ms_place_opts;

/* Sets every option to its documented default: algo "eplb", cluster 0x0x0
 * (must be set), no shared expert, shared_replicas 0 (= one per row),
 * redundant UINT32_MAX (fill every free slot), groups 0 (global), axis 'r',
 * hot_n 0 (algorithm's default), tail_alpha 2.0, coact_weight 1.0,
 * time_limit_s 10, seed 0, threads 0 (all), shared_load -1, top_k 0, lp_bound true. */
void ms_place_opts_default(ms_place_opts *o);

/* What a placement algorithm may look at: mean loads always; per-window loads
 * and co-activation when a trace was given (NULL otherwise). */
typedef struct ms_place_input {
    const ms_loads *loads;         /* [layers][n_routed] */
    const ms_stats *stats;         /* NULL or window/co-activation statistics */
    uint64_t digest;
} ms_place_input;

/* Runs opts->algo for every layer. The shared expert's replicas (when
 * opts->shared_expert) are reserved first by moe-balance's rule: replica i at
 * row i mod rows, column i mod cols, in that device's lowest free slot. Then
 * the algorithm fills the rest; the result is indexed, checked, timed
 * (runtime_s) and given metadata: algorithm, params (JSON text), trace_digest,
 * objective (see ms_placement), layer_bound/lower_bound: per layer the larger
 * of the LP bound (ms_place_lower_bound, when opts->lp_bound and it gives a
 * number; computed before the algorithm runs) and the analytic
 * bound max(total load / devices, max routed load / min(devices, extra + 1),
 * largest shared-expert load on one device), extra = replicas beyond one per
 * expert the budget allows. MS_E_INPUT for an unknown algorithm, a slot budget
 * too small for the experts (slots < experts + shared replicas), loads and
 * stats that disagree, or options that make no sense; MS_E_UNSUPPORTED for an
 * algorithm this build lacks (ilp without GLPK). */
ms_status ms_place_run(const ms_place_input *in, const ms_place_opts *opts, ms_placement **out,
                       ms_error *err);

/* Names of the algorithms ms_place_run knows, NULL-terminated. */
const char *const *ms_place_algorithms(void);

/* Maximum over devices of summed load in `layer` when every expert's load is
 * split evenly over its replicas (EPLB's own measure). loads has n_routed
 * columns (the shared expert then counts 0) or n_logical columns (column
 * n_routed is the shared expert's load). Needs an indexed placement; returns
 * NAN when layer is out of range or the shapes disagree. Cannot fail. */
double ms_placement_max_device_load(const ms_placement *p, const ms_loads *loads, uint32_t layer);

/* The loads the algorithms see: in->loads with, when opts->shared_expert, a
 * column n_routed appended holding the shared expert's load per layer (see
 * ms_place_opts.shared_load). MS_E_INPUT when stats and loads disagree in
 * shape; MS_E_NOMEM. */
ms_status ms_place_effective_loads(const ms_place_input *in, const ms_place_opts *opts, ms_loads **out,
                                   ms_error *err);

#ifdef __cplusplus
}
#endif
#endif
