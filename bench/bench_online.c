/* bench_online.c - re-placement decisions at DeepSeek-V3's shape (58 MoE
 * layers x 256 routed experts + the shared expert on 16 x 8 = 128 GPUs, 3
 * slots each: 16 shared replicas, 112 spare slots): the placement in service
 * was made for one load matrix, the decision sees another (the same skew
 * moved to other experts, as after a tenant change). Timed: the incremental
 * decision (64 and 256 copies), periodic EPLB's full re-placement, and the
 * pricing of the migration each implies. The aim: under 5 ms per
 * decision. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "moesim/online.h"
#include "moesim/place.h"

typedef struct online_case {
    const ms_placement *cur;
    const ms_loads *loads;     /* n_logical columns */
    const ms_loads *routed;    /* routed columns, for EPLB */
    const ms_loads *var;       /* per-step variances, or NULL */
    double z;
    const ms_hw_preset *hw;
    uint32_t moves;
    int eplb;
    ms_status st;
    uint32_t copies;
    ms_migration_cost cost;
    double after;
} online_case;

static ms_placement *eplb(const ms_loads *routed, double tokens, ms_status *st) {
    ms_place_opts o;
    ms_place_opts_default(&o);
    o.algo = "eplb";
    o.cluster = (ms_cluster){16, 8, 3};
    o.shared_expert = true;
    o.shared_replicas = 16;
    o.shared_load = tokens;
    o.lp_bound = false;
    o.threads = 1;
    ms_place_input in = {routed, NULL, 0};
    ms_placement *p = NULL;
    ms_error err = {0};
    *st = ms_place_run(&in, &o, &p, &err);
    return p;
}

static void run_decision(void *ctx) {
    online_case *c = ctx;
    ms_placement *q = NULL;
    ms_error err = {0};
    if (c->eplb) {
        q = eplb(c->routed, c->loads->w[256], &c->st);
    } else {
        c->st = ms_replay_incremental(c->cur, c->loads, c->var, c->z, c->moves, &q, &c->copies, &err);
    }
    if (q) {
        c->after = ms_placement_expected_max(q, c->loads);
        ms_migration_price(c->cur, q, 44e6, 44e6, c->hw, &c->cost, &err);
    }
    ms_placement_free(q);
}

static void run_price(void *ctx) {
    online_case *c = ctx;
    ms_error err = {0};
    c->st = ms_migration_price(c->cur, c->cur, 44e6, 44e6, c->hw, &c->cost, &err);
}

int bench_online(void) {
    const uint32_t L = 58, E = 256;
    const double tokens = 16384; /* a window of 16k tokens, top-8 */
    ms_loads *before = NULL, *after = NULL, *after_routed = NULL, *before_routed = NULL;
    ms_error err = {0};
    if (ms_loads_new(L, E, &before_routed, &err) != MS_OK || ms_loads_new(L, E, &after_routed, &err) != MS_OK ||
        ms_loads_new(L, E + 1, &after, &err) != MS_OK || ms_loads_new(L, E + 1, &before, &err) != MS_OK)
        return 1;
    ms_rng r;
    ms_rng_seed(&r, 42);
    for (uint32_t l = 0; l < L; l++) {
        double w[256], sum = 0;
        for (uint32_t e = 0; e < E; e++) sum += w[e] = exp(1.2 * ms_rng_normal(&r));
        uint32_t perm[256];
        for (uint32_t e = 0; e < E; e++) perm[e] = e;
        for (uint32_t e = E - 1; e > 0; e--) {
            uint32_t j = (uint32_t)ms_rng_below(&r, e + 1), x = perm[e];
            perm[e] = perm[j];
            perm[j] = x;
        }
        for (uint32_t e = 0; e < E; e++) {
            double b = floor(tokens * 8 * w[e] / sum), a = floor(tokens * 8 * w[perm[e]] / sum);
            before_routed->w[(size_t)l * E + e] = before->w[(size_t)l * (E + 1) + e] = b;
            after_routed->w[(size_t)l * E + e] = after->w[(size_t)l * (E + 1) + e] = a;
        }
        before->w[(size_t)l * (E + 1) + E] = after->w[(size_t)l * (E + 1) + E] = tokens;
    }
    ms_status st;
    ms_placement *cur = eplb(before_routed, tokens, &st);
    ms_hw_preset hw;
    if (st != MS_OK || ms_hw_preset_load("h100-sxm", &hw, &err) != MS_OK) return 1;
    printf("expected max device load (sum over 58 layers), in service on its own loads: %.0f; after the shift: %.0f\n",
           ms_placement_expected_max(cur, before), ms_placement_expected_max(cur, after));
    /* per-step variances as a Poisson count has them (= the mean) */
    ms_loads *var = NULL;
    if (ms_loads_new(L, E + 1, &var, &err) != MS_OK) return 1;
    memcpy(var->w, after->w, (size_t)L * (E + 1) * sizeof *var->w);
    const double z = sqrt(2.0 * log(128.0));
    struct {
        const char *label;
        uint32_t moves;
        int eplb, reps, with_var;
    } cases[] = {
        {"incremental decision, 64 copies", 64, 0, 20, 0},
        {"incremental decision, 64 copies, variance-aware (z = sqrt(2 ln 128))", 64, 0, 20, 1},
        {"incremental decision, 256 copies", 256, 0, 10, 0},
        {"incremental decision, 1024 copies", 1024, 0, 5, 0},
        {"incremental decision, 1024 copies, variance-aware", 1024, 0, 5, 1},
        {"incremental decision, 4096 copies", 4096, 0, 2, 0},
        {"incremental decision, unlimited (to its local optimum)", 58 * 384, 0, 1, 0},
        {"periodic-eplb decision (full EPLB)", 0, 1, 20, 0},
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        online_case c = {cur, after, after_routed, cases[k].with_var ? var : NULL, z, &hw, cases[k].moves,
                         cases[k].eplb, MS_OK, 0, {0}, 0};
        double best = bench_best_of(cases[k].reps, run_decision, &c);
        if (c.st != MS_OK) {
            printf("%s: failed (%s)\n", cases[k].label, ms_status_name(c.st));
            rc = 1;
            continue;
        }
        printf("%s: %.3f ms (with pricing); expected max %.0f, %u replicas copied (%u between rows), %.2f GB, copy "
               "time %.1f ms\n",
               cases[k].label, best * 1e3, c.after, c.cost.moved, c.cost.moved_inter, c.cost.bytes / 1e9,
               c.cost.copy_us / 1e3);
    }
    online_case c = {cur, after, after_routed, NULL, 0, &hw, 0, 0, MS_OK, 0, {0}, 0};
    printf("migration pricing alone (58 layers x 384 slots): %.3f ms\n", bench_best_of(50, run_price, &c) * 1e3);
    ms_placement_free(cur);
    ms_loads_free(var);
    ms_loads_free(before);
    ms_loads_free(after);
    ms_loads_free(before_routed);
    ms_loads_free(after_routed);
    return rc;
}
