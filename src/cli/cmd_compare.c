/* cmd_compare.c - moesim compare: several placements x routing policies over
 * the very same batches, side by side. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sim_cli.h"
#include "moesim/sim.h"

static const char *usage_text =
    "usage: moesim compare TRACE --placement A [--placement B ...] [--route R1,R2,...] [options]\n"
    "\n"
    "Runs every placement with every routing policy over the very same batches (one batch\n"
    "plan, one seed) and prints one line per (placement, route): imbalance mean / p99 (max\n"
    "device load / mean device load per (batch, layer)), layer time mean / p95 / p99, batch\n"
    "time p99, tokens/s, dropped and rerouted assignments, bytes between rows.\n"
    "\n"
    "  --placement FILE    repeat for each placement (at most 32); all must have the same\n"
    "                      number of devices\n"
    "  --route LIST        comma-separated and/or repeated (at most 8): split, round-robin,\n"
    "                      random, least-loaded, row-local, balanced-replicas (default)\n"
    "  --capacity-factor F applies to every route; default per route (2 for\n"
    "                      balanced-replicas, none for the others)\n"
    "\n"
    "Every other option is simulate's (see moesim simulate --help): --cost-model, --batch,\n"
    "--batch-tokens, --decode-batch, --dp, --overflow, --origin-rows, --mesh-table, --hw,\n"
    "--model, --overlap, --layer, --row-local-slack, --cluster, --experts, --seed,\n"
    "--threads, --quiet, --progress, --format table|json|csv, -o FILE, and the power caps\n"
    "--gpu-power-cap W|none (default: the energy preset's TDP), --row-power-cap KW,\n"
    "--cluster-power-cap KW, --energy NAME (throttled time and clocks then join every line).\n"
    "\n"
    "  --details           json: every run also carries its per-(batch, layer) records with\n"
    "                      per-device load, tokens, busy and idle time, as simulate --details\n"
    "                      writes them (moesim report draws CDFs and worst-batch heatmaps from\n"
    "                      them); memory and output grow with runs x records x devices\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "example:\n"
    "  moesim compare TRACE --placement eplb.json --placement smart.json \\\n"
    "      --route round-robin,least-loaded --cost-model roofline --batch prefill\n";

/* One run's JSON: placement file, algorithm, grid, route and summary. */
static json_t *run_json(const sim_cli *o, const sim_inputs *in, int pi, int ri, const ms_sim_result *res) {
    json_t *r = json_object();
    json_object_set_new(r, "placement", json_string(o->placements[pi]));
    json_object_set_new(r, "algorithm", json_string(in->pl[pi]->algorithm));
    json_object_set_new(r, "cluster", sim_cli_cluster_json(in->pl[pi]));
    json_object_set_new(r, "route", json_string(ms_route_name(o->routes[ri])));
    json_t *sum = ms_sim_summary_json(&res->summary, o->so.cost_model);
    json_t *clocks = sim_cli_clocks_json(res);
    if (clocks) json_object_set_new(sum, "device_clock", clocks);
    json_object_set_new(r, "summary", sum);
    return r;
}

