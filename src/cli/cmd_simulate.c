/* cmd_simulate.c - moesim simulate: replay a trace over a placement and report
 * what each (batch, layer) costs. Also the option parsing shared with
 * moesim compare (sim_cli.h). */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/sim_cli.h"
#include "moesim/place.h"
#include "moesim/sim.h"
#include "moesim/trace.h"

static const char *usage_text =
    "usage: moesim simulate TRACE --placement FILE [options]\n"
    "\n"
    "Replays a routing trace as a serving engine would batch it, routes every (token,\n"
    "layer, chosen expert) to one replica of that expert as the placement holds them,\n"
    "applies a per-slot capacity, and prices every (batch, layer) with a cost model.\n"
    "Imbalance = max device load / mean device load of one (batch, layer), load counted\n"
    "in token-expert assignments. Percentiles are nearest-rank (pX = the ceil(X/100 n)-th\n"
    "smallest). docs/MODEL.md explains every formula and every preset figure.\n"
    "\n"
    "inputs:\n"
    "  TRACE               directory of per-request .npz files (or .npz files), or one\n"
    "                      .jsonl file in moe-balance's format (layer, batch_id,\n"
    "                      topk_experts, optional origin_rows, topk_weights, request_id)\n"
    "  --placement FILE    moesim placement JSON, SGLang's expert-location file or\n"
    "                      moe-balance's placement.json (one layer: used for every layer)\n"
    "  --cluster RxCxS     the grid (rows x cols x slots per device) for files that do not\n"
    "                      carry it: moe-balance's file is otherwise read as the smallest grid\n"
    "                      holding its rows, cols and slots; moesim's JSON must match it\n"
    "  --experts N         routed experts per layer (default: from the trace)\n"
    "\n"
    "batches:\n"
    "  --batch MODE        per-request (default): one batch per request, all its rows;\n"
    "                      prefill: prompt rows of requests in a seeded random order,\n"
    "                      packed until a batch holds >= --batch-tokens (requests never split);\n"
    "                      decode: --decode-batch requests at a time, one output row of each\n"
    "                      per step, a finished request replaced by the next (continuous\n"
    "                      batching)\n"
    "                      mixed: serving steps of continuous batching: the whole prompts of\n"
    "                      the requests admitted in the step (while fewer than --decode-batch\n"
    "                      run and the step's prompts stay within --batch-tokens) plus the\n"
    "                      next output row of every running request\n"
    "  --batch-tokens N    prefill token budget (default 4096)\n"
    "  --decode-batch B    concurrent decode requests (default 64)\n"
    "  --order O           request arrival order for prefill, decode and mixed: seeded\n"
    "                      (default: shuffled with --seed) or trace (the files' order)\n"
    "  --dp POLICY         data-parallel rank of each request (where its tokens start):\n"
    "                      round-robin (default) or least-loaded\n"
    "\n"
    "routing:\n"
    "  --route POLICY      replica choice among an expert's slots:\n"
    "                      balanced-replicas (default): moe-balance's: the first replica\n"
    "                        below capacity, in the placement's order; all full -> a\n"
    "                        per-expert round-robin over its replicas (nothing dropped)\n"
    "                      split: 1/replicas of the token to every replica (EPLB's own\n"
    "                        assumption; roofline only; capacity does not apply)\n"
    "                      round-robin: per-expert counter, reset every batch\n"
    "                      random: uniform replica (--seed)\n"
    "                      least-loaded: the replica whose device has the fewest\n"
    "                        assignments so far in this batch (ties: placement order)\n"
    "                      row-local: the least-loaded replica in the token's own row,\n"
    "                        unless its device load > (1 + slack) x the least-loaded\n"
    "                        replica's + 1; then that one\n"
    "  --row-local-slack S row-local spill threshold (default 0.25)\n"
    "  --capacity-factor F a slot takes at most max(1, floor(F x assignments of the batch /\n"
    "                      instances)); default 2 for balanced-replicas, none otherwise;\n"
    "                      0 = no capacity\n"
    "  --overflow POLICY   when every replica of an expert is full: accept (default: the\n"
    "                      slot takes it anyway), drop (counted), reroute: the token's\n"
    "                      next-ranked expert when the trace carries ranks, else the\n"
    "                      least-filled instance below capacity on the devices of the full\n"
    "                      expert's replicas, else anywhere (never the shared expert or an\n"
    "                      expert the token already uses); nothing left -> dropped\n"
    "\n"
    "cost model:\n"
    "  --cost-model M      mesh (default): moe-balance's calibrated model, reproduced\n"
    "                        exactly: T_dispatch = A + B E_col + C avg_hop + D max_hop,\n"
    "                        T_combine = A + B U + C avg_hop + D max_hop, compute = 118 us x\n"
    "                        ceil(tokens / 32) per expert instance, layer = max dispatch +\n"
    "                        max compute + max combine\n"
    "                      roofline: expert compute as a roofline of FLOPs and HBM bytes,\n"
    "                        alpha-beta all-to-all per link class (NVLink in a row, network\n"
    "                        between rows), attention and shared expert per token\n"
    "  --origin-rows MODE  mesh: where tokens start: average-rows (default; evaluate with\n"
    "                      every token in row r, for each r, and average), round-robin\n"
    "                      (token i in row i mod rows), random (--seed), dp (the row of\n"
    "                      the request's data-parallel rank), trace (JSONL origin_rows)\n"
    "  --mesh-table T      reference (default; as published) or corrected (the best-case\n"
    "                      E_col=2 value 96.183, a copying slip, interpolated)\n"
    "  --hw PRESET         roofline hardware (default h100-sxm); a name from presets/hw or a\n"
    "                      .json path; a preset from moesim calibrate (e.g. local) carries an\n"
    "                      efficiency curve: each expert instance then runs at the measured\n"
    "                      efficiency for its token count instead of the flat MFU\n"
    "  --model PRESET      model (default: guessed from the trace's experts and top-k); a\n"
    "                      name from presets/model or a .json path\n"
    "  --overlap MODE      roofline: none (default) or two-micro-batch (the batch split in\n"
    "                      two halves whose communication overlaps the other's compute)\n"
    "  --layer N           simulate this layer only (default: every layer)\n"
    "\n"
    "power caps (roofline): a device whose power would exceed its limit lowers its clock f:\n"
    "its dense and expert compute take time / f, P(f) = idle + compute W x f^alpha + HBM W x f\n"
    "(docs/MODEL.md, 'Power caps'); the records and summary report the throttled time\n"
    "(layer time under caps - at full clock), the clocks and the caps not met\n"
    "  --gpu-power-cap W   per-GPU limit in watts, or none (default: the energy preset's TDP,\n"
    "                      which the roofline's rates never exceed; none = full clock)\n"
    "  --row-power-cap KW  budget of each row (node) of GPUs in kW, or none (default)\n"
    "  --cluster-power-cap KW  budget of all GPUs in kW, or none (default): when exceeded,\n"
    "                      every GPU of the row / cluster is held to one clock ceiling\n"
    "  --energy NAME       energy coefficients (presets/energy-NAME.json or a path; default:\n"
    "                      the --hw preset's); alpha = freq_exponent, the lowest clock min_clock\n"
    "\n"
    "other:\n"
    "  --seed N            seed for request order, random routing, random rows (default 0)\n"
    "  --threads N         worker threads (default: all cores); results do not depend on it\n"
    "  --quiet / --progress   progress bar never / always\n"
    "  --format F          table (default: summary), json (summary; with --details every\n"
    "                      (batch, layer) with per-device load, tokens, busy and idle time)\n"
    "                      or csv (one line per (batch, layer))\n"
    "  --details           include the per-(batch, layer) records in json output (compare\n"
    "                      --details does the same for every run)\n"
    "  -o FILE             write there (atomically) instead of stdout\n"
    "\n"
    "exit status: 0 success, 2 bad input or usage, 1 internal error\n"
    "\n"
    "examples:\n"
    "  moesim simulate ../shared/data/deepseek-v2-lite-puffin --placement peer.json \\\n"
    "      --cost-model mesh --batch per-request --route balanced-replicas \\\n"
    "      --capacity-factor 2 --origin-rows average-rows --layer 10 --format json\n"
    "  moesim simulate TRACE --placement p.json --cost-model roofline --batch prefill \\\n"
    "      --batch-tokens 4096 --route least-loaded --hw h100-sxm --overlap two-micro-batch\n"
    "  moesim simulate TRACE --placement p.json --cost-model roofline --batch prefill \\\n"
    "      --gpu-power-cap 350 --cluster-power-cap 4.5 --format json\n";

