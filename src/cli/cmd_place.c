/* cmd_place.c - moesim place: compute a placement of experts on a device grid. */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/opt.h"
#include "moesim/place.h"
#include "moesim/stats.h"
#include "moesim/trace.h"

static const char *usage_text =
    "usage: moesim place TRACE... | --loads FILE.csv  --algo A --cluster RxCxS [options]\n"
    "\n"
    "Decides, per MoE layer, which logical experts (and how many replicas of each) sit in\n"
    "which slot of which device of a rows x cols grid (a row is a node), slots per device\n"
    "each. Prints per layer the maximum device load (every expert's load split evenly over\n"
    "its replicas), the mean device load, balancedness = mean / max, and a lower bound on\n"
    "the maximum any placement with this slot budget can reach; -o writes the placement.\n"
    "\n"
    "input (one of):\n"
    "  TRACE...           routing trace: directory of per-request .npz, or .npz files;\n"
    "                     loads are the expert token counts of --phase\n"
    "  --loads FILE.csv   load matrix: one line per layer, one column per routed expert\n"
    "\n"
    "algorithms (--algo, default eplb):\n"
    "  contiguous     expert e on device e / ceil(E / devices), slots in order; no replicas\n"
    "  round-robin    expert e on device e mod devices; no replicas\n"
    "  pair           sort by load, longest-processing-time packing with equal slot counts\n"
    "                 per device (hottest paired with coldest); no replicas\n"
    "  replicate      give the free slots one by one to the expert with the highest load\n"
    "                 per replica (at most one replica per device), then pack as pair,\n"
    "                 replicas of one expert on distinct devices\n"
    "  eplb           DeepSeek's EPLB, output-identical to its reference: hierarchical\n"
    "                 (groups to nodes, replicate within a node, pack to GPUs) when --groups\n"
    "                 is a multiple of --rows, global otherwise; fills every slot\n"
    "  one-per-gpu    at most one expert per device per layer, topology-aware\n"
    "  tail           replicas sized by the tail of the per-window load (mean +\n"
    "                 alpha*std, or p95), then packed (needs a trace for windows)\n"
    "  coact          row-aware: experts chosen together share a row, replicas spread\n"
    "                 over rows, experts that peak together kept apart (needs a trace)\n"
    "  balance        moe-balance: each replica to the least-loaded row (--axis) then\n"
    "                 the least-loaded device in it\n"
    "  balance-coact  balance, penalising devices holding co-activated experts\n"
    "  hot-tier       spread the --hot-n hottest experts' replicas over an axis first,\n"
    "                 then place the rest as balance\n"
    "  greedy-cost    replicas one by one where modelled dispatch+compute+combine grows least\n"
    "  ilp            exact integer program with GLPK for small instances (--time-limit)\n"
    "  search         simulated annealing over slot swaps and replica moves, started from\n"
    "                 --init's placement, scored on the training batches by a surrogate of\n"
    "                 the simulation (per-batch maximum device load under --route), then the\n"
    "                 best candidates simulated exactly; never worse than --init on\n"
    "                 --objective (needs a TRACE; see 'search options')\n"
    "\n"
    "cluster and budget:\n"
    "  --cluster RxCxS     grid and expert slots per device (required; or --rows R --cols C\n"
    "                      --slots S)\n"
    "  --groups G         expert groups for eplb's hierarchical policy (default 0: global)\n"
    "  --redundant N      routed replicas beyond one per expert (replicating algorithms;\n"
    "                     default: fill every free slot)\n"
    "  --shared-expert    model the shared expert as logical id E (every token chooses it);\n"
    "                     its replicas are placed first: replica i at row i mod R,\n"
    "                     column i mod C, in that device's lowest free slot\n"
    "  --shared-replicas N   shared expert replicas (default: one per row)\n"
    "  --shared-load X    the shared expert's load per layer. With a TRACE it is the\n"
    "                     layer's token count. With --loads: X if given, else row sum / K\n"
    "                     with --top-k K (exact for token-count loads), else the layer's\n"
    "                     largest routed load (a lower bound on its token count, since each\n"
    "                     token picks an expert at most once)\n"
    "  --top-k K          experts per token of the loads CSV (see --shared-load)\n"
    "\n"
    "algorithm options:\n"
    "  --axis row|col     balance, balance-coact, hot-tier (default row)\n"
    "  --hot-n N          hot-tier: hottest experts spread first (default: algorithm's)\n"
    "  --tail-alpha X     tail: mean + X * std; negative = p95 (default 2)\n"
    "  --coact-weight X   coact, balance-coact penalty weight (default 1)\n"
    "  --time-limit S     seconds for ilp (default 10)\n"
    "  --seed N           seed for randomised algorithms (default 0)\n"
    "  --threads N        worker threads (default: all cores)\n"
    "  --no-lp-bound      report only the analytic lower bound, max(total / devices,\n"
    "                     max load / most replicas it can have, shared load per device),\n"
    "                     not GLPK's LP relaxation (which can be slow on large grids)\n"
    "\n"
    "search options (--algo search; simulation options as in moesim simulate --help):\n"
    "  --init ALGO        starting placement (default eplb; any algorithm above)\n"
    "  --objective O      what the simulation on the training batches minimises: mean, p95,\n"
    "                     p99 of the layer time, imbalance (mean; default) or imbalance-p99;\n"
    "                     power (roofline): energy (J per token), peak-power (the highest\n"
    "                     (batch, layer) cluster power), time-under-cap (mean layer time with\n"
    "                     the caps' throttled clocks), mix (--mix weights); the surrogate then\n"
    "                     prices each device's power and clock incrementally, the candidates are\n"
    "                     simulated with the caps and priced by the power model\n"
    "  --mix T,P,E        weights of layer time, peak power and energy per token, each over\n"
    "                     --init's value (--objective mix; default 1,0,0)\n"
    "  --gpu-power-cap W, --row-power-cap KW, --cluster-power-cap KW, --energy NAME\n"
    "                     power caps in every simulation of the search, as moesim simulate\n"
    "                     (per-GPU default: the energy preset's TDP)\n"
    "  --pareto AXES      a Pareto answer instead of one placement: AXES = two or three of\n"
    "                     time, peak-power, energy (e.g. time,peak-power); runs mix searches for\n"
    "                     weights spread over the axes, places --init and the other algorithms,\n"
    "                     simulates and prices every point on the training batches, and writes\n"
    "                     -o FILE.json (every point's layer time mean / p99, peak power, energy\n"
    "                     per token, front or not) with each placement beside it as FILE.NN.json;\n"
    "                     moesim report draws the front. --time-limit and --iterations apply to\n"
    "                     each search\n"
    "  --pareto-searches N   scalarised searches (default 5 for two axes, 7 for three)\n"
    "  --pareto-algos LIST   the other algorithms shown as points (default: all but ilp)\n"
    "  --time-limit S     wall-clock cap for the whole search (default 10)\n"
    "  --iterations N     moves tried per layer (default 400 x slots, at least 20000);\n"
    "                     same seed and inputs give the same placement whatever --threads,\n"
    "                     unless --time-limit stops it first (the JSON metadata says so)\n"
    "  --chains N         independent annealing chains per layer (default 2)\n"
    "  --traffic-weight W weight of the row-crossing share in the surrogate, relative to its\n"
    "                     value (default 0 for imbalance objectives, 0.1 for time)\n"
    "  --min-windows N    extra request orders of the training requests until the surrogate\n"
    "                     has N batches (default 64)\n"
    "  --cost-model, --batch, --batch-tokens, --decode-batch, --dp, --route,\n"
    "  --row-local-slack, --capacity-factor, --overflow, --origin-rows, --mesh-table, --hw,\n"
    "  --model, --overlap   as moesim simulate (defaults: mesh, per-request, balanced-replicas)\n"
    "  --sim-seed N       simulate's --seed: request order of the batches, random routing\n"
    "                     (default 0; --seed seeds the search itself)\n"
    "  --layer N          optimise that layer only (the others keep --init's placement)\n"
    "\n"
    "trace options:\n"
    "  --phase P          all (default), prefill or decode rows\n"
    "  --window N         tokens per statistics window (default 1024)\n"
    "  --experts N        routed experts per layer (default: from the files)\n"
    "  --quiet / --progress   progress bar never / always\n"
    "\n"
    "output:\n"
    "  --format F         summary as table (default), json or csv on stdout\n"
    "  -o FILE            write the placement as moesim JSON (atomically)\n"
    "  --sglang FILE      write SGLang's --init-expert-location file\n"
    "                     ({\"physical_to_logical_map\": ...}; every slot must be filled)\n"
    "  --peer FILE        write moe-balance's placement.json for one layer (--layer L,\n"
    "                     default 0 when there is one layer)\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "examples:\n"
    "  moesim place --loads weight.csv --algo eplb --rows 2 --cols 4 --slots 2 --groups 4\n"
    "  moesim place ../shared/data/deepseek-v2-lite-puffin --algo replicate --rows 2 \\\n"
    "      --cols 8 --slots 6 -o placement.json --peer l10.json --layer 10\n"
    "  moesim place TRACE@train --algo search --objective time-under-cap --gpu-power-cap 300 \\\n"
    "      --cost-model roofline --batch prefill --rows 2 --cols 8 --slots 6 -o capped.json\n"
    "  moesim place TRACE@train --algo search --pareto time,peak-power --cost-model roofline \\\n"
    "      --batch prefill --rows 2 --cols 8 --slots 6 -o front.json\n";

