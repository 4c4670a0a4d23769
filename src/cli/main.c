/* main.c - `moesim <command> [options]`: dispatch to the commands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"info", cmd_info, "what a trace holds: requests, tokens, layers, experts, top-k, dtype, bytes"},
    {"stats", cmd_stats, "expert load statistics per layer: skew, windows, co-activation"},
    {"gen", cmd_gen, "write a synthetic routing trace (model presets, or fitted to a real trace)"},
    {"place", cmd_place, "place and replicate experts on a device grid: eplb, replicate, balance, ilp, ..."},
    {"simulate", cmd_simulate, "replay a trace over a placement: batches, replica routing, capacity, cost per layer"},
    {"compare", cmd_compare, "several placements x routing policies over the very same batches, side by side"},
    {"replay", cmd_replay, "serve a trace over time through placements that change: periodic EPLB, incremental, oracle"},
    {"deploy", cmd_deploy, "analytic whole-deployment comparison (TP x PP x EP x DP): memory, time, energy"},
    {"scale", cmd_scale, "energy and power vs MoE model size, expert granularity sweeps, trend fits, power wall"},
    {"power", cmd_power, "energy and power per device and phase, cluster timeline, cost of imbalance"},
    {"report", cmd_report, "one self-contained HTML page (inline SVG charts) from JSON results"},
    {"sweep", cmd_sweep, "a grid of traces x algorithms x policies x clusters x budgets, threads or MPI, resumable"},
    {"moe-bench", cmd_moe_bench, "time the MoE operator (optimized vs functional) against tokens per expert and the BLAS peak"},
    {"calibrate", cmd_calibrate, "measure this machine's MoE operator and write a hardware preset (efficiency curve)"},
};

/* The usage text, written in one call (a reader that stops early, such as
 * grep -q, must not cut it with SIGPIPE). */
static void usage(FILE *fp) {
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf,
                                "moesim %s - place, replicate and route MoE experts; simulate what it costs\n\n"
                                "usage: moesim <command> [options]   (moesim <command> --help for details)\n\n"
                                "commands:\n",
                                MS_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0] && n < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "  %-12s %s\n", commands[i].name, commands[i].summary);
    if (n < sizeof buf) snprintf(buf + n, sizeof buf - n, "\nexit status: 0 success, 2 bad input or usage, 1 internal error\n");
    if (fp == stdout) cli_print_help(buf);
    else fputs(buf, fp);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("moesim %s\n", MS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "moesim: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
