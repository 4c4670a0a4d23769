/*
 * moesim/sweep.h - parameter sweeps: a grid of points evaluated on one core,
 * on every core (threads), or on many machines (MPI), resumable.
 *
 * Two layers:
 *  - the engine (ms_sweep_run) evaluates points 0..n-1 through an evaluator
 *    (a function pointer), records every finished point in a journal as it
 *    finishes, and returns one row of text cells per point. Rows are
 *    formatted by the evaluator, so the output is the same bytes whether one
 *    process, several threads or several MPI ranks computed it, in any order.
 *  - the spec (ms_sweep_spec): SPEC.json names the grid (traces x algorithms
 *    x routing policies x cluster shapes x slot budgets x batch sizes, then
 *    replay points, then scaling-model points) and ms_sweep_spec_evaluator
 *    evaluates a point with the library: ms_place_run, then ms_sim_run; for
 *    a replay point ms_replay_initial_placement, then ms_replay_run
 *    (moesim/online.h).
 *
 * Journal (resume): a text file. Line 1: "moesim-sweep-journal 1 points=N
 * spec=HEX columns=C". Then one line per finished point: "INDEX CHECKSUM
 * ROW", ROW a compact JSON array of the row's cells, CHECKSUM the FNV-1a 64
 * of "INDEX ROW" in hex. Each line is written with one write() and fsync'd
 * before the point counts as finished. On resume, lines with a bad checksum
 * or no newline (a write cut short by a kill) are ignored (a torn tail is
 * truncated away), and a point listed twice counts once.
 *
 * MPI (builds with MOESIM_HAVE_MPI, inside mpirun): rank 0 keeps the queue
 * and the journal and hands out point indices one at a time on request;
 * every rank (rank 0 too) evaluates with its worker threads and sends rows
 * back. A slow point only holds the thread evaluating it.
 */
#ifndef MOESIM_SWEEP_H
#define MOESIM_SWEEP_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"
#include "moesim/trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cells of one row are formatted into buffers of this many bytes. */
#define MS_SWEEP_CELL 256

/* What the engine evaluates. eval is called from several threads at once
 * (and on several ranks) and must be deterministic: the same index gives the
 * same cells. It writes n_columns NUL-terminated cells into cells[i] (each
 * MS_SWEEP_CELL bytes). A status other than MS_OK stops the sweep with that
 * error (points finished so far stay in the journal). */
typedef struct ms_sweep_evaluator {
    size_t n_columns;
    const char *const *columns; /* column names */
    const bool *numeric;        /* JSON output writes these cells unquoted (when they are numbers) */
    ms_status (*eval)(void *ctx, uint64_t index, char **cells, ms_error *err);
    void *ctx;
} ms_sweep_evaluator;

typedef struct ms_sweep_opts {
    int threads;              /* evaluating threads per process; 0 = all cores */
    const char *journal;      /* journal path, or NULL for none */
    bool resume;              /* continue from the journal (it may be absent: then start) */
    uint64_t stop_after;      /* test hook: stop after this many points evaluated (0 = all) */
    uint64_t spec_digest;     /* identifies the grid; a journal of another digest is refused */
    bool mpi;                 /* share points over MPI_COMM_WORLD when MPI is initialised */
    ms_progress_fn progress;  /* (done, total) from rank 0's serving thread; may be NULL */
    void *progress_ctx;
} ms_sweep_opts;

/* Defaults: threads 0, no journal, no resume, no stop, digest 0, mpi true. */
void ms_sweep_opts_default(ms_sweep_opts *o);

typedef struct ms_sweep_result {
    uint64_t n_points;
    uint64_t done;            /* finished points (journal + this run) */
    uint64_t resumed;         /* of those, read from the journal */
    uint64_t evaluated;       /* evaluated in this run, by every rank */
    uint64_t ignored_lines;   /* journal lines ignored: bad checksum, torn, duplicate */
    int rank, ranks;          /* MPI rank and size (0, 1 without MPI) */
    char **rows;              /* [n_points] compact JSON arrays of cells; NULL where not done;
                                 rank 0 only (NULL on other ranks) */
} ms_sweep_result;