enum {
    O_LOADS = 256, O_ALGO, O_CLUSTER, O_ROWS, O_COLS, O_SLOTS, O_GROUPS, O_SHARED, O_SHARED_REPL, O_SHARED_LOAD, O_TOPK,
    O_REDUNDANT, O_SEED, O_TIME, O_FORMAT, O_SGLANG, O_PEER, O_LAYER, O_AXIS, O_HOTN, O_TAIL, O_COACTW,
    O_THREADS, O_PHASE, O_WINDOW, O_EXPERTS, O_QUIET, O_PROGRESS, O_NO_LP, O_SEARCH, O_PARETO, O_PARETO_N,
    O_PARETO_ALGOS
};

#define MAX_PARETO_ALGOS 32

/* The placement file of Pareto point k beside out: OUT minus ".json", then ".NN.json". */
static void pareto_path(const char *out, size_t k, char *buf, size_t len) {
    size_t n = strlen(out);
    if (n > 5 && strcmp(out + n - 5, ".json") == 0) n -= 5;
    snprintf(buf, len, "%.*s.%02zu.json", (int)n, out, k);
}

static json_t *metrics_json(const ms_search_metrics *m) {
    json_t *o = json_object();
    json_object_set_new(o, "layer_us_mean", json_real(m->layer_us_mean));
    json_object_set_new(o, "layer_us_p99", json_real(m->layer_us_p99));
    json_object_set_new(o, "peak_w", json_real(m->peak_w));
    json_object_set_new(o, "energy_per_token_j", json_real(m->energy_per_token_j));
    json_object_set_new(o, "energy_j", json_real(m->energy_j));
    json_object_set_new(o, "imbalance_mean", json_real(m->imbalance_mean));
    json_object_set_new(o, "throttled_us", json_real(m->throttled_us));
    json_object_set_new(o, "clock_min", json_real(m->clock_min));
    return o;
}

