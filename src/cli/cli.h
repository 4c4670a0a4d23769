/* cli.h - what the moesim command-line front end shares between commands.
 *
 * Each command lives in cmd_<name>.c as `int cmd_<name>(int argc, char **argv)`
 * (argv[0] is the command name) and is listed in main.c. Commands only parse
 * options, call libmoesim and print; exit 0 success, 2 bad input or usage,
 * 1 internal error. */
#ifndef MOESIM_CLI_H
#define MOESIM_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "moesim/common.h"
#include "moesim/place.h"

typedef enum cli_format { CLI_TABLE = 0, CLI_JSON, CLI_CSV } cli_format;

/* Prints "moesim CMD: error: MSG" to stderr; returns the exit code for err. */
int cli_fail(const char *cmd, const ms_error *err);
/* Prints a usage error plus "try 'moesim CMD --help'"; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option value parsers: return 0 on success, else print a usage error and
 * return 2. Values must be complete numbers within range. */
int cli_parse_u32(const char *cmd, const char *opt, const char *s, uint32_t *out);
/* --cluster RxCxS (rows x cols x slots per device, each >= 1) into *out.
 * Returns 0, or 2 after a usage message naming the option. */
int cli_parse_cluster(const char *cmd, const char *s, ms_cluster *out);
int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out);
int cli_parse_format(const char *cmd, const char *s, cli_format *out);
/* A comma-separated list of at most cap non-negative numbers into out[],
 * their count in *n (at least one). */
int cli_parse_list(const char *cmd, const char *opt, const char *s, double *out, uint32_t cap, uint32_t *n);

/* A progress bar with ETA on stderr, drawn only when stderr is a terminal
 * (or forced with --progress) and not --quiet. Use cli_progress_fn as an
 * ms_progress_fn with the struct as context. */
typedef struct cli_progress {
    const char *label;
    bool enabled;
    double start;
    double last_draw;
} cli_progress;

void cli_progress_init(cli_progress *p, const char *label, int mode /* -1 quiet, 0 auto, 1 force */);
void cli_progress_fn(void *ctx, uint64_t done, uint64_t total);
void cli_progress_done(cli_progress *p);

/* Writes a --help text to stdout in one write(2) (a reader that stops at its
 * first match, like grep -q, then cannot cut a later write short). */
void cli_print_help(const char *text);

/* Opens -o FILE (or stdout when NULL or "-") atomically. */
int cli_open_output(const char *cmd, const char *path, ms_afile *f);
/* Commits; returns the exit code. */
int cli_commit_output(const char *cmd, ms_afile *f);


#include "moesim/trace.h"

/* Options every command that reads a trace understands. */
typedef struct cli_trace_opts {
    uint32_t n_experts;   /* --experts N (0 = from the files) */
    int threads;          /* --threads N (0 = all cores) */
    int progress;         /* -1 --quiet, 0 auto, 1 --progress */
} cli_trace_opts;

/* Loads a trace argument with a progress bar; prints the error and returns
 * its exit code on failure (2 for usage errors, bad or incompatible parts),
 * 0 on success. One argument may be PART or PART+PART+... (concatenated in
 * that order, ms_trace_concat; each distinct path loaded once), a part being
 * a path with optional suffixes, at most one of each kind, in any order:
 *  - TRACE@train / TRACE@eval selects one side of a seeded request split of
 *    that part (ms_trace_split), default half and seed 0: TRACE@train=0.7,seed=3
 *    keeps the 70% training part; @train and @eval with the same fraction
 *    and seed give disjoint requests;
 *  - TRACE@permute=SEED relabels its expert ids per layer
 *    (ms_trace_permute_experts).
 * An argument or part that names an existing path is taken literally ('@'
 * and '+' inside real paths keep working). Several paths (n > 1) are the
 * older form: loaded together as one trace, only the last may carry
 * @train/@eval (splitting all of them); '+' and @permute need one argument.
 * A composite argument labels the trace with its text. */
int cli_load_trace(const char *cmd, char **paths, int n, const cli_trace_opts *o, ms_trace **out);

#endif