enum {
    O_PLACEMENT = 256, O_CLUSTER, O_EXPERTS, O_BATCH, O_BATCH_TOKENS, O_DECODE_BATCH, O_DP, O_ROUTE, O_SLACK, O_CF,
    O_OVERFLOW, O_COST, O_ORIGIN, O_TABLE, O_HW, O_MODEL, O_OVERLAP, O_LAYER, O_SEED, O_THREADS, O_QUIET,
    O_PROGRESS, O_FORMAT, O_DETAILS, O_ORDER, O_GPU_CAP, O_ROW_CAP, O_CLUSTER_CAP, O_ENERGY
};

/* W (kw false) or kW (kw true) > 0, or none (INFINITY); returns 0 or 2 */
static int parse_cap(const char *cmd, const char *opt, const char *s, bool kw, double *out) {
    if (strcmp(s, "none") == 0) {
        *out = INFINITY;
        return 0;
    }
    double v;
    if (cli_parse_double(cmd, opt, s, &v)) return 2;
    if (!(v > 0)) return cli_usage(cmd, "%s must be a positive number of %s or none, got '%s'", opt, kw ? "kW" : "W", s);
    *out = kw ? v * 1e3 : v;
    return 0;
}

static int parse_enum(const char *cmd, ms_status st, const ms_error *err) {
    if (st == MS_OK) return 0;
    return cli_usage(cmd, "%s", err->msg);
}

int sim_cli_parse(const char *cmd, const char *usage, int argc, char **argv, sim_cli *o, bool multi) {
    return sim_cli_parse_ext(cmd, usage, argc, argv, o, multi, NULL);
}

