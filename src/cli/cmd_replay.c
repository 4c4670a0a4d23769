/* cmd_replay.c - moesim replay: serve a trace in arrival order through
 * placements that change over time (static, periodic EPLB, incremental,
 * oracle), with migration priced, and compare the policies and intervals. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sim_cli.h"
#include "moesim/online.h"
#include "moesim/place.h"

static const char *usage_text =
    "usage: moesim replay TRACE [--placement FILE | --cluster RxCxS] [options]\n"
    "\n"
    "Serves the trace in arrival order as a sequence of steps (the batches of --batch:\n"
    "mixed steps of continuous batching, prefill batches, decode steps or one request per\n"
    "step), through a placement that re-placement policies change while serving, as\n"
    "SGLang's and vLLM's EPLB do. Every step is simulated as moesim simulate prices it;\n"
    "every change copies expert weights over NVLink (inside a row) or the network (between\n"
    "rows) and is never free. Prints, per policy and interval: re-placements, replicas and\n"
    "bytes moved, migration time, serving time, total time, mean imbalance (before and\n"
    "after --after-request), and the time saved against static and periodic-eplb.\n"
    "\n"
    "policies (--rebalance, comma-separated; default all four):\n"
    "  static              the initial placement throughout\n"
    "  periodic-eplb       every --rebalance-every, EPLB on the loads of the last --window\n"
    "                      (a full re-placement)\n"
    "  incremental         every --rebalance-every, at most --max-moves replica copies, each\n"
    "                      the move (swap, move, re-purpose a spare replica) that cuts the\n"
    "                      expected maximum device load of the last --window the most per copy\n"
    "  oracle              with hindsight, for each interval the placement that serves it\n"
    "                      fastest (among the one it holds, the initial one, EPLB and the\n"
    "                      incremental search on the interval's own loads, and what the other\n"
    "                      policies hold there); copies free: the bound no policy can beat\n"
    "\n"
    "options:\n"
    "  --placement FILE    the initial placement (moesim, SGLang or moe-balance JSON)\n"
    "  --init ALGO         without --placement: ALGO (default eplb) on the loads of the first\n"
    "                      interval, on --cluster RxCxS (as if the engine had recorded them)\n"
    "  --rebalance LIST    policies, comma-separated (see above)\n"
    "  --rebalance-every LIST   intervals, comma-separated: N or Nsteps (steps), Ntokens\n"
    "                      (k and M multiply: 200ktokens); default 100; a list draws the\n"
    "                      curve total time against interval\n"
    "  --window W          loads a decision looks at: the last W steps or tokens (default:\n"
    "                      the interval)\n"
    "  --max-moves LIST    incremental: copies per decision, comma-separated (default 64)\n"
    "  --variance-weight Z incremental: a device counts as its mean load per step plus Z standard\n"
    "                      deviations of it (default 0: the mean, EPLB's measure)\n"
    "  --migration M       stall (default): every device waits for the copies; overlap: the\n"
    "                      copies share the links with the all-to-all and the new placement\n"
    "                      serves once they finish\n"
    "  --groups G          EPLB's expert groups (hierarchical policy; default 0 = global)\n"
    "  --after-request N   statistics before and after the first step that serves request\n"
    "                      N (e.g. where a shifted trace changes: gen --shift, TRACE1+TRACE2)\n"
    "  --steps-csv FILE    every step of every run as CSV (run, policy, interval, step, tokens,\n"
    "                      placement version, imbalance, layer and serving time, migration)\n"
    "  --no-steps          json: leave the per-step arrays out\n"
    "\n"
    "Every simulate option applies (moesim simulate --help): --batch (default per-request),\n"
    "--batch-tokens, --decode-batch, --order (default trace here), --dp, --route,\n"
    "--capacity-factor, --overflow, --cost-model, --origin-rows, --hw (also the links copies\n"
    "use; default h100-sxm), --model (expert weight bytes), --overlap, --seed, --threads,\n"
    "--quiet, --progress, --format table|json|csv (csv: one line per run), -o FILE.\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "examples:\n"
    "  moesim replay T+T@permute=7 --placement eplb.json --batch mixed --cost-model roofline \\\n"
    "      --route least-loaded --rebalance-every 20,50,100 --after-request 1000\n"
    "  moesim replay trace --cluster 16x8x3 --batch decode --rebalance incremental \\\n"
    "      --max-moves 32 --migration overlap --format json -o replay.json\n";

#define MAX_LIST 16

typedef struct replay_cli {
    ms_rebalance policies[MS_REBALANCE_COUNT];
    int n_policies;
    ms_span every[MAX_LIST];
    int n_every;
    ms_span window;
    uint32_t moves[MAX_LIST];
    int n_moves;
    ms_migration migration;
    uint32_t groups;
    const char *init_algo;
    uint64_t after_request;
    const char *steps_csv;
    bool no_steps;
    double variance_weight;
} replay_cli;

enum {
    R_REBALANCE = SIM_CLI_EXTRA_BASE, R_EVERY, R_WINDOW, R_MOVES, R_MIGRATION, R_GROUPS, R_INIT, R_AFTER, R_STEPS_CSV,
    R_NO_STEPS, R_VARW
};

static const struct option replay_opts[] = {
    {"rebalance", required_argument, 0, R_REBALANCE}, {"rebalance-every", required_argument, 0, R_EVERY},
    {"window", required_argument, 0, R_WINDOW},       {"max-moves", required_argument, 0, R_MOVES},
    {"migration", required_argument, 0, R_MIGRATION}, {"groups", required_argument, 0, R_GROUPS},
    {"init", required_argument, 0, R_INIT},           {"after-request", required_argument, 0, R_AFTER},
    {"steps-csv", required_argument, 0, R_STEPS_CSV}, {"no-steps", no_argument, 0, R_NO_STEPS},
    {"variance-weight", required_argument, 0, R_VARW}, {0, 0, 0, 0}};

static const char *CMD = "replay";

static int handle(void *ctx, int opt, const char *arg) {
    replay_cli *r = ctx;
    ms_error err = {0};
    char buf[512];
    char *save = NULL;
    switch (opt) {
    case R_REBALANCE:
        r->n_policies = 0;
        snprintf(buf, sizeof buf, "%s", arg);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            ms_rebalance p;
            if (ms_rebalance_parse(t, &p, &err) != MS_OK) return cli_usage(CMD, "%s", err.msg);
            for (int i = 0; i < r->n_policies; i++)
                if (r->policies[i] == p) return cli_usage(CMD, "--rebalance lists '%s' twice", t);
            r->policies[r->n_policies++] = p;
        }
        if (!r->n_policies) return cli_usage(CMD, "--rebalance needs a policy");
        return 0;
    case R_EVERY:
        r->n_every = 0;
        snprintf(buf, sizeof buf, "%s", arg);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (r->n_every == MAX_LIST) return cli_usage(CMD, "--rebalance-every: at most %d intervals", MAX_LIST);
            if (ms_span_parse(t, &r->every[r->n_every++], &err) != MS_OK)
                return cli_usage(CMD, "--rebalance-every: %s", err.msg);
        }
        if (!r->n_every) return cli_usage(CMD, "--rebalance-every needs an interval");
        return 0;
    case R_WINDOW:
        if (ms_span_parse(arg, &r->window, &err) != MS_OK) return cli_usage(CMD, "--window: %s", err.msg);
        return 0;
    case R_MOVES:
        r->n_moves = 0;
        snprintf(buf, sizeof buf, "%s", arg);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (r->n_moves == MAX_LIST) return cli_usage(CMD, "--max-moves: at most %d values", MAX_LIST);
            if (cli_parse_u32(CMD, "--max-moves", t, &r->moves[r->n_moves++])) return 2;
        }
        if (!r->n_moves) return cli_usage(CMD, "--max-moves needs a number");
        return 0;
    case R_MIGRATION:
        if (ms_migration_parse(arg, &r->migration, &err) != MS_OK) return cli_usage(CMD, "%s", err.msg);
        return 0;
    case R_GROUPS: return cli_parse_u32(CMD, "--groups", arg, &r->groups);
    case R_INIT: r->init_algo = arg; return 0;
    case R_AFTER: return cli_parse_u64(CMD, "--after-request", arg, &r->after_request);
    case R_STEPS_CSV: r->steps_csv = arg; return 0;
    case R_NO_STEPS: r->no_steps = true; return 0;
    case R_VARW:
        if (cli_parse_double(CMD, "--variance-weight", arg, &r->variance_weight)) return 2;
        if (!(r->variance_weight >= 0)) return cli_usage(CMD, "--variance-weight must be >= 0");
        return 0;
    }
    return cli_usage(CMD, "unknown option");
}

/* One run: its policy and interval, what the policy was given, the result. */
typedef struct run {
    ms_rebalance policy;
    ms_span every;
    uint32_t moves;
    ms_replay_result *res;
    int static_run, eplb_run, oracle_run; /* same interval's runs (-1 = none) */
} run;

