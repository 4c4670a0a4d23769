/* sim_cli.h - option parsing and input loading shared by `moesim simulate`
 * and `moesim compare` (implemented in cmd_simulate.c). */
#ifndef MOESIM_SIM_CLI_H
#define MOESIM_SIM_CLI_H

#include <stdbool.h>

#include "cli/cli.h"
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
} sim_inputs;

/* Parses argv (argv[0] = command). multi: --placement and --route may repeat
 * (compare). Returns -1 to go on, else the exit code (0 after --help). */
int sim_cli_parse(const char *cmd, const char *usage, int argc, char **argv, sim_cli *o, bool multi);
/* Loads trace, placements, presets and the batch plan. Returns 0 or the exit code. */
int sim_cli_load(const char *cmd, sim_cli *o, sim_inputs *in);
void sim_inputs_free(sim_inputs *in);
/* The "trace" and "options" JSON objects of the outputs. */
struct json_t *sim_cli_trace_json(const sim_inputs *in);
struct json_t *sim_cli_options_json(const sim_cli *o, const sim_inputs *in);

#endif