static void dump_line(FILE *fp, const char *indent, const char *key, json_t *v, const char *sep) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(v);
    fprintf(fp, "%s%s%s%s\n", indent, key, s ? s : "null", sep);
    free(s);
}

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    sim_cli o;
    int rc = sim_cli_parse(cmd, usage_text, argc, argv, &o, true);
    if (rc >= 0) return rc;
    if (o.details && o.fmt != CLI_JSON) return cli_usage(cmd, "--details needs --format json");
    double t0 = ms_now();
    sim_inputs in;
    rc = sim_cli_load(cmd, &o, &in);
    if (!rc) rc = sim_cli_caps(cmd, &o, &in, NULL, NULL);
    if (rc) {
        sim_inputs_free(&in);
        return rc;
    }
    int nrun = o.n_placements * o.n_routes;
    ms_error err = {0};
    ms_sim_result **res = ms_calloc_array((size_t)nrun, sizeof *res, &err);
    sim_details *det = o.details ? ms_calloc_array((size_t)nrun, sizeof *det, &err) : NULL;
    if (!res || (o.details && !det)) {
        ms_free(res);
        sim_inputs_free(&in);
        return cli_fail(cmd, &err);
    }
    rc = 0;
    double cf_given = o.so.capacity_factor;
    for (int pi = 0; pi < o.n_placements && !rc; pi++)
        for (int ri = 0; ri < o.n_routes && !rc; ri++) {
            ms_sim_opts so = o.so;
            so.route = o.routes[ri];
            so.capacity_factor = cf_given;
            so.keep_records = o.details;
            ms_sim_hooks hooks = {0};
            if (o.details && (rc = sim_details_init(cmd, &o, &in, in.pl[pi], &det[pi * o.n_routes + ri], &hooks)))
                break;
            if (ms_sim_run(in.trace, in.plan, in.pl[pi], &so, o.details ? &hooks : NULL, &res[pi * o.n_routes + ri],
                           &err) != MS_OK) {
                ms_error_prefix(&err, o.placements[pi]);
                rc = cli_fail(cmd, &err);
            }
        }
    double eval_s = ms_now() - t0 - in.load_seconds;
    if (!rc) {
        ms_afile f;
        rc = cli_open_output(cmd, o.out, &f);
        if (!rc) {
            FILE *fp = f.fp;
            if (o.fmt == CLI_JSON && o.details) {
                /* streamed: one record per line (a pretty-printed document would
                 * put every per-device number on a line of its own) */
                fprintf(fp, "{\n  \"command\": \"compare\",\n");
                dump_line(fp, "  ", "\"trace\": ", sim_cli_trace_json(&in), ",");
                dump_line(fp, "  ", "\"options\": ", sim_cli_options_json(&o, &in), ",");
                fprintf(fp, "  \"runs\": [\n");
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        int k = pi * o.n_routes + ri;
                        json_t *r = run_json(&o, &in, pi, ri, res[k]);
                        char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
                        json_decref(r);
                        size_t n = s ? strlen(s) : 0;
                        if (n < 2) { /* out of memory: "{}" cannot be opened up */
                            free(s);
                            s = NULL;
                        }
                        fprintf(fp, "    %.*s,\"records\": [\n", s ? (int)(n - 1) : 1, s ? s : "{");
                        free(s);
                        sim_details_write(fp, res[k], &det[k], "      ");
                        fprintf(fp, "    ]}%s\n", k + 1 < nrun ? "," : "");
                    }
                fprintf(fp, "  ],\n  \"load_seconds\": %.17g,\n  \"eval_seconds\": %.17g\n}\n", in.load_seconds,
                        eval_s);
            } else if (o.fmt == CLI_JSON) {
                json_t *doc = json_object();
                json_object_set_new(doc, "command", json_string("compare"));
                json_object_set_new(doc, "trace", sim_cli_trace_json(&in));
                json_object_set_new(doc, "options", sim_cli_options_json(&o, &in));
                json_t *runs = json_array();
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        json_array_append_new(runs, run_json(&o, &in, pi, ri, res[pi * o.n_routes + ri]));
                    }
                json_object_set_new(doc, "runs", runs);
                json_object_set_new(doc, "load_seconds", json_real(in.load_seconds));
                json_object_set_new(doc, "eval_seconds", json_real(eval_s));
                char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
                json_decref(doc);
                if (s) fprintf(fp, "%s\n", s);
                free(s);
            } else if (o.fmt == CLI_CSV) {
                fprintf(fp, "placement,algorithm,route,imbalance_mean,imbalance_p50,imbalance_p95,imbalance_p99,"
                            "imbalance_max,layer_us_mean,layer_us_p50,layer_us_p95,layer_us_p99,layer_us_max,"
                            "batch_us_p99,tokens_per_second,dropped_tokens,rerouted_tokens,intra_row_bytes,"
                            "inter_row_bytes,throttled_us,throttled_share,clock_mean,clock_min,cap_unmet\n");
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        const ms_sim_summary *s = &res[pi * o.n_routes + ri]->summary;
                        fprintf(fp,
                                "%s,%s,%s,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,"
                                "%llu,%llu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%llu\n",
                                o.placements[pi], in.pl[pi]->algorithm, ms_route_name(o.routes[ri]),
                                s->imbalance.mean, s->imbalance.p50, s->imbalance.p95, s->imbalance.p99,
                                s->imbalance.max, s->layer_us.mean, s->layer_us.p50, s->layer_us.p95,
                                s->layer_us.p99, s->layer_us.max, s->batch_us.p99, s->tokens_per_second,
                                (unsigned long long)s->dropped, (unsigned long long)s->rerouted, s->intra_bytes,
                                s->inter_bytes, s->throttled_us, s->throttled_share, s->clock_mean, s->clock_min,
                                (unsigned long long)s->cap_unmet);
                    }
            } else {
                fprintf(fp, "trace %s: %llu batches (%s), cost model %s\n", in.trace->label,
                        (unsigned long long)in.plan->n_batches, ms_batch_mode_name(o.bo.mode),
                        ms_cost_model_name(o.so.cost_model));
                bool thr = o.so.throttle != NULL;
                if (o.so.cost_model == MS_COST_ROOFLINE) {
                    char caps[256];
                    sim_cli_caps_text(&in, caps, sizeof caps);
                    fprintf(fp, "power caps %s\n", caps);
                }
                fprintf(fp, "\n");
                fprintf(fp, "%-28s %-18s %9s %9s %11s %11s %11s %12s %9s %9s %12s", "placement", "route", "imb mean",
                        "imb p99", "layer mean", "layer p95", "layer p99", "tokens/s", "dropped", "rerouted",
                        "inter bytes");
                if (thr) fprintf(fp, " %11s %9s %9s %9s", "throttled", "clk mean", "clk min", "unmet");
                fprintf(fp, "\n");
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        const ms_sim_summary *s = &res[pi * o.n_routes + ri]->summary;
                        const char *name = o.placements[pi];
                        size_t n = strlen(name);
                        if (n > 28) name += n - 28;
                        fprintf(fp, "%-28s %-18s %9.4f %9.4f %11.2f %11.2f %11.2f %12.1f %9llu %9llu %12.4g", name,
                                ms_route_name(o.routes[ri]), s->imbalance.mean, s->imbalance.p99, s->layer_us.mean,
                                s->layer_us.p95, s->layer_us.p99, s->tokens_per_second,
                                (unsigned long long)s->dropped, (unsigned long long)s->rerouted, s->inter_bytes);
                        if (thr)
                            fprintf(fp, " %11.2f %9.4f %9.4f %9llu", s->throttled_us, s->clock_mean, s->clock_min,
                                    (unsigned long long)s->cap_unmet);
                        fprintf(fp, "\n");
                    }
                fprintf(fp, "\nload %.3f s, eval %.3f s\n", in.load_seconds, eval_s);
            }
            rc = cli_commit_output(cmd, &f);
        }
    }
    for (int i = 0; i < nrun; i++) {
        ms_sim_result_free(res[i]);
        if (det) sim_details_free(&det[i]);
    }
    ms_free(res);
    ms_free(det);
    sim_inputs_free(&in);
    return rc;
}