/* Evaluates every point not already in the journal. Fails MS_E_INPUT when
 * n_points is 0, the evaluator has no columns, a journal exists without
 * opts->resume, or the journal belongs to another spec (digest, point or
 * column count) or is malformed in its header; MS_E_IO when the journal
 * cannot be written; the evaluator's status when a point fails; MS_E_NOMEM.
 * Under MPI every rank calls it and gets the same status; the rows live on
 * rank 0. A result with done < n_points (stop_after) is not an error. */
ms_status ms_sweep_run(uint64_t n_points, const ms_sweep_evaluator *ev, const ms_sweep_opts *opts,
                       ms_sweep_result **out, ms_error *err);
void ms_sweep_result_free(ms_sweep_result *r);

/* Output of a complete result (done == n_points): CSV with a header line
 * (cells quoted when they hold a comma, quote or newline), or JSON
 * {"sweep": {points, spec_digest}, "columns": [...], "rows": [{column: cell}
 * per point]} with numeric columns unquoted when the cell is a JSON number
 * and null when empty. Same rows, same bytes. MS_E_INPUT when the result is
 * incomplete; MS_E_IO on write errors. */
ms_status ms_sweep_write_csv(const ms_sweep_result *r, const ms_sweep_evaluator *ev, FILE *fp, ms_error *err);
ms_status ms_sweep_write_json(const ms_sweep_result *r, const ms_sweep_evaluator *ev, uint64_t spec_digest,
                              FILE *fp, ms_error *err);

/* Cells of a row (as stored in r->rows) decoded into a new array of
 * n_columns strings (one allocation: release with ms_free). NULL when the row
 * is malformed or memory runs out. */
char **ms_sweep_row_cells(const char *row, size_t n_columns);

/* FNV-1a 64 checksum of a journal line's "INDEX ROW" text (exposed for tests). */
uint64_t ms_sweep_line_checksum(uint64_t index, const char *row);

/* True when this build can distribute sweeps with MPI. */
bool ms_sweep_have_mpi(void);

/* ------------------------------------------------------------------ spec */

typedef struct ms_sweep_spec ms_sweep_spec;