/* --init: the algorithm on the loads of the plan's first interval. */
static int initial_placement(const sim_cli *o, const replay_cli *r, const sim_inputs *in, ms_placement **out) {
    ms_error err = {0};
    ms_place_opts po;
    ms_place_opts_default(&po);
    po.algo = r->init_algo ? r->init_algo : "eplb";
    po.cluster = o->cluster;
    po.groups = r->groups;
    po.lp_bound = false;
    po.threads = o->so.threads;
    if (ms_replay_initial_placement(in->trace, in->plan, r->every[0], &po, out, &err) != MS_OK)
        return cli_fail(CMD, &err);
    return 0;
}

static json_t *span_json(const ms_span *s) {
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)s->n));
    json_object_set_new(o, "unit", json_string(s->unit == MS_SPAN_TOKENS ? "tokens" : "steps"));
    return o;
}

static double saved(const run *runs, int other, const run *x) {
    return other >= 0 ? runs[other].res->summary.total_us - x->res->summary.total_us : NAN;
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *run_head_json(const run *runs, const run *x, const replay_cli *r) {
    json_t *j = json_object();
    json_object_set_new(j, "policy", json_string(ms_rebalance_name(x->policy)));
    json_object_set_new(j, "every", span_json(&x->every));
    json_object_set_new(j, "window", r->window.n ? span_json(&r->window) : span_json(&x->every));
    if (x->policy == MS_REBALANCE_INCREMENTAL) json_object_set_new(j, "max_moves", json_integer(x->moves));
    json_object_set_new(j, "migration", json_string(ms_migration_name(r->migration)));
    json_object_set_new(j, "summary", ms_replay_summary_json(&x->res->summary));
    json_t *cmp = json_object();
    json_object_set_new(cmp, "saved_vs_static_us", num(saved(runs, x->static_run, x)));
    json_object_set_new(cmp, "saved_vs_periodic_eplb_us", num(saved(runs, x->eplb_run, x)));
    json_object_set_new(cmp, "gap_to_oracle_us", num(x->oracle_run >= 0 ? -saved(runs, x->oracle_run, x) : NAN));
    json_object_set_new(j, "comparison", cmp);
    json_t *ev = json_array();
    for (uint64_t e = 0; e < x->res->n_events; e++) json_array_append_new(ev, ms_replay_event_json(&x->res->events[e]));
    json_object_set_new(j, "events", ev);
    return j;
}

static char *compact(json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(v);
    return s;
}

static void write_json(FILE *fp, const sim_cli *o, const replay_cli *r, const sim_inputs *in, const run *runs,
                       int nrun, const char *init_label, double expert_bytes) {
    fprintf(fp, "{\n  \"format\": \"moesim-replay\",\n  \"command\": \"replay\",\n");
    char *s = compact(sim_cli_trace_json(in));
    fprintf(fp, "  \"trace\": %s,\n", s ? s : "null");
    free(s);
    json_t *opt = sim_cli_options_json(o, in);
    json_object_set_new(opt, "initial_placement", json_string(init_label));
    json_object_set_new(opt, "after_request", r->after_request != UINT64_MAX ? json_integer((json_int_t)r->after_request)
                                                                              : json_null());
    json_object_set_new(opt, "expert_bytes", json_real(expert_bytes));
    s = compact(opt);
    fprintf(fp, "  \"options\": %s,\n  \"runs\": [\n", s ? s : "null");
    free(s);
    for (int i = 0; i < nrun; i++) {
        s = compact(run_head_json(runs, &runs[i], r));
        size_t n = s ? strlen(s) : 0;
        if (n < 2) {
            free(s);
            s = NULL;
            n = 0;
        }
        if (r->no_steps) {
            fprintf(fp, "    %s%s\n", s ? s : "{}", i + 1 < nrun ? "," : "");
        } else {
            fprintf(fp, "    %.*s,\"steps\": [\n", s ? (int)(n - 1) : 1, s ? s : "{");
            const ms_replay_result *x = runs[i].res;
            for (uint64_t k = 0; k < x->n_steps; k++) {
                char *t = compact(ms_replay_step_json(&x->steps[k]));
                fprintf(fp, "      %s%s\n", t ? t : "null", k + 1 < x->n_steps ? "," : "");
                free(t);
            }
            fprintf(fp, "    ]}%s\n", i + 1 < nrun ? "," : "");
        }
        free(s);
    }
    fprintf(fp, "  ]\n}\n");
}

static void write_csv(FILE *fp, const run *runs, int nrun) {
    fprintf(fp, "policy,every,every_unit,max_moves,steps,tokens,replacements,replicas_moved,bytes_moved,"
                "inter_row_bytes,serve_us,migration_us,total_us,imbalance,imbalance_before,imbalance_after,"
                "layer_us,saved_vs_static_us,saved_vs_periodic_eplb_us,gap_to_oracle_us\n");
    for (int i = 0; i < nrun; i++) {
        const run *x = &runs[i];
        const ms_replay_summary *s = &x->res->summary;
        fprintf(fp, "%s,%llu,%s,%u,%llu,%llu,%llu,%llu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,"
                    "%.17g\n",
                ms_rebalance_name(x->policy), (unsigned long long)x->every.n,
                x->every.unit == MS_SPAN_TOKENS ? "tokens" : "steps",
                x->policy == MS_REBALANCE_INCREMENTAL ? x->moves : 0, (unsigned long long)s->steps,
                (unsigned long long)s->tokens, (unsigned long long)s->replacements, (unsigned long long)s->moved,
                s->bytes, s->inter_bytes, s->serve_us, s->migration_us, s->total_us, s->imbalance,
                s->steps_before ? s->imbalance_before : NAN, s->steps_after ? s->imbalance_after : NAN, s->layer_us,
                saved(runs, x->static_run, x), saved(runs, x->eplb_run, x),
                x->oracle_run >= 0 ? -saved(runs, x->oracle_run, x) : NAN);
    }
}

static int write_steps_csv(const char *path, const run *runs, int nrun) {
    ms_afile f;
    int rc = cli_open_output(CMD, path, &f);
    if (rc) return rc;
    fprintf(f.fp, "run,policy,every,every_unit,max_moves,step,tokens,version,imbalance,max_imbalance,layer_us,"
                  "serve_us,comm_us,migration_us\n");
    for (int i = 0; i < nrun; i++) {
        const run *x = &runs[i];
        for (uint64_t k = 0; k < x->res->n_steps; k++) {
            const ms_replay_step *s = &x->res->steps[k];
            fprintf(f.fp, "%d,%s,%llu,%s,%u,%llu,%u,%u,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", i,
                    ms_rebalance_name(x->policy), (unsigned long long)x->every.n,
                    x->every.unit == MS_SPAN_TOKENS ? "tokens" : "steps",
                    x->policy == MS_REBALANCE_INCREMENTAL ? x->moves : 0, (unsigned long long)s->step, s->tokens,
                    s->version, s->imbalance, s->max_imbalance, s->layer_us, s->serve_us, s->comm_us,
                    s->migration_us);
        }
    }
    return cli_commit_output(CMD, &f);
}

static void write_table(FILE *fp, const sim_cli *o, const sim_inputs *in, const run *runs, int nrun,
                        const char *init_label, uint64_t after_step) {
    fprintf(fp, "trace      %s: %llu requests, %llu tokens, %u layers, %u experts, top-%u\n", in->trace->label,
            (unsigned long long)in->trace->n_requests, (unsigned long long)in->trace->n_tokens, in->trace->n_layers,
            in->trace->n_experts, in->trace->top_k);
    fprintf(fp, "steps      %llu %s steps (%s order), cost model %s, route %s\n",
            (unsigned long long)in->plan->n_batches, ms_batch_mode_name(o->bo.mode), ms_order_name(o->bo.order),
            ms_cost_model_name(o->so.cost_model), ms_route_name(o->so.route));
    fprintf(fp, "placement  %s\n", init_label);
    if (after_step != UINT64_MAX) fprintf(fp, "split      before / after step %llu\n", (unsigned long long)after_step);
    fprintf(fp, "\n%-14s %-15s %5s %6s %7s %9s %10s %11s %11s %9s %15s %12s %12s\n", "policy", "every", "K", "moves",
            "copies", "GB moved", "migr ms", "serve ms", "total ms", "imb", "imb bef/aft", "vs static ms",
            "vs eplb ms");
    for (int i = 0; i < nrun; i++) {
        const run *x = &runs[i];
        const ms_replay_summary *s = &x->res->summary;
        char ev[32], k[16], ba[32];
        ms_span_format(&x->every, ev, sizeof ev);
        if (x->policy == MS_REBALANCE_STATIC) snprintf(ev, sizeof ev, "-");
        snprintf(k, sizeof k, x->policy == MS_REBALANCE_INCREMENTAL ? "%u" : "-", x->moves);
        if (s->steps_before && s->steps_after) snprintf(ba, sizeof ba, "%.3f/%.3f", s->imbalance_before, s->imbalance_after);
        else snprintf(ba, sizeof ba, "-");
        double vs = saved(runs, x->static_run, x), ve = saved(runs, x->eplb_run, x);
        fprintf(fp, "%-14s %-15s %5s %6llu %7llu %9.3f %10.3f %11.3f %11.3f %9.4f %15s %12.3f %12.3f\n",
                ms_rebalance_name(x->policy), ev, k, (unsigned long long)s->replacements,
                (unsigned long long)s->moved, s->bytes / 1e9, s->migration_us / 1e3, s->serve_us / 1e3,
                s->total_us / 1e3, s->imbalance, ba, isfinite(vs) ? vs / 1e3 : 0.0, isfinite(ve) ? ve / 1e3 : 0.0);
    }
    /* the best interval of each policy */
    for (int p = MS_REBALANCE_PERIODIC_EPLB; p <= MS_REBALANCE_INCREMENTAL; p++) {
        int best = -1, count = 0;
        for (int i = 0; i < nrun; i++)
            if (runs[i].policy == (ms_rebalance)p) {
                count++;
                if (best < 0 || runs[i].res->summary.total_us < runs[best].res->summary.total_us) best = i;
            }
        if (count > 1) {
            char ev[32];
            fprintf(fp, "\nbest interval for %s: every %s (total %.3f ms)", ms_rebalance_name((ms_rebalance)p),
                    ms_span_format(&runs[best].every, ev, sizeof ev), runs[best].res->summary.total_us / 1e3);
        }
    }
    fprintf(fp, "\n");
}

int cmd_replay(int argc, char **argv) {
    replay_cli r;
    memset(&r, 0, sizeof r);
    r.after_request = UINT64_MAX;
    r.variance_weight = 0;
    r.window.n = 0;
    sim_cli_extra extra = {replay_opts, handle, &r, true};
    sim_cli o;
    int rc = sim_cli_parse_ext(CMD, usage_text, argc, argv, &o, false, &extra);
    if (rc >= 0) return rc;
    if (o.details) return cli_usage(CMD, "--details is simulate's; replay writes steps (--steps-csv)");
    if (o.so.layer >= 0) return cli_usage(CMD, "replay serves every layer (no --layer)");
    if (o.n_placements && r.init_algo) return cli_usage(CMD, "--init computes the initial placement: not with --placement");
    if (!o.order_set) o.bo.order = MS_ORDER_TRACE;
    if (!r.n_policies)
        for (int p = 0; p < MS_REBALANCE_COUNT; p++) r.policies[r.n_policies++] = (ms_rebalance)p;
    if (!r.n_every) r.every[r.n_every++] = (ms_span){100, MS_SPAN_STEPS};
    if (!r.n_moves) r.moves[r.n_moves++] = 64;
    sim_inputs in;
    rc = sim_cli_load(CMD, &o, &in);
    if (rc) {
        sim_inputs_free(&in);
        return rc;
    }
    ms_error err = {0};
    if (!in.have_model) {
        rc = cli_usage(CMD, "no model preset matches %u experts, top-%u: give --model (expert weight bytes)",
                       in.trace->n_experts, in.trace->top_k);
        sim_inputs_free(&in);
        return rc;
    }
    if (!in.have_hw) {
        if (ms_hw_preset_load("h100-sxm", &in.hw, &err) != MS_OK) {
            sim_inputs_free(&in);
            return cli_fail(CMD, &err);
        }
        in.have_hw = true;
    }
    ms_placement *init = NULL;
    char init_label[600];
    if (o.n_placements) {
        init = in.pl[0];
        snprintf(init_label, sizeof init_label, "%s (%s)", o.placements[0], init->algorithm);
    } else {
        rc = initial_placement(&o, &r, &in, &init);
        if (rc) {
            sim_inputs_free(&in);
            return rc;
        }
        in.pl[0] = init; /* freed with the inputs */
        char sp[32];
        snprintf(init_label, sizeof init_label, "%s on the loads of the first %s, %ux%u devices x %u slots",
                 init->algorithm, ms_span_format(&r.every[0], sp, sizeof sp), o.cluster.rows, o.cluster.cols,
                 o.cluster.slots_per_device);
    }
    ms_replay_opts base;
    ms_replay_opts_default(&base);
    base.window = r.window;
    base.migration = r.migration;
    base.eplb_groups = r.groups;
    ms_replay_opts_set_weights(&base, &in.model);
    base.hw = &in.hw;
    base.after_step = ms_plan_first_step(in.trace, in.plan, r.after_request);
    base.variance_weight = r.variance_weight;

    /* the runs: static once; the others per interval (incremental per budget); the oracle last in its interval */
    int cap = 1 + r.n_every * (2 + r.n_moves);
    run *runs = ms_calloc_array((size_t)cap, sizeof *runs, &err);
    if (!runs) {
        sim_inputs_free(&in);
        return cli_fail(CMD, &err);
    }
    int nrun = 0, static_run = -1;
    bool want[MS_REBALANCE_COUNT] = {false};
    for (int i = 0; i < r.n_policies; i++) want[r.policies[i]] = true;
    if (want[MS_REBALANCE_STATIC]) {
        runs[nrun] = (run){MS_REBALANCE_STATIC, r.every[0], 0, NULL, -1, -1, -1};
        static_run = nrun++;
    }
    for (int e = 0; e < r.n_every; e++) {
        int first = nrun, eplb = -1;
        if (want[MS_REBALANCE_PERIODIC_EPLB]) {
            runs[nrun] = (run){MS_REBALANCE_PERIODIC_EPLB, r.every[e], 0, NULL, static_run, -1, -1};
            eplb = nrun++;
        }
        if (want[MS_REBALANCE_INCREMENTAL])
            for (int k = 0; k < r.n_moves; k++)
                runs[nrun++] = (run){MS_REBALANCE_INCREMENTAL, r.every[e], r.moves[k], NULL, static_run, eplb, -1};
        if (want[MS_REBALANCE_ORACLE]) {
            runs[nrun] = (run){MS_REBALANCE_ORACLE, r.every[e], 0, NULL, static_run, eplb, -1};
            for (int i = first; i < nrun; i++) runs[i].oracle_run = nrun;
            if (static_run >= 0 && e == 0) runs[static_run].oracle_run = nrun;
            nrun++;
        }
    }
    cli_progress bar;
    cli_progress_init(&bar, "replay", o.topts.progress);
    for (int i = 0; i < nrun && !rc; i++) {
        run *x = &runs[i];
        ms_replay_opts ro = base;
        ro.policy = x->policy;
        ro.every = x->every;
        ro.max_moves = x->moves;
        const ms_replay_result *rivals[2 + MAX_LIST];
        if (x->policy == MS_REBALANCE_ORACLE) {
            uint32_t nr = 0;
            for (int j = 0; j < i; j++)
                if (runs[j].oracle_run == i && nr < 16) rivals[nr++] = runs[j].res;
            ro.rivals = rivals;
            ro.n_rivals = nr;
        }
        if (ms_replay_run(in.trace, in.plan, init, &o.so, &ro, &x->res, &err) != MS_OK) rc = cli_fail(CMD, &err);
        cli_progress_fn(&bar, (uint64_t)i + 1, (uint64_t)nrun);
    }
    cli_progress_done(&bar);
    if (!rc && r.steps_csv) rc = write_steps_csv(r.steps_csv, runs, nrun);
    if (!rc) {
        ms_afile f;
        rc = cli_open_output(CMD, o.out, &f);
        if (!rc) {
            if (o.fmt == CLI_JSON) write_json(f.fp, &o, &r, &in, runs, nrun, init_label, base.expert_bytes);
            else if (o.fmt == CLI_CSV) write_csv(f.fp, runs, nrun);
            else write_table(f.fp, &o, &in, runs, nrun, init_label, base.after_step);
            rc = cli_commit_output(CMD, &f);
        }
    }
    for (int i = 0; i < nrun; i++) ms_replay_result_free(runs[i].res);
    ms_free(runs);
    sim_inputs_free(&in);
    return rc;
}
