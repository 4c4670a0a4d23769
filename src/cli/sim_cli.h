/* sim_cli.h - option parsing and input loading shared by `moesim simulate`
 * and `moesim compare` (implemented in cmd_simulate.c). */
#ifndef MOESIM_SIM_CLI_H
#define MOESIM_SIM_CLI_H

#include <stdbool.h>

#include "cli/cli.h"
#include "moesim/power.h"
#include "moesim/sim.h"

#define SIM_CLI_MAX_PLACEMENTS 32
#define SIM_CLI_MAX_ROUTES 8

typedef struct sim_cli {
    char **traces;
    int n_traces;
    const char *placements[SIM_CLI_MAX_PLACEMENTS];
    int n_placements;
    ms_route routes[SIM_CLI_MAX_ROUTES];
    int n_routes;
    ms_batch_opts bo;
    ms_sim_opts so;
    const char *hw_name, *model_name;
    ms_cluster cluster;        /* --cluster RxC[xS]; zero = from the placement file */
    cli_trace_opts topts;
    cli_format fmt;
    const char *out;
    bool details;
    bool origin_set;
    bool order_set;            /* --order was given */
    /* power caps: --gpu-power-cap W|none (gpu_w NAN = the energy preset's
     * TDP), --row-power-cap kW|none, --cluster-power-cap kW|none, --energy */
    ms_power_cap cap;
    bool cap_given;            /* a cap option or --energy was given */
    const char *energy_name;
} sim_cli;

/* Everything a run needs, loaded. */
typedef struct sim_inputs {
    ms_trace *trace;
    ms_jsonl_trace jsonl;      /* when the trace was a .jsonl (trace then aliases jsonl.trace) */
    ms_placement *pl[SIM_CLI_MAX_PLACEMENTS];
    ms_batch_plan *plan;
    ms_hw_preset hw;
    ms_model_preset model;
    bool have_hw, have_model;
    double load_seconds;
    /* power caps (sim_cli_caps): the coefficients and limits applied, and
     * the throttle o->so.throttle points at when some limit is finite */
    ms_energy_coeffs energy;
    bool have_energy;
    ms_power_cap cap;
    ms_precision precision;
    ms_power_throttle thr;
    ms_sim_throttle throttle;
} sim_inputs;

/* Per-device arrays of every (batch, layer) of one run, for --details:
 * filled by the hook sim_details_init sets up. */
typedef struct sim_details {
    uint64_t nl, l0;
    uint32_t D;
    bool clock;  /* the run is throttled: the records also carry the devices' clocks */
    double *dev; /* [record][5][D]: load, tokens, busy, idle, clock */
} sim_details;

/* Allocates d for the run of placement p under o's layer choice and points
 * hooks at it (the run must keep its records; call after sim_cli_caps). Returns 0 or the exit code
 * (out of memory, reported as cmd). */
int sim_details_init(const char *cmd, const sim_cli *o, const sim_inputs *in, const ms_placement *p, sim_details *d,
                     ms_sim_hooks *hooks);
void sim_details_free(sim_details *d);
/* Writes r's records, one compact JSON object per line with the per-device
 * arrays, each line prefixed with indent and all but the last ending in ','. */
void sim_details_write(FILE *fp, const ms_sim_result *r, const sim_details *d, const char *indent);
/* The grid of p as {"rows", "cols", "slots_per_device"}. */
struct json_t *sim_cli_cluster_json(const ms_placement *p);

/* Parses argv (argv[0] = command). multi: --placement and --route may repeat
 * (compare). Returns -1 to go on, else the exit code (0 after --help). */
int sim_cli_parse(const char *cmd, const char *usage, int argc, char **argv, sim_cli *o, bool multi);

/* Options a command adds to the simulator's (moesim replay): a table ending
 * in a zero entry whose values (their `val`) are >= SIM_CLI_EXTRA_BASE, the
 * handler that takes them (returns 0, or the exit code after printing the
 * usage error), and whether --placement may be left out (then --cluster
 * must give the grid). */
#define SIM_CLI_EXTRA_BASE 1024
struct option;
typedef struct sim_cli_extra {
    const struct option *opts;
    int (*handle)(void *ctx, int opt, const char *arg);
    void *ctx;
    bool placement_optional;
} sim_cli_extra;
int sim_cli_parse_ext(const char *cmd, const char *usage, int argc, char **argv, sim_cli *o, bool multi,
                      const sim_cli_extra *extra);
/* Loads trace, placements, presets and the batch plan (on the placement's
 * grid, or --cluster's when there is no placement). Returns 0 or the exit code. */
int sim_cli_load(const char *cmd, sim_cli *o, sim_inputs *in);
/* Resolves the power caps after sim_cli_load: coefficients c (NULL = load
 * --energy, else the --hw preset's energy-NAME), precision *prec (NULL = FP8
 * when the model's expert weights are 1 byte, else BF16), the per-GPU cap
 * defaulting to the coefficients' tdp_w. Sets o->so.throttle when some limit
 * is finite. Without a cap option: the mesh model, or a hardware preset
 * without energy coefficients, runs uncapped (the latter with a note).
 * Returns 0 or the exit code (2: caps with the mesh model, a bad or unmeetable
 * limit, missing coefficients for a given cap). */
int sim_cli_caps(const char *cmd, sim_cli *o, sim_inputs *in, const ms_energy_coeffs *c, const ms_precision *prec);
/* The caps applied as JSON ({"gpu_w", "row_w", "cluster_w"} with null for
 * none, "energy": the coefficients' name), or JSON null without caps. */
struct json_t *sim_cli_caps_json(const sim_inputs *in);
/* Per-device clocks of a throttled run {"mean": [...], "min": [...]}, or
 * NULL without a throttle. */
struct json_t *sim_cli_clocks_json(const ms_sim_result *r);
/* One line describing the caps applied ("per GPU 700 W, row none, ...") into buf. */
void sim_cli_caps_text(const sim_inputs *in, char *buf, size_t len);
void sim_inputs_free(sim_inputs *in);
/* The "trace" and "options" JSON objects of the outputs. */
struct json_t *sim_cli_trace_json(const sim_inputs *in);
struct json_t *sim_cli_options_json(const sim_cli *o, const sim_inputs *in);

#endif