int sim_cli_parse_ext(const char *cmd, const char *usage, int argc, char **argv, sim_cli *o, bool multi,
                      const sim_cli_extra *extra) {
    memset(o, 0, sizeof *o);
    ms_batch_opts_default(&o->bo);
    ms_sim_opts_default(&o->so);
    ms_power_cap_none(&o->cap);
    o->cap.gpu_w = NAN;
    o->fmt = CLI_TABLE;
    static const struct option lo[] = {
        {"placement", required_argument, 0, O_PLACEMENT}, {"cluster", required_argument, 0, O_CLUSTER},
        {"experts", required_argument, 0, O_EXPERTS},     {"batch", required_argument, 0, O_BATCH},
        {"batch-tokens", required_argument, 0, O_BATCH_TOKENS},
        {"decode-batch", required_argument, 0, O_DECODE_BATCH},
        {"dp", required_argument, 0, O_DP},               {"route", required_argument, 0, O_ROUTE},
        {"row-local-slack", required_argument, 0, O_SLACK},
        {"capacity-factor", required_argument, 0, O_CF},  {"overflow", required_argument, 0, O_OVERFLOW},
        {"cost-model", required_argument, 0, O_COST},     {"origin-rows", required_argument, 0, O_ORIGIN},
        {"mesh-table", required_argument, 0, O_TABLE},    {"hw", required_argument, 0, O_HW},
        {"model", required_argument, 0, O_MODEL},         {"overlap", required_argument, 0, O_OVERLAP},
        {"layer", required_argument, 0, O_LAYER},         {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS},     {"quiet", no_argument, 0, O_QUIET},
        {"progress", no_argument, 0, O_PROGRESS},         {"format", required_argument, 0, O_FORMAT},
        {"details", no_argument, 0, O_DETAILS},           {"output", required_argument, 0, 'o'},
        {"order", required_argument, 0, O_ORDER},
        {"gpu-power-cap", required_argument, 0, O_GPU_CAP}, {"row-power-cap", required_argument, 0, O_ROW_CAP},
        {"cluster-power-cap", required_argument, 0, O_CLUSTER_CAP}, {"energy", required_argument, 0, O_ENERGY},
        {"help", no_argument, 0, 'h'},                    {0, 0, 0, 0}};
    enum { N_LO = sizeof lo / sizeof lo[0] - 1, MAX_EXTRA = 48 };
    struct option all[N_LO + MAX_EXTRA + 1];
    memcpy(all, lo, sizeof lo);
    size_t n_all = N_LO;
    for (size_t i = 0; extra && extra->opts && extra->opts[i].name; i++) {
        if (i >= MAX_EXTRA) return cli_usage(cmd, "internal: too many options");
        all[n_all++] = extra->opts[i];
    }
    memset(&all[n_all], 0, sizeof all[n_all]);
    optind = 1;
    opterr = 0;
    int ch;
    ms_error err = {0};
    uint32_t u32;
    uint64_t u64;
    while ((ch = getopt_long(argc, argv, ":o:h", all, NULL)) != -1) {
        if (ch >= SIM_CLI_EXTRA_BASE && extra) {
            int rc = extra->handle(extra->ctx, ch, optarg);
            if (rc) return rc;
            continue;
        }
        switch (ch) {
        case 'h': cli_print_help(usage); return 0;
        case 'o': o->out = optarg; break;
        case O_PLACEMENT:
            if (o->n_placements >= (multi ? SIM_CLI_MAX_PLACEMENTS : 1))
                return cli_usage(cmd, multi ? "at most %d placements" : "--placement given twice (at most %d)",
                                 multi ? SIM_CLI_MAX_PLACEMENTS : 1);
            o->placements[o->n_placements++] = optarg;
            break;
        case O_CLUSTER: {
            if (cli_parse_cluster(cmd, optarg, &o->cluster)) return 2;
            break;
        }
        case O_EXPERTS:
            if (cli_parse_u32(cmd, "--experts", optarg, &o->topts.n_experts)) return 2;
            break;
        case O_BATCH:
            if (parse_enum(cmd, ms_batch_mode_parse(optarg, &o->bo.mode, &err), &err)) return 2;
            break;
        case O_BATCH_TOKENS:
            if (cli_parse_u32(cmd, "--batch-tokens", optarg, &o->bo.batch_tokens)) return 2;
            if (!o->bo.batch_tokens) return cli_usage(cmd, "--batch-tokens must be positive");
            break;
        case O_DECODE_BATCH:
            if (cli_parse_u32(cmd, "--decode-batch", optarg, &o->bo.decode_batch)) return 2;
            if (!o->bo.decode_batch) return cli_usage(cmd, "--decode-batch must be positive");
            break;
        case O_DP:
            if (parse_enum(cmd, ms_dp_parse(optarg, &o->bo.dp, &err), &err)) return 2;
            break;
        case O_ROUTE: {
            /* compare: a comma-separated list, or the option repeated */
            char buf[256];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *save = NULL;
            for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->n_routes >= (multi ? SIM_CLI_MAX_ROUTES : 1))
                    return cli_usage(cmd, multi ? "at most %d routes" : "one --route (at most %d)",
                                     multi ? SIM_CLI_MAX_ROUTES : 1);
                if (parse_enum(cmd, ms_route_parse(tok, &o->routes[o->n_routes], &err), &err)) return 2;
                o->n_routes++;
            }
            break;
        }
        case O_SLACK:
            if (cli_parse_double(cmd, "--row-local-slack", optarg, &o->so.row_local_slack)) return 2;
            if (o->so.row_local_slack < 0) return cli_usage(cmd, "--row-local-slack must be >= 0");
            break;
        case O_CF:
            if (cli_parse_double(cmd, "--capacity-factor", optarg, &o->so.capacity_factor)) return 2;
            if (o->so.capacity_factor < 0) return cli_usage(cmd, "--capacity-factor must be >= 0");
            break;
        case O_OVERFLOW:
            if (parse_enum(cmd, ms_overflow_parse(optarg, &o->so.overflow, &err), &err)) return 2;
            break;
        case O_COST:
            if (parse_enum(cmd, ms_cost_model_parse(optarg, &o->so.cost_model, &err), &err)) return 2;
            break;
        case O_ORIGIN:
            if (parse_enum(cmd, ms_origin_parse(optarg, &o->so.origin, &err), &err)) return 2;
            o->origin_set = true;
            break;
        case O_TABLE:
            if (parse_enum(cmd, ms_mesh_table_parse(optarg, &o->so.mesh_table, &err), &err)) return 2;
            break;
        case O_HW: o->hw_name = optarg; break;
        case O_MODEL: o->model_name = optarg; break;
        case O_OVERLAP:
            if (parse_enum(cmd, ms_overlap_parse(optarg, &o->so.overlap, &err), &err)) return 2;
            break;
        case O_LAYER:
            if (cli_parse_u32(cmd, "--layer", optarg, &u32)) return 2;
            o->so.layer = u32;
            break;
        case O_SEED:
            if (cli_parse_u64(cmd, "--seed", optarg, &u64)) return 2;
            o->so.seed = o->bo.seed = u64;
            break;
        case O_THREADS:
            if (cli_parse_u32(cmd, "--threads", optarg, &u32)) return 2;
            if (u32 > 1024) return cli_usage(cmd, "--threads %u is too many", u32);
            o->so.threads = o->topts.threads = (int)u32;
            break;
        case O_QUIET: o->topts.progress = -1; break;
        case O_PROGRESS: o->topts.progress = 1; break;
        case O_FORMAT:
            if (cli_parse_format(cmd, optarg, &o->fmt)) return 2;
            break;
        case O_DETAILS: o->details = true; break;
        case O_ORDER:
            if (parse_enum(cmd, ms_order_parse(optarg, &o->bo.order, &err), &err)) return 2;
            o->order_set = true;
            break;
        case O_GPU_CAP:
            if (parse_cap(cmd, "--gpu-power-cap", optarg, false, &o->cap.gpu_w)) return 2;
            o->cap_given = true;
            break;
        case O_ROW_CAP:
            if (parse_cap(cmd, "--row-power-cap", optarg, true, &o->cap.row_w)) return 2;
            o->cap_given = true;
            break;
        case O_CLUSTER_CAP:
            if (parse_cap(cmd, "--cluster-power-cap", optarg, true, &o->cap.cluster_w)) return 2;
            o->cap_given = true;
            break;
        case O_ENERGY:
            o->energy_name = optarg;
            o->cap_given = true;
            break;
        case ':': return cli_usage(cmd, "option %s needs a value", argv[optind - 1]);
        default: return cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    o->traces = argv + optind;
    o->n_traces = argc - optind;
    if (o->n_traces < 1) return cli_usage(cmd, "no TRACE given");
    if (o->n_placements < 1 && !(extra && extra->placement_optional))
        return cli_usage(cmd, "--placement FILE is required");
    if (o->n_placements < 1 && !o->cluster.rows)
        return cli_usage(cmd, "without --placement, --cluster RxCxS gives the grid");
    if (o->n_routes == 0) o->routes[o->n_routes++] = MS_ROUTE_BALANCED;
    o->so.route = o->routes[0];
    if (o->so.cost_model == MS_COST_ROOFLINE && o->origin_set && o->so.origin != MS_ORIGIN_DP)
        return cli_usage(cmd, "--origin-rows applies to --cost-model mesh (roofline tokens start on their "
                              "data-parallel device)");
    if (o->so.cost_model == MS_COST_ROOFLINE) o->so.origin = MS_ORIGIN_DP;
    if (o->so.cost_model == MS_COST_MESH && o->so.overlap != MS_OVERLAP_NONE)
        return cli_usage(cmd, "--overlap applies to --cost-model roofline");
    if (o->so.cost_model == MS_COST_MESH)
        for (int i = 0; i < o->n_routes; i++)
            if (o->routes[i] == MS_ROUTE_SPLIT)
                return cli_usage(cmd, "--route split needs --cost-model roofline (the mesh model prices whole "
                                      "tokens per replica)");
    return -1;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

void sim_inputs_free(sim_inputs *in) {
    if (in->jsonl.trace) ms_jsonl_trace_clear(&in->jsonl);
    else ms_trace_free(in->trace);
    in->trace = NULL;
    for (int i = 0; i < SIM_CLI_MAX_PLACEMENTS; i++) {
        ms_placement_free(in->pl[i]);
        in->pl[i] = NULL;
    }
    ms_batch_plan_free(in->plan);
    in->plan = NULL;
}

int sim_cli_load(const char *cmd, sim_cli *o, sim_inputs *in) {
    memset(in, 0, sizeof *in);
    ms_error err = {0};
    double t0 = ms_now();
    if (o->n_traces == 1 && ends_with(o->traces[0], ".jsonl")) {
        if (ms_jsonl_trace_load(o->traces[0], o->topts.n_experts, &in->jsonl, &err) != MS_OK)
            return cli_fail(cmd, &err);
        in->trace = in->jsonl.trace;
        o->so.origin_rows = in->jsonl.origin_rows;
    } else {
        for (int i = 0; i < o->n_traces; i++)
            if (ends_with(o->traces[i], ".jsonl"))
                return cli_usage(cmd, "a .jsonl trace must be the only TRACE");
        int rc = cli_load_trace(cmd, o->traces, o->n_traces, &o->topts, &in->trace);
        if (rc) return rc;
    }
    in->load_seconds = ms_now() - t0;
    if (o->so.origin == MS_ORIGIN_TRACE && !o->so.origin_rows) {
        err.status = MS_E_INPUT;
        snprintf(err.msg, sizeof err.msg, "--origin-rows trace: %s carries no origin_rows", o->traces[0]);
        return cli_fail(cmd, &err);
    }
    const ms_cluster *cl = o->cluster.rows ? &o->cluster : NULL;
    for (int i = 0; i < o->n_placements; i++) {
        if (ms_placement_read_json(o->placements[i], cl, in->trace->n_experts, &in->pl[i], &err) != MS_OK)
            return cli_fail(cmd, &err);
        ms_placement *p = in->pl[i];
        if (i > 0 && ms_cluster_devices(&p->cluster) != ms_cluster_devices(&in->pl[0]->cluster)) {
            err.status = MS_E_INPUT;
            snprintf(err.msg, sizeof err.msg, "%s has %u devices, %s %u: compare needs one grid",
                     o->placements[i], ms_cluster_devices(&p->cluster), o->placements[0],
                     ms_cluster_devices(&in->pl[0]->cluster));
            return cli_fail(cmd, &err);
        }
    }
    if (o->so.layer >= 0 && (uint64_t)o->so.layer >= in->trace->n_layers) {
        return cli_usage(cmd, "--layer %lld out of range: the trace has %u layers", (long long)o->so.layer,
                         in->trace->n_layers);
    }
    const char *mname = o->model_name ? o->model_name
                                      : ms_model_preset_guess(in->trace->n_experts, in->trace->top_k);
    if (mname) {
        if (ms_model_preset_load(mname, &in->model, &err) != MS_OK) return cli_fail(cmd, &err);
        in->have_model = true;
        o->so.model = &in->model;
    } else if (o->so.cost_model == MS_COST_ROOFLINE) {
        return cli_usage(cmd, "no model preset matches %u experts, top-%u: give --model", in->trace->n_experts,
                         in->trace->top_k);
    }
    if (o->so.cost_model == MS_COST_ROOFLINE || o->hw_name) {
        if (ms_hw_preset_load(o->hw_name ? o->hw_name : "h100-sxm", &in->hw, &err) != MS_OK)
            return cli_fail(cmd, &err);
        in->have_hw = true;
        o->so.hw = &in->hw;
    }
    uint32_t devices = o->n_placements ? ms_cluster_devices(&in->pl[0]->cluster) : ms_cluster_devices(&o->cluster);
    if (ms_batch_plan_build(in->trace, &o->bo, devices, &in->plan, &err) != MS_OK) return cli_fail(cmd, &err);
    return 0;
}

int sim_cli_caps(const char *cmd, sim_cli *o, sim_inputs *in, const ms_energy_coeffs *c, const ms_precision *prec) {
    ms_error err = {0};
    ms_power_cap_none(&in->cap);
    o->so.throttle = NULL;
    if (o->so.cost_model != MS_COST_ROOFLINE) {
        if (o->cap_given)
            return cli_usage(cmd, "power caps need --cost-model roofline (the mesh model has no FLOPs or bytes per "
                                  "device)");
        return 0;
    }
    if (c) {
        in->energy = *c;
    } else if (ms_energy_load(o->energy_name ? o->energy_name : in->hw.name, &in->energy, &err) != MS_OK) {
        if (o->cap_given) return cli_fail(cmd, &err);
        if (o->topts.progress >= 0)
            fprintf(stderr, "moesim %s: note: no energy coefficients for hw '%s': running without a power cap "
                            "(give --energy NAME for the default cap, the preset's TDP)\n",
                    cmd, in->hw.name);
        return 0;
    }
    in->have_energy = true;
    in->precision = prec ? *prec : in->model.expert_weight_bytes <= 1 ? MS_PREC_FP8 : MS_PREC_BF16;
    in->cap = o->cap;
    if (isnan(in->cap.gpu_w)) in->cap.gpu_w = in->energy.tdp_w;
    if (!ms_power_cap_active(&in->cap)) return 0;
    const ms_cluster *cl = o->n_placements ? &in->pl[0]->cluster : &o->cluster;
    for (int i = 1; i < o->n_placements; i++)
        if (in->pl[i]->cluster.cols != cl->cols && isfinite(in->cap.row_w))
            return cli_usage(cmd, "--row-power-cap needs placements with the same rows: %s has %u columns, %s %u",
                             o->placements[i], in->pl[i]->cluster.cols, o->placements[0], cl->cols);
    if (ms_power_throttle_init(&in->thr, &in->energy, &in->cap, in->precision, ms_cluster_devices(cl), cl->cols,
                               &in->throttle, &err) != MS_OK)
        return cli_usage(cmd, "%s", err.msg);
    o->so.throttle = &in->throttle;
    return 0;
}

static json_t *watts(double w) { return isfinite(w) ? json_real(w) : json_null(); }

json_t *sim_cli_caps_json(const sim_inputs *in) {
    if (!in->have_energy || !ms_power_cap_active(&in->cap)) return json_null();
    json_t *j = json_object();
    json_object_set_new(j, "gpu_w", watts(in->cap.gpu_w));
    json_object_set_new(j, "row_w", watts(in->cap.row_w));
    json_object_set_new(j, "cluster_w", watts(in->cap.cluster_w));
    json_object_set_new(j, "energy", json_string(in->energy.name));
    json_object_set_new(j, "precision", json_string(ms_precision_name(in->precision)));
    return j;
}

json_t *sim_cli_clocks_json(const ms_sim_result *r) {
    if (!r->dev_clock_mean) return NULL;
    json_t *j = json_object(), *a = json_array(), *b = json_array();
    for (uint32_t d = 0; d < r->n_devices; d++) {
        json_array_append_new(a, json_real(r->dev_clock_mean[d]));
        json_array_append_new(b, json_real(r->dev_clock_min[d]));
    }
    json_object_set_new(j, "mean", a);
    json_object_set_new(j, "min", b);
    return j;
}

void sim_cli_caps_text(const sim_inputs *in, char *buf, size_t len) {
    if (!in->have_energy || !ms_power_cap_active(&in->cap)) {
        snprintf(buf, len, "none");
        return;
    }
    char g[32] = "none", r[32] = "none", c[32] = "none";
    if (isfinite(in->cap.gpu_w)) snprintf(g, sizeof g, "%g W", in->cap.gpu_w);
    if (isfinite(in->cap.row_w)) snprintf(r, sizeof r, "%g kW", in->cap.row_w / 1e3);
    if (isfinite(in->cap.cluster_w)) snprintf(c, sizeof c, "%g kW", in->cap.cluster_w / 1e3);
    snprintf(buf, len, "per GPU %s, per row %s, cluster %s (%s, TDP %g W, alpha %g)", g, r, c, in->energy.name,
             in->energy.tdp_w, in->energy.freq_exponent);
}

json_t *sim_cli_trace_json(const sim_inputs *in) {
    const ms_trace *t = in->trace;
    json_t *o = json_object();
    char dig[32];
    snprintf(dig, sizeof dig, "%016llx", (unsigned long long)t->digest);
    json_object_set_new(o, "label", json_string(t->label));
    json_object_set_new(o, "requests", json_integer((json_int_t)t->n_requests));
    json_object_set_new(o, "tokens", json_integer((json_int_t)t->n_tokens));
    json_object_set_new(o, "layers", json_integer(t->n_layers));
    json_object_set_new(o, "experts", json_integer(t->n_experts));
    json_object_set_new(o, "top_k", json_integer(t->top_k));
    json_object_set_new(o, "ranked", json_integer(t->n_ranked));
    json_object_set_new(o, "digest", json_string(dig));
    return o;
}

json_t *sim_cli_options_json(const sim_cli *o, const sim_inputs *in) {
    json_t *j = json_object();
    const ms_sim_opts *s = &o->so;
    json_object_set_new(j, "cost_model", json_string(ms_cost_model_name(s->cost_model)));
    json_object_set_new(j, "batch", json_string(ms_batch_mode_name(o->bo.mode)));
    json_object_set_new(j, "batch_tokens", json_integer(o->bo.batch_tokens));
    json_object_set_new(j, "decode_batch", json_integer(o->bo.decode_batch));
    json_object_set_new(j, "dp", json_string(ms_dp_name(o->bo.dp)));
    json_object_set_new(j, "order", json_string(ms_order_name(o->bo.order)));
    json_object_set_new(j, "batches", json_integer((json_int_t)in->plan->n_batches));
    json_object_set_new(j, "overflow", json_string(ms_overflow_name(s->overflow)));
    json_object_set_new(j, "origin_rows", json_string(ms_origin_name(s->origin)));
    if (s->route == MS_ROUTE_ROW_LOCAL) json_object_set_new(j, "row_local_slack", json_real(s->row_local_slack));
    json_object_set_new(j, "layer", s->layer >= 0 ? json_integer(s->layer) : json_string("all"));
    json_object_set_new(j, "seed", json_integer((json_int_t)s->seed));
    if (s->cost_model == MS_COST_MESH) {
        json_object_set_new(j, "mesh_table", json_string(ms_mesh_table_name(s->mesh_table)));
        json_object_set_new(j, "mesh_expert_us", json_real(s->mesh_expert_us));
        json_object_set_new(j, "mesh_chunk", json_integer(s->mesh_chunk));
    } else {
        json_object_set_new(j, "overlap", json_string(ms_overlap_name(s->overlap)));
    }
    json_object_set_new(j, "hw", in->have_hw ? json_string(in->hw.name) : json_null());
    json_object_set_new(j, "model", in->have_model ? json_string(in->model.name) : json_null());
    json_object_set_new(j, "power_caps", sim_cli_caps_json(in));
    return j;
}

/* ------------------------------------------------------------ simulate */

static void details_step(void *ctx, const ms_sim_step *st) {
    sim_details *d = ctx;
    uint64_t ri = st->rec->batch * d->nl + (st->rec->layer - d->l0);
    double *p = d->dev + ri * 5 * d->D;
    memcpy(p, st->load, d->D * sizeof(double));
    memcpy(p + d->D, st->origin_tokens, d->D * sizeof(double));
    memcpy(p + 2 * d->D, st->busy_us, d->D * sizeof(double));
    memcpy(p + 3 * d->D, st->idle_us, d->D * sizeof(double));
    if (st->clock) memcpy(p + 4 * d->D, st->clock, d->D * sizeof(double));
}

int sim_details_init(const char *cmd, const sim_cli *o, const sim_inputs *in, const ms_placement *p, sim_details *d,
                     ms_sim_hooks *hooks) {
    ms_error err = {0};
    memset(d, 0, sizeof *d);
    d->nl = o->so.layer >= 0 ? 1 : in->trace->n_layers;
    d->l0 = o->so.layer >= 0 ? (uint64_t)o->so.layer : 0;
    d->D = ms_cluster_devices(&p->cluster);
    d->clock = o->so.throttle != NULL;
    size_t nrec;
    if (ms_mul_overflow(in->plan->n_batches, d->nl, &nrec)) {
        ms_error_set(&err, MS_E_NOMEM, "--details: too many records");
        return cli_fail(cmd, &err);
    }
    d->dev = ms_alloc_array(nrec, (size_t)5 * d->D * sizeof(double), &err);
    if (!d->dev) return cli_fail(cmd, &err);
    hooks->step = details_step;
    hooks->ctx = d;
    return 0;
}

void sim_details_free(sim_details *d) {
    ms_free(d->dev);
    d->dev = NULL;
}

void sim_details_write(FILE *fp, const ms_sim_result *r, const sim_details *d, const char *indent) {
    for (uint64_t i = 0; i < r->n_records; i++) {
        const ms_sim_record *x = &r->records[i];
        const double *dv = d->dev + i * 5 * d->D;
        ms_sim_step stp = {x,    d->D, dv,   dv + d->D, NULL, NULL, NULL, NULL, dv + 2 * d->D, dv + 3 * d->D,
                           NULL, NULL, NULL, NULL,      NULL, NULL, d->clock ? dv + 4 * d->D : NULL};
        json_t *rj = ms_sim_record_json(x, &stp);
        char *s = json_dumps(rj, JSON_COMPACT | JSON_REAL_PRECISION(17));
        json_decref(rj);
        fprintf(fp, "%s%s%s\n", indent, s ? s : "null", i + 1 < r->n_records ? "," : "");
        free(s);
    }
}

json_t *sim_cli_cluster_json(const ms_placement *p) {
    json_t *c = json_object();
    json_object_set_new(c, "rows", json_integer(p->cluster.rows));
    json_object_set_new(c, "cols", json_integer(p->cluster.cols));
    json_object_set_new(c, "slots_per_device", json_integer(p->cluster.slots_per_device));
    return c;
}

static void write_table(FILE *fp, const sim_cli *o, const sim_inputs *in, const ms_sim_result *r, double eval_s) {
    const ms_sim_summary *s = &r->summary;
    const ms_placement *p = in->pl[0];
    fprintf(fp, "trace      %s: %llu requests, %llu tokens, %u layers, %u experts, top-%u\n", in->trace->label,
            (unsigned long long)in->trace->n_requests, (unsigned long long)in->trace->n_tokens,
            in->trace->n_layers, in->trace->n_experts, in->trace->top_k);
    fprintf(fp, "placement  %s: %ux%u devices, %u slots each, %s\n", o->placements[0], p->cluster.rows,
            p->cluster.cols, p->cluster.slots_per_device, p->algorithm[0] ? p->algorithm : "(unnamed)");
    char capbuf[64];
    if (s->capacity_factor > 0) snprintf(capbuf, sizeof capbuf, "factor %g", s->capacity_factor);
    else snprintf(capbuf, sizeof capbuf, "none");
    fprintf(fp, "run        %s cost, %s batches (%llu), route %s, capacity %s, overflow %s\n",
            ms_cost_model_name(o->so.cost_model), ms_batch_mode_name(o->bo.mode), (unsigned long long)s->batches,
            ms_route_name(o->so.route), capbuf, ms_overflow_name(o->so.overflow));
    if (o->so.cost_model == MS_COST_MESH)
        fprintf(fp, "mesh       origin rows %s, A=%.6g B=%.6g C=%.6g D=%.6g\n", ms_origin_name(o->so.origin),
                s->coeffs[0], s->coeffs[1], s->coeffs[2], s->coeffs[3]);
    else
        fprintf(fp, "roofline   hw %s, model %s, overlap %s\n", in->hw.name, in->model.name,
                ms_overlap_name(o->so.overlap));
    if (o->so.cost_model == MS_COST_ROOFLINE) {
        char caps[256];
        sim_cli_caps_text(in, caps, sizeof caps);
        fprintf(fp, "power caps %s\n", caps);
    }
    fprintf(fp, "\n%-12s %12s %12s %12s %12s %12s\n", "", "mean", "p50", "p95", "p99", "max");
    const ms_dist *ds[3] = {&s->imbalance, &s->layer_us, &s->batch_us};
    const char *nm[3] = {"imbalance", "layer us", "batch us"};
    for (int i = 0; i < 3; i++)
        fprintf(fp, "%-12s %12.4f %12.4f %12.4f %12.4f %12.4f\n", nm[i], ds[i]->mean, ds[i]->p50, ds[i]->p95,
                ds[i]->p99, ds[i]->max);
    if (o->so.cost_model == MS_COST_ROOFLINE)
        fprintf(fp, "\nmean per layer (us): dense %.4f, dispatch %.4f, compute %.4f, combine %.4f\n", s->dense_us,
                s->dispatch_us, s->compute_us, s->combine_us);
    else
        fprintf(fp, "\nmean per layer (us): dispatch %.4f, compute %.4f, combine %.4f\n", s->dispatch_us,
                s->compute_us, s->combine_us);
    fprintf(fp, "records %llu, tokens %llu, events %llu, dropped %llu, rerouted %llu\n",
            (unsigned long long)s->records, (unsigned long long)s->tokens, (unsigned long long)s->events,
            (unsigned long long)s->dropped, (unsigned long long)s->rerouted);
    fprintf(fp, "total %.1f us, %.1f tokens/s, GPU utilisation %.4f\n", s->total_us, s->tokens_per_second,
            s->gpu_utilisation);
    fprintf(fp, "bytes inside rows %.6g, between rows %.6g\n", s->intra_bytes, s->inter_bytes);
    if (s->throttled)
        fprintf(fp, "throttled %.4f us per layer (mean), %.4f of records; clock mean %.4f, min %.4f; caps not met %llu\n",
                s->throttled_us, s->throttled_share, s->clock_mean, s->clock_min, (unsigned long long)s->cap_unmet);
    fprintf(fp, "load %.3f s, eval %.3f s\n", in->load_seconds, eval_s);
}

static void write_csv(FILE *fp, const ms_sim_result *r) {
    fprintf(fp, "batch,layer,tokens,assignments,dropped,rerouted,max_load,mean_load,imbalance,dense_us,dispatch_us,"
                "compute_us,combine_us,layer_us,intra_row_bytes,inter_row_bytes,throttled_us,clock_mean,clock_min,"
                "cap_unmet\n");
    for (uint64_t i = 0; i < r->n_records; i++) {
        const ms_sim_record *x = &r->records[i];
        fprintf(fp,
                "%llu,%u,%u,%llu,%llu,%llu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,"
                "%.17g,%u\n",
                (unsigned long long)x->batch, x->layer, x->tokens, (unsigned long long)x->assignments,
                (unsigned long long)x->dropped, (unsigned long long)x->rerouted, x->max_load, x->mean_load,
                x->imbalance, x->dense_us, x->dispatch_us, x->compute_us, x->combine_us, x->layer_us,
                x->intra_bytes, x->inter_bytes, x->throttled_us, x->clock_mean, x->clock_min, x->cap_unmet);
    }
}

static int dump(FILE *fp, const char *key, json_t *v, int flags, const char *sep) {
    char *s = json_dumps(v, flags | JSON_REAL_PRECISION(17));
    json_decref(v);
    if (!s) return -1;
    fprintf(fp, "  \"%s\": %s%s\n", key, s, sep);
    free(s);
    return 0;
}

int cmd_simulate(int argc, char **argv) {
    const char *cmd = "simulate";
    sim_cli o;
    int rc = sim_cli_parse(cmd, usage_text, argc, argv, &o, false);
    if (rc >= 0) return rc;
    double t0 = ms_now();
    sim_inputs in;
    rc = sim_cli_load(cmd, &o, &in);
    if (!rc) rc = sim_cli_caps(cmd, &o, &in, NULL, NULL);
    if (rc) {
        sim_inputs_free(&in);
        return rc;
    }
    sim_details det = {0};
    ms_sim_hooks hooks = {0};
    ms_error err = {0};
    ms_sim_result *res = NULL;
    o.so.keep_records = o.details || o.fmt == CLI_CSV;
    if (o.details) {
        rc = sim_details_init(cmd, &o, &in, in.pl[0], &det, &hooks);
        if (rc) {
            sim_inputs_free(&in);
            return rc;
        }
    }
    ms_status st = ms_sim_run(in.trace, in.plan, in.pl[0], &o.so, o.details ? &hooks : NULL, &res, &err);
    if (st != MS_OK) {
        sim_details_free(&det);
        sim_inputs_free(&in);
        return cli_fail(cmd, &err);
    }
    double eval_s = ms_now() - t0 - in.load_seconds;
    ms_afile f;
    rc = cli_open_output(cmd, o.out, &f);
    if (rc == 0) {
        if (o.fmt == CLI_TABLE) {
            write_table(f.fp, &o, &in, res, eval_s);
        } else if (o.fmt == CLI_CSV) {
            write_csv(f.fp, res);
        } else {
            json_t *sum = ms_sim_summary_json(&res->summary, o.so.cost_model);
            json_object_set_new(sum, "load_seconds", json_real(in.load_seconds));
            json_object_set_new(sum, "eval_seconds", json_real(eval_s));
            json_t *pj = json_object();
            const ms_placement *p = in.pl[0];
            json_object_set_new(pj, "file", json_string(o.placements[0]));
            json_object_set_new(pj, "rows", json_integer(p->cluster.rows));
            json_object_set_new(pj, "cols", json_integer(p->cluster.cols));
            json_object_set_new(pj, "slots_per_device", json_integer(p->cluster.slots_per_device));
            json_object_set_new(pj, "layers", json_integer(p->n_layers));
            json_object_set_new(pj, "shared_expert", json_boolean(p->has_shared));
            json_object_set_new(pj, "algorithm", json_string(p->algorithm));
            json_t *opts = sim_cli_options_json(&o, &in);
            json_object_set_new(opts, "route", json_string(ms_route_name(o.so.route)));
            json_t *clocks = sim_cli_clocks_json(res);
            if (clocks) json_object_set_new(sum, "device_clock", clocks);
            fprintf(f.fp, "{\n  \"command\": \"simulate\",\n");
            dump(f.fp, "trace", sim_cli_trace_json(&in), JSON_COMPACT, ",");
            dump(f.fp, "placement", pj, JSON_COMPACT, ",");
            dump(f.fp, "options", opts, JSON_COMPACT, ",");
            dump(f.fp, "summary", sum, JSON_INDENT(2), o.details ? "," : "");
            if (o.details) {
                fprintf(f.fp, "  \"records\": [\n");
                sim_details_write(f.fp, res, &det, "    ");
                fprintf(f.fp, "  ]\n");
            }
            fprintf(f.fp, "}\n");
        }
        rc = cli_commit_output(cmd, &f);
    }
    ms_sim_result_free(res);
    sim_details_free(&det);
    sim_inputs_free(&in);
    return rc;
}