/* --pareto: every point's placement beside out, the front as JSON in out,
 * and a summary of the points on stdout. Returns the exit code. */
static int write_pareto(const char *cmd, const ms_pareto *pr, const ms_trace *t, const char *out, cli_format fmt) {
    ms_error err = {0};
    char path[1200];
    json_t *root = json_object(), *pts = json_array(), *axes = json_array(), *sk = json_array();
    for (uint32_t a = 0; a < pr->n_axes; a++) json_array_append_new(axes, json_string(ms_pareto_axis_name(pr->axes[a])));
    for (size_t i = 0; i < pr->n; i++) {
        const ms_pareto_point *x = &pr->pts[i];
        pareto_path(out, i, path, sizeof path);
        if (ms_placement_write_json(x->placement, path, &err) != MS_OK) {
            json_decref(root);
            json_decref(pts);
            json_decref(axes);
            json_decref(sk);
            return cli_fail(cmd, &err);
        }
        const char *base = strrchr(path, '/');
        json_t *o = metrics_json(&x->m);
        json_object_set_new(o, "label", json_string(x->label));
        json_object_set_new(o, "source", json_string(x->source));
        json_object_set_new(o, "algorithm", json_string(x->placement->algorithm));
        json_object_set_new(o, "front", json_boolean(x->front));
        json_object_set_new(o, "placement", json_string(base ? base + 1 : path));
        if (strcmp(x->source, "search") == 0) {
            json_t *w = json_array();
            for (int k = 0; k < 3; k++) json_array_append_new(w, json_real(x->mix[k]));
            json_object_set_new(o, "mix", w);
        }
        json_array_append_new(pts, o);
    }
    for (size_t i = 0; i < pr->n_skipped; i++) json_array_append_new(sk, json_string(pr->skipped[i]));
    json_t *meta = json_object();
    char dig[32];
    snprintf(dig, sizeof dig, "%016llx", (unsigned long long)t->digest);
    json_object_set_new(meta, "axes", axes);
    json_object_set_new(meta, "trace", json_string(t->label));
    json_object_set_new(meta, "trace_digest", json_string(dig));
    json_object_set_new(meta, "note", json_string("every point simulated on the training batches and priced by the "
                                                  "power model; front = not dominated on the axes"));
    json_object_set_new(root, "command", json_string("place"));
    json_object_set_new(root, "pareto", meta);
    json_object_set_new(root, "points", pts);
    json_object_set_new(root, "skipped", sk);
    ms_afile f;
    int rc = cli_open_output(cmd, out, &f);
    if (rc == 0) {
        if (json_dumpf(root, f.fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) != 0) {
            ms_afile_abort(&f);
            ms_error_set(&err, MS_E_IO, "could not write %s", out);
            rc = cli_fail(cmd, &err);
        } else {
            fputc('\n', f.fp);
            rc = cli_commit_output(cmd, &f);
        }
    }
    if (rc == 0 && (rc = cli_open_output(cmd, "-", &f)) == 0) {
        FILE *fp = f.fp;
        if (fmt == CLI_JSON) {
            json_dumpf(json_object_get(root, "points"), fp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
            fputc('\n', fp);
        } else if (fmt == CLI_CSV) {
            fputs("label,source,front,layer_us_mean,layer_us_p99,peak_w,energy_per_token_j,placement\n", fp);
            for (size_t i = 0; i < pr->n; i++) {
                const ms_pareto_point *x = &pr->pts[i];
                pareto_path(out, i, path, sizeof path);
                fprintf(fp, "\"%s\",%s,%d,%.10g,%.10g,%.10g,%.10g,%s\n", x->label, x->source, x->front,
                        x->m.layer_us_mean, x->m.layer_us_p99, x->m.peak_w, x->m.energy_per_token_j, path);
            }
        } else {
            fprintf(fp, "Pareto points on the training requests (axes:");
            for (uint32_t a = 0; a < pr->n_axes; a++) fprintf(fp, " %s", ms_pareto_axis_name(pr->axes[a]));
            fprintf(fp, "); * = on the front\n%-44s %12s %12s %12s %14s\n", "point", "layer us", "p99 us",
                    "peak kW", "mJ per token");
            for (size_t i = 0; i < pr->n; i++) {
                const ms_pareto_point *x = &pr->pts[i];
                fprintf(fp, "%c %-42s %12.2f %12.2f %12.4f %14.6f\n", x->front ? '*' : ' ', x->label,
                        x->m.layer_us_mean, x->m.layer_us_p99, x->m.peak_w / 1e3, x->m.energy_per_token_j * 1e3);
            }
            for (size_t i = 0; i < pr->n_skipped; i++) fprintf(fp, "skipped %s\n", pr->skipped[i]);
            pareto_path(out, 0, path, sizeof path);
            fprintf(fp, "front: %s; placements: %s ... (one per point)\n", out, path);
        }
        rc = cli_commit_output(cmd, &f);
    }
    json_decref(root);
    return rc;
}

static void summary_row(double mx, double mean, double lb, double *cols) {
    cols[0] = mx;
    cols[1] = mean;
    cols[2] = mx > 0 ? mean / mx : 1.0;
    cols[3] = lb;
}

static int write_summary(const ms_placement *p, const ms_loads *eff, cli_format fmt, FILE *fp) {
    uint32_t devs = ms_cluster_devices(&p->cluster);
    const ms_cluster *c = &p->cluster;
    double *rows = ms_alloc_array((size_t)4 * p->n_layers, sizeof(double), NULL);
    if (!rows) return 1;
    double sum_max = 0, sum_mean = 0, sum_lb = 0;
    for (uint32_t l = 0; l < p->n_layers; l++) {
        double tot = 0;
        for (uint32_t e = 0; e < eff->n_experts; e++) tot += eff->w[(size_t)l * eff->n_experts + e];
        double lb = p->layer_bound ? p->layer_bound[l] : NAN;
        summary_row(ms_placement_max_device_load(p, eff, l), tot / devs, lb, rows + 4 * l);
        sum_max += rows[4 * l];
        sum_mean += rows[4 * l + 1];
        sum_lb += lb;
    }
    double n = p->n_layers;
    if (fmt == CLI_JSON) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "algorithm", json_string(p->algorithm));
        json_object_set_new(o, "rows", json_integer(c->rows));
        json_object_set_new(o, "cols", json_integer(c->cols));
        json_object_set_new(o, "slots_per_device", json_integer(c->slots_per_device));
        json_object_set_new(o, "layers", json_integer(p->n_layers));
        json_object_set_new(o, "routed_experts", json_integer(p->n_routed));
        json_object_set_new(o, "shared_expert", json_boolean(p->has_shared));
        json_object_set_new(o, "max_load_mean", json_real(sum_max / n));
        json_object_set_new(o, "balancedness_mean", json_real(sum_max > 0 ? sum_mean / sum_max : 1.0));
        json_object_set_new(o, "lower_bound_mean", isfinite(sum_lb) ? json_real(sum_lb / n) : json_null());
        json_object_set_new(o, "objective", isfinite(p->objective) ? json_real(p->objective) : json_null());
        json_object_set_new(o, "runtime_s", json_real(p->runtime_s));
        for (uint32_t l = 0; l < p->n_layers; l++) {
            double *r = rows + 4 * l;
            json_array_append_new(arr, json_pack("{s:i, s:f, s:f, s:f, s:o}", "layer", (int)l, "max_load", r[0],
                                                 "mean_load", r[1], "balancedness", r[2], "lower_bound",
                                                 isfinite(r[3]) ? json_real(r[3]) : json_null()));
        }
        json_object_set_new(o, "per_layer", arr);
        json_dumpf(o, fp, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        fputc('\n', fp);
        json_decref(o);
    } else if (fmt == CLI_CSV) {
        fputs("layer,max_load,mean_load,balancedness,lower_bound\n", fp);
        for (uint32_t l = 0; l < p->n_layers; l++) {
            double *r = rows + 4 * l;
            fprintf(fp, "%u,%.10g,%.10g,%.10g,%.10g\n", l, r[0], r[1], r[2], r[3]);
        }
    } else {
        fprintf(fp, "placement: %s on %ux%u devices x %u slots (%u slots), %u routed experts%s, %u layers\n",
                p->algorithm, c->rows, c->cols, c->slots_per_device, p->n_phys, p->n_routed,
                p->has_shared ? " + shared" : "", p->n_layers);
        fprintf(fp, "%6s %14s %14s %13s %14s %9s\n", "layer", "max_load", "mean_load", "balancedness", "lower_bound",
                "max/bound");
        for (uint32_t l = 0; l < p->n_layers; l++) {
            double *r = rows + 4 * l;
            fprintf(fp, "%6u %14.6g %14.6g %13.4f %14.6g %9.4f\n", l, r[0], r[1], r[2], r[3], r[3] > 0 ? r[0] / r[3] : NAN);
        }
        fprintf(fp, "%6s %14.6g %14.6g %13.4f %14.6g %9.4f\n", "mean", sum_max / n, sum_mean / n,
                sum_max > 0 ? sum_mean / sum_max : 1.0, sum_lb / n, sum_lb > 0 ? sum_max / sum_lb : NAN);
        fprintf(fp, "runtime: %.3f ms\n", p->runtime_s * 1e3);
    }
    ms_free(rows);
    return 0;
}

