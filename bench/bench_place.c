/* bench_place.c - placement speed: EPLB for DeepSeek-V3's shape (58 MoE
 * layers x 256 routed experts -> 384 slots on 16 x 8 = 128 GPUs, 3 slots
 * each, 8 groups: global policy since 8 is not a multiple of 16 rows), plus
 * the hierarchical policy on the same shape (16 groups of 16, since 16 rows
 * need groups % 16 == 0) and the basic algorithms on the same instance. DeepSeek's
 * Python/PyTorch reference takes about 2.3 s for the first on 2 cores. */
#include <math.h>
#include <stdio.h>

#include "bench.h"
#include "moesim/place.h"

typedef struct place_case {
    ms_place_input in;
    ms_place_opts opts;
    ms_status st;
    double algo_best; /* best runtime_s: the algorithm alone */
} place_case;

static void run_case(void *ctx) {
    place_case *c = ctx;
    ms_placement *p = NULL;
    ms_error err = {0};
    c->st = ms_place_run(&c->in, &c->opts, &p, &err);
    if (p && p->runtime_s < c->algo_best) c->algo_best = p->runtime_s;
    ms_placement_free(p);
}

int bench_place(void) {
    ms_loads *ld;
    ms_error err = {0};
    if (ms_loads_new(58, 256, &ld, &err) != MS_OK) return 1;
    ms_rng r;
    ms_rng_seed(&r, 42);
    for (size_t i = 0; i < (size_t)58 * 256; i++) /* log-normal skew, like real routing loads */
        ld->w[i] = floor(1000.0 * exp(1.2 * ms_rng_normal(&r)));
    struct {
        const char *label, *algo;
        uint32_t groups;
        int reps;
    } cases[] = {
        {"eplb global 58x256 -> 384 slots on 128 GPUs", "eplb", 8, 50},
        {"eplb hierarchical (16 groups) same shape", "eplb", 16, 50},
        {"replicate same shape", "replicate", 0, 10},
        {"pair 58x256 on 128 GPUs x 3 slots", "pair", 0, 10},
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        place_case c = {{ld, NULL, 0}, {0}, MS_OK, 1e300};
        ms_place_opts_default(&c.opts);
        c.opts.lp_bound = false; /* the analytic bound only: GLPK's LP is not what is timed */
        c.opts.algo = cases[k].algo;
        c.opts.cluster = (ms_cluster){16, 8, 3};
        c.opts.groups = cases[k].groups;
        double best = bench_best_of(cases[k].reps, run_case, &c);
        if (c.st != MS_OK) {
            printf("%s: failed (%s)\n", cases[k].label, ms_status_name(c.st));
            rc = 1;
            continue;
        }
        printf("%s: %.3f ms algorithm, %.3f ms ms_place_run with indexing, checks and bounds (best of %d)\n",
               cases[k].label, c.algo_best * 1e3, best * 1e3, cases[k].reps);
    }
    ms_loads_free(ld);
    return rc;
}
