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
    "--threads, --quiet, --progress, --format table|json|csv, -o FILE.\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "example:\n"
    "  moesim compare TRACE --placement eplb.json --placement smart.json \\\n"
    "      --route round-robin,least-loaded --cost-model roofline --batch prefill\n";

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    sim_cli o;
    int rc = sim_cli_parse(cmd, usage_text, argc, argv, &o, true);
    if (rc >= 0) return rc;
    if (o.details) return cli_usage(cmd, "--details is for moesim simulate");
    double t0 = ms_now();
    sim_inputs in;
    rc = sim_cli_load(cmd, &o, &in);
    if (rc) {
        sim_inputs_free(&in);
        return rc;
    }
    int nrun = o.n_placements * o.n_routes;
    ms_error err = {0};
    ms_sim_result **res = ms_calloc_array((size_t)nrun, sizeof *res, &err);
    if (!res) {
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
            so.keep_records = false;
            if (ms_sim_run(in.trace, in.plan, in.pl[pi], &so, NULL, &res[pi * o.n_routes + ri], &err) != MS_OK) {
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
            if (o.fmt == CLI_JSON) {
                json_t *doc = json_object();
                json_object_set_new(doc, "command", json_string("compare"));
                json_object_set_new(doc, "trace", sim_cli_trace_json(&in));
                json_object_set_new(doc, "options", sim_cli_options_json(&o, &in));
                json_t *runs = json_array();
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        json_t *r = json_object();
                        json_object_set_new(r, "placement", json_string(o.placements[pi]));
                        json_object_set_new(r, "algorithm", json_string(in.pl[pi]->algorithm));
                        json_object_set_new(r, "route", json_string(ms_route_name(o.routes[ri])));
                        json_object_set_new(r, "summary",
                                            ms_sim_summary_json(&res[pi * o.n_routes + ri]->summary, o.so.cost_model));
                        json_array_append_new(runs, r);
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
                            "inter_row_bytes\n");
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        const ms_sim_summary *s = &res[pi * o.n_routes + ri]->summary;
                        fprintf(fp,
                                "%s,%s,%s,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,"
                                "%llu,%llu,%.17g,%.17g\n",
                                o.placements[pi], in.pl[pi]->algorithm, ms_route_name(o.routes[ri]),
                                s->imbalance.mean, s->imbalance.p50, s->imbalance.p95, s->imbalance.p99,
                                s->imbalance.max, s->layer_us.mean, s->layer_us.p50, s->layer_us.p95,
                                s->layer_us.p99, s->layer_us.max, s->batch_us.p99, s->tokens_per_second,
                                (unsigned long long)s->dropped, (unsigned long long)s->rerouted, s->intra_bytes,
                                s->inter_bytes);
                    }
            } else {
                fprintf(fp, "trace %s: %llu batches (%s), cost model %s\n\n", in.trace->label,
                        (unsigned long long)in.plan->n_batches, ms_batch_mode_name(o.bo.mode),
                        ms_cost_model_name(o.so.cost_model));
                fprintf(fp, "%-28s %-18s %9s %9s %11s %11s %11s %12s %9s %9s %12s\n", "placement", "route", "imb mean",
                        "imb p99", "layer mean", "layer p95", "layer p99", "tokens/s", "dropped", "rerouted",
                        "inter bytes");
                for (int pi = 0; pi < o.n_placements; pi++)
                    for (int ri = 0; ri < o.n_routes; ri++) {
                        const ms_sim_summary *s = &res[pi * o.n_routes + ri]->summary;
                        const char *name = o.placements[pi];
                        size_t n = strlen(name);
                        if (n > 28) name += n - 28;
                        fprintf(fp, "%-28s %-18s %9.4f %9.4f %11.2f %11.2f %11.2f %12.1f %9llu %9llu %12.4g\n", name,
                                ms_route_name(o.routes[ri]), s->imbalance.mean, s->imbalance.p99, s->layer_us.mean,
                                s->layer_us.p95, s->layer_us.p99, s->tokens_per_second,
                                (unsigned long long)s->dropped, (unsigned long long)s->rerouted, s->inter_bytes);
                    }
                fprintf(fp, "\nload %.3f s, eval %.3f s\n", in.load_seconds, eval_s);
            }
            rc = cli_commit_output(cmd, &f);
        }
    }
    for (int i = 0; i < nrun; i++) ms_sim_result_free(res[i]);
    ms_free(res);
    sim_inputs_free(&in);
    return rc;
}