/* Reads SPEC.json:
 *   {"traces": [PATH | {"path": P, "label": L, "experts": N, "phase": "all|prefill|decode",
 *                       "eval": P2 | "split": F, "seed": S}],
 *    "algorithms": [NAME | {"algo": NAME, "label": L, "groups": G, "redundant": N,
 *                           "axis": "row|col", "hot_n": N, "tail_alpha": X, "coact_weight": X,
 *                           "time_limit": S, "seed": S}],
 *    "routes": [NAME ...], "clusters": ["RxC" | {"rows": R, "cols": C}],
 *    "slots": [S ...], "batches": [N | "per-request" | {"mode": M, "tokens": N, "batch": B}],
 *    "options": {"cost_model", "hw", "model", "capacity_factor", "overflow", "origin_rows",
 *                "overlap", "layer", "seed", "shared_expert", "mesh_table"},
 *    "replay": {"policies": [POLICY ...], "every": [SPAN ...], "window": [SPAN | 0 ...],
 *               "max_moves": [K ...], "migration": ["stall" | "overlap"], "init": [ALGO ...],
 *               "groups": G, "after_request": N, "variance_weight": Z},   (optional)
 *    "scaling": {"sizes": [total params ...], "gpu": PRESET, ...}}   (optional)
 * Every list defaults to one entry where it can (routes: least-loaded;
 * clusters and slots are required when there are traces; batches: per-request
 * for the mesh model, prefill 4096 otherwise). A batch given as a number is a
 * prefill token budget (decode batch size for phase decode). Points are the
 * product, traces outermost, batches innermost, then the replay points,
 * then the scaling points. Trace paths are relative to the working
 * directory.
 *
 * Replay points (moesim replay as a grid): traces x init x routes x
 * clusters x slots x batches x runs, runs innermost. Each serves the trace
 * (its eval part with a split or eval) in arrival order (the batch mode's
 * steps, trace order) from the initial placement: the init algorithm on the
 * loads of the plan's first interval, the first "every" entry (as replay
 * --init). A point's runs, in this order: static once; then for each
 * interval, window and migration mode: periodic-eplb, incremental once per
 * max_moves entry, oracle. A list multiplies only the policies that read it:
 * static takes none; window and migration multiply only when periodic-eplb
 * or incremental is listed (the oracle then takes them too: its rivals, the
 * periodic-eplb and incremental runs of its interval, window and mode, are
 * replayed in its point, as moesim replay gives them; without those it runs
 * once per interval with no rivals); max_moves multiplies incremental only.
 * Lists: policies static, periodic-eplb, incremental, oracle (default all
 * four); every a positive number of steps or a span text ("50steps",
 * "200ktokens"; default 100); window the same or 0 = the interval (default
 * 0); max_moves integers >= 0 (at most 15 entries; default 64); migration
 * (default stall); init algorithm names (default eplb). A list holds 1 to 16
 * entries, none twice; a scalar is a list of one. groups: EPLB's expert
 * groups (initial placement and periodic EPLB; default 0); after_request:
 * the statistics split before/after the first step serving that request;
 * variance_weight: incremental's z. Copies use options.hw's links (default
 * h100-sxm) and the weights of options.model (default: guessed from the
 * trace's shape; a point without one gets an error cell). With "replay",
 * grid points exist only when "algorithms" is given. Specs with replay
 * points have the replay columns (policy, every, every_unit, window,
 * window_unit, max_moves, migration, decisions, replacements, skipped,
 * replicas_moved, replicas_moved_inter_row, bytes_moved,
 * bytes_moved_inter_row, serve_us, migration_us, total_us,
 * imbalance_before, imbalance_after, total_us_before, total_us_after)
 * between train_site_w and error; other specs do not. A replay row also
 * fills batches (steps), tokens, imbalance_mean, layer_us_mean,
 * tokens_per_second (tokens / total_us), dropped and rerouted; a list that
 * does not apply to its policy leaves its cells empty. Wall times
 * (decide_us) never appear. Fails MS_E_IO when
 * unreadable, MS_E_INPUT naming the file and key on anything malformed or
 * unknown (names are checked here, not at evaluation; a replay block without
 * traces or with options.layer >= 0 too). */
ms_status ms_sweep_spec_load(const char *path, ms_sweep_spec **out, ms_error *err);
/* The same from text (label names it in messages). */
ms_status ms_sweep_spec_parse(const char *text, size_t len, const char *label, ms_sweep_spec **out, ms_error *err);
void ms_sweep_spec_free(ms_sweep_spec *s);

/* Number of points; digest of the grid (FNV-1a of the canonical spec). */
uint64_t ms_sweep_spec_points(const ms_sweep_spec *s);
uint64_t ms_sweep_spec_digest(const ms_sweep_spec *s);

/* The evaluator of a spec: traces are loaded (and their statistics computed)
 * once per process, on first use, shared by threads. threads_per_point is
 * passed to the simulator (1 when the sweep runs several points at once).
 * The evaluator lives as long as s. progress (may be NULL) is called while a
 * trace loads. */
void ms_sweep_spec_evaluator(ms_sweep_spec *s, int threads_per_point, ms_sweep_evaluator *out);

/* A point's coordinates as text, e.g. "trace=a algo=eplb route=least-loaded
 * cluster=2x8 slots=6 batch=prefill:4096"; a replay point's name init=ALGO
 * and end with its run ("policy=incremental every=20 steps window=20 steps
 * max_moves=64 migration=stall"). buf is always NUL-terminated. */
void ms_sweep_spec_describe(const ms_sweep_spec *s, uint64_t index, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