int cmd_place(int argc, char **argv) {
    static const struct option longopts[] = {
        {"loads", required_argument, 0, O_LOADS},        {"algo", required_argument, 0, O_ALGO},
        {"cluster", required_argument, 0, O_CLUSTER},    {"rows", required_argument, 0, O_ROWS},          {"cols", required_argument, 0, O_COLS},
        {"slots", required_argument, 0, O_SLOTS},        {"groups", required_argument, 0, O_GROUPS},
        {"shared-expert", no_argument, 0, O_SHARED},     {"shared-replicas", required_argument, 0, O_SHARED_REPL},
        {"shared-load", required_argument, 0, O_SHARED_LOAD}, {"top-k", required_argument, 0, O_TOPK},
        {"redundant", required_argument, 0, O_REDUNDANT}, {"seed", required_argument, 0, O_SEED},
        {"time-limit", required_argument, 0, O_TIME},    {"format", required_argument, 0, O_FORMAT},
        {"sglang", required_argument, 0, O_SGLANG},      {"peer", required_argument, 0, O_PEER},
        {"layer", required_argument, 0, O_LAYER},        {"axis", required_argument, 0, O_AXIS},
        {"hot-n", required_argument, 0, O_HOTN},         {"tail-alpha", required_argument, 0, O_TAIL},
        {"coact-weight", required_argument, 0, O_COACTW}, {"threads", required_argument, 0, O_THREADS},
        {"phase", required_argument, 0, O_PHASE},        {"window", required_argument, 0, O_WINDOW},
        {"experts", required_argument, 0, O_EXPERTS},    {"quiet", no_argument, 0, O_QUIET},
        {"progress", no_argument, 0, O_PROGRESS},        {"no-lp-bound", no_argument, 0, O_NO_LP},
        {"help", no_argument, 0, 'h'},
        /* search options (moesim/opt.h), handled by ms_search_opts_set */
        {"init", required_argument, 0, O_SEARCH},         {"objective", required_argument, 0, O_SEARCH},
        {"iterations", required_argument, 0, O_SEARCH},   {"chains", required_argument, 0, O_SEARCH},
        {"traffic-weight", required_argument, 0, O_SEARCH}, {"min-windows", required_argument, 0, O_SEARCH},
        {"cost-model", required_argument, 0, O_SEARCH},   {"batch", required_argument, 0, O_SEARCH},
        {"batch-tokens", required_argument, 0, O_SEARCH}, {"decode-batch", required_argument, 0, O_SEARCH},
        {"dp", required_argument, 0, O_SEARCH},           {"route", required_argument, 0, O_SEARCH},
        {"row-local-slack", required_argument, 0, O_SEARCH}, {"capacity-factor", required_argument, 0, O_SEARCH},
        {"overflow", required_argument, 0, O_SEARCH},     {"origin-rows", required_argument, 0, O_SEARCH},
        {"mesh-table", required_argument, 0, O_SEARCH},   {"hw", required_argument, 0, O_SEARCH},
        {"model", required_argument, 0, O_SEARCH},        {"overlap", required_argument, 0, O_SEARCH},
        {"sim-seed", required_argument, 0, O_SEARCH},     {"energy", required_argument, 0, O_SEARCH},
        {"gpu-power-cap", required_argument, 0, O_SEARCH}, {"row-power-cap", required_argument, 0, O_SEARCH},
        {"cluster-power-cap", required_argument, 0, O_SEARCH}, {"mix", required_argument, 0, O_SEARCH},
        {"pareto", required_argument, 0, O_PARETO},       {"pareto-searches", required_argument, 0, O_PARETO_N},
        {"pareto-algos", required_argument, 0, O_PARETO_ALGOS},
        {0, 0, 0, 0}};
    const char *cmd = "place";
    ms_search_opts sopt;
    ms_search_opts_default(&sopt);
    bool have_search_opt = false;
    int li = -1;
    ms_place_opts o;
    ms_place_opts_default(&o);
    const char *loads_path = NULL, *outpath = NULL, *sglang = NULL, *peer = NULL;
    cli_format fmt = CLI_TABLE;
    uint32_t layer = UINT32_MAX, u32 = 0;
    bool have_rows = false, have_cols = false, have_slots = false, have_sr = false;
    cli_trace_opts to = {0};
    ms_pareto_opts pao;
    memset(&pao, 0, sizeof pao);
    bool pareto = false;
    char algo_buf[1024];
    const char *algo_list[MAX_PARETO_ALGOS + 1];
    ms_stats_opts so;
    ms_stats_opts_default(&so);
    ms_error err = {0};
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:h", longopts, &li)) != -1) {
        switch (ch) {
        case O_LOADS: loads_path = optarg; break;
        case O_ALGO: o.algo = optarg; break;
        case O_CLUSTER:
            if (cli_parse_cluster(cmd, optarg, &o.cluster)) return 2;
            have_rows = have_cols = have_slots = true;
            break;
        case O_ROWS: if (cli_parse_u32(cmd, "--rows", optarg, &o.cluster.rows)) return 2; have_rows = true; break;
        case O_COLS: if (cli_parse_u32(cmd, "--cols", optarg, &o.cluster.cols)) return 2; have_cols = true; break;
        case O_SLOTS:
            if (cli_parse_u32(cmd, "--slots", optarg, &o.cluster.slots_per_device)) return 2;
            have_slots = true;
            break;
        case O_GROUPS: if (cli_parse_u32(cmd, "--groups", optarg, &o.groups)) return 2; break;
        case O_SHARED: o.shared_expert = true; break;
        case O_SHARED_REPL:
            if (cli_parse_u32(cmd, "--shared-replicas", optarg, &o.shared_replicas)) return 2;
            if (o.shared_replicas == 0) return cli_usage(cmd, "--shared-replicas must be at least 1");
            have_sr = true;
            break;
        case O_SHARED_LOAD:
            if (cli_parse_double(cmd, "--shared-load", optarg, &o.shared_load)) return 2;
            if (o.shared_load < 0) return cli_usage(cmd, "--shared-load must be >= 0");
            break;
        case O_TOPK:
            if (cli_parse_u32(cmd, "--top-k", optarg, &o.top_k)) return 2;
            if (o.top_k == 0) return cli_usage(cmd, "--top-k must be at least 1");
            break;
        case O_REDUNDANT:
            if (cli_parse_u32(cmd, "--redundant", optarg, &o.redundant)) return 2;
            if (o.redundant == UINT32_MAX) return cli_usage(cmd, "--redundant %s is too large", optarg);
            break;
        case O_SEED: if (cli_parse_u64(cmd, "--seed", optarg, &o.seed)) return 2; break;
        case O_TIME:
            if (cli_parse_double(cmd, "--time-limit", optarg, &o.time_limit_s)) return 2;
            if (o.time_limit_s <= 0) return cli_usage(cmd, "--time-limit must be positive");
            break;
        case O_FORMAT: if (cli_parse_format(cmd, optarg, &fmt)) return 2; break;
        case 'o': outpath = optarg; break;
        case O_SGLANG: sglang = optarg; break;
        case O_PEER: peer = optarg; break;
        case O_LAYER: if (cli_parse_u32(cmd, "--layer", optarg, &layer)) return 2; break;
        case O_AXIS:
            if (strcmp(optarg, "row") == 0 || strcmp(optarg, "r") == 0) o.axis = 'r';
            else if (strcmp(optarg, "col") == 0 || strcmp(optarg, "c") == 0) o.axis = 'c';
            else return cli_usage(cmd, "--axis must be row or col, got '%s'", optarg);
            break;
        case O_HOTN: if (cli_parse_u32(cmd, "--hot-n", optarg, &o.hot_n)) return 2; break;
        case O_TAIL: if (cli_parse_double(cmd, "--tail-alpha", optarg, &o.tail_alpha)) return 2; break;
        case O_COACTW:
            if (cli_parse_double(cmd, "--coact-weight", optarg, &o.coact_weight)) return 2;
            if (o.coact_weight < 0) return cli_usage(cmd, "--coact-weight must be >= 0");
            break;
        case O_THREADS:
            if (cli_parse_u32(cmd, "--threads", optarg, &u32)) return 2;
            if (u32 > 4096) return cli_usage(cmd, "--threads %s is too large", optarg);
            o.threads = to.threads = so.threads = (int)u32;
            break;
        case O_PHASE:
            if (ms_phase_parse(optarg, &so.phase, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            break;
        case O_WINDOW: if (cli_parse_u32(cmd, "--window", optarg, &so.window)) return 2; break;
        case O_EXPERTS: if (cli_parse_u32(cmd, "--experts", optarg, &to.n_experts)) return 2; break;
        case O_QUIET: to.progress = -1; break;
        case O_PROGRESS: to.progress = 1; break;
        case O_NO_LP: o.lp_bound = false; break;
        case 'h': cli_print_help(usage_text); return 0;
        case O_PARETO:
            if (ms_pareto_axes_parse(optarg, pao.axes, &pao.n_axes, &err) != MS_OK) return cli_usage(cmd, "%s", err.msg);
            pareto = true;
            break;
        case O_PARETO_N:
            if (cli_parse_u32(cmd, "--pareto-searches", optarg, &pao.searches)) return 2;
            if (pao.searches < 2 || pao.searches > 64) return cli_usage(cmd, "--pareto-searches must be 2..64");
            break;
        case O_PARETO_ALGOS: {
            snprintf(algo_buf, sizeof algo_buf, "%s", optarg);
            size_t n = 0;
            char *save = NULL;
            for (char *tok = strtok_r(algo_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                bool ok = false;
                for (const char *const *a = ms_place_algorithms(); *a; a++) ok |= strcmp(*a, tok) == 0;
                if (!ok || strcmp(tok, "search") == 0)
                    return cli_usage(cmd, "--pareto-algos: unknown algorithm '%s' (see --help)", tok);
                if (n == MAX_PARETO_ALGOS) return cli_usage(cmd, "--pareto-algos: at most %d", MAX_PARETO_ALGOS);
                algo_list[n++] = tok;
            }
            algo_list[n] = NULL;
            pao.algos = algo_list;
            break;
        }
        case O_SEARCH:
            if (li < 0 || ms_search_opts_set(&sopt, longopts[li].name, optarg, &err) != MS_OK)
                return cli_usage(cmd, "%s", err.msg);
            have_search_opt = true;
            break;
        default: return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    int n_traces = argc - optind;
    if (loads_path && n_traces > 0) return cli_usage(cmd, "give either a TRACE or --loads, not both");
    if (!loads_path && n_traces == 0) return cli_usage(cmd, "no input: give a TRACE or --loads FILE.csv");
    if (!have_rows || !have_cols || !have_slots) return cli_usage(cmd, "--cluster RxCxS (or --rows, --cols and --slots) is required");
    if (have_sr && !o.shared_expert) return cli_usage(cmd, "--shared-replicas needs --shared-expert");
    bool known = false;
    for (const char *const *a = ms_place_algorithms(); *a; a++) known |= strcmp(*a, o.algo) == 0;
    bool search = strcmp(o.algo, "search") == 0;
    if (!known && !search) return cli_usage(cmd, "unknown algorithm '%s' (see --help)", o.algo);
    if (have_search_opt && !search) return cli_usage(cmd, "search options need --algo search");
    if (search && loads_path) return cli_usage(cmd, "--algo search simulates the trace: give a TRACE, not --loads");
    if (!peer && !search && layer != UINT32_MAX) return cli_usage(cmd, "--layer goes with --peer");
    if ((pareto || pao.searches || pao.algos) && !search) return cli_usage(cmd, "--pareto needs --algo search");
    if ((pao.searches || pao.algos) && !pareto) return cli_usage(cmd, "--pareto-searches and --pareto-algos go with --pareto");
    if (pareto && (!outpath || strcmp(outpath, "-") == 0))
        return cli_usage(cmd, "--pareto writes the front and one placement per point: give -o FILE.json");
    if (pareto && (sglang || peer)) return cli_usage(cmd, "--pareto writes moesim placements only (no --sglang, --peer)");

    ms_trace *trace = NULL;
    ms_stats *stats = NULL;
    ms_loads *loads = NULL, *eff = NULL;
    ms_placement *p = NULL;
    int rc = 0;
    ms_place_input in = {0};
    if (loads_path) {
        if (ms_loads_read_csv(loads_path, &loads, &err) != MS_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
    } else {
        if ((rc = cli_load_trace(cmd, argv + optind, n_traces, &to, &trace))) goto out;
        const char *sa = search ? sopt.init_algo : o.algo;
        so.coact = strcmp(sa, "coact") == 0 || strcmp(sa, "balance-coact") == 0;
        for (size_t i = 0; pareto && !so.coact && (pao.algos ? pao.algos[i] : ms_place_algorithms()[i]); i++) {
            const char *a = pao.algos ? pao.algos[i] : ms_place_algorithms()[i];
            so.coact = strcmp(a, "coact") == 0 || strcmp(a, "balance-coact") == 0;
        }
        if (ms_stats_compute(trace, &so, &stats, &err) != MS_OK || ms_stats_to_loads(stats, &loads, &err) != MS_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
        in.stats = stats;
        in.digest = trace->digest;
    }
    in.loads = loads;
    if (peer && layer == UINT32_MAX) {
        if (loads->n_layers != 1) {
            rc = cli_usage(cmd, "--peer writes one layer: give --layer L (the input has %u layers)", loads->n_layers);
            goto out;
        }
        layer = 0;
    }
    if (peer && layer >= loads->n_layers) {
        rc = cli_usage(cmd, "--layer %u out of range: the input has %u layers", layer, loads->n_layers);
        goto out;
    }
    if (search) {
        sopt.place = o;
        sopt.seed = o.seed;
        sopt.time_limit_s = o.time_limit_s;
        sopt.threads = sopt.sim.threads = o.threads;
        if (layer != UINT32_MAX) sopt.sim.layer = layer;
    }
    if (pareto) {
        ms_pareto *pr = NULL;
        if (ms_pareto_run(trace, &in, &sopt, &pao, &pr, &err) != MS_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
        rc = write_pareto(cmd, pr, trace, outpath, fmt);
        ms_pareto_free(pr);
        goto out;
    }
    if ((search ? ms_search_run(trace, &in, &sopt, &p, &err) : ms_place_run(&in, &o, &p, &err)) != MS_OK ||
        ms_place_effective_loads(&in, &o, &eff, &err) != MS_OK) {
        rc = cli_fail(cmd, &err);
        goto out;
    }
    if (outpath && ms_placement_write_json(p, outpath, &err) != MS_OK) {
        rc = cli_fail(cmd, &err);
        goto out;
    }
    if (sglang && ms_placement_write_sglang(p, sglang, &err) != MS_OK) {
        rc = cli_fail(cmd, &err);
        goto out;
    }
    if (peer && ms_placement_write_peer(p, layer, peer, &err) != MS_OK) {
        rc = cli_fail(cmd, &err);
        goto out;
    }
    ms_afile f;
    if (outpath && strcmp(outpath, "-") == 0) goto out; /* the placement went to stdout */
    if ((rc = cli_open_output(cmd, "-", &f))) goto out;
    if (write_summary(p, eff, fmt, f.fp)) {
        ms_afile_abort(&f);
        err.status = MS_E_NOMEM;
        snprintf(err.msg, sizeof err.msg, "out of memory");
        rc = cli_fail(cmd, &err);
        goto out;
    }
    rc = cli_commit_output(cmd, &f);
out:
    ms_placement_free(p);
    ms_loads_free(eff);
    ms_loads_free(loads);
    ms_stats_free(stats);
    ms_trace_free(trace);
    return rc;
}
