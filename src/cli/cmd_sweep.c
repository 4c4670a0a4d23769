/* cmd_sweep.c - moesim sweep: a grid of placements x policies x clusters x
 * budgets x batches, evaluated with threads or MPI, resumable. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef MOESIM_HAVE_MPI
#include <mpi.h>
#endif

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/sweep.h"

static const char *usage_text =
    "usage: moesim sweep SPEC.json [-o results.csv|results.json] [--resume] [--threads N]\n"
    "\n"
    "Evaluates every point of a grid: traces x algorithms x routing policies x cluster\n"
    "shapes x slot budgets x batch sizes (+ scaling-model points). A point places the\n"
    "experts (moesim place) and simulates serving over the placement (moesim simulate);\n"
    "its row holds the placement objective and bound, imbalance (mean, p50, p95, p99,\n"
    "max), layer time (mean, p95, p99), batch time p99, tokens/s, dropped and rerouted\n"
    "assignments, bytes inside and between rows, GPU utilisation, or, for a scaling point,\n"
    "parameters, GPUs, energy per token and power. A combination that cannot work (e.g.\n"
    "fewer slots than experts) gets its reason in the error column; the sweep goes on.\n"
    "With \"replay\", points replay the trace through re-placement policies (moesim\n"
    "replay) over lists of intervals, windows, copy budgets and migration modes: rows\n"
    "with kind replay and the columns policy, every, window, max_moves, migration,\n"
    "replacements, replicas_moved, bytes_moved, serve_us, migration_us, total_us,\n"
    "imbalance_before/after, ...: the best rebalancing interval in one run.\n"
    "The output has one row per point in point order, the same bytes whether it ran in\n"
    "one process, with threads, or under MPI.\n"
    "\n"
    "SPEC.json:\n"
    "  {\"traces\": [\"DIR\", {\"path\": \"DIR\", \"eval\": \"DIR2\" | \"split\": 0.5, \"seed\": 1,\n"
    "               \"label\": \"v2\", \"experts\": 64, \"phase\": \"prefill\"}],\n"
    "   \"algorithms\": [\"eplb\", {\"algo\": \"eplb\", \"groups\": 8, \"label\": \"eplb-hier\"}, ...],\n"
    "   \"routes\": [\"round-robin\", \"least-loaded\", ...],\n"
    "   \"clusters\": [\"2x8\", {\"rows\": 16, \"cols\": 8}],  \"slots\": [6, 8],\n"
    "   \"batches\": [4096, \"per-request\", {\"mode\": \"decode\", \"batch\": 64}],\n"
    "   \"options\": {\"cost_model\": \"roofline\", \"hw\": \"h100-sxm\", \"model\": ...,\n"
    "               \"capacity_factor\": 0, \"overflow\": \"accept\", \"origin_rows\": ...,\n"
    "               \"overlap\": \"none\", \"layer\": -1, \"seed\": 0, \"shared_expert\": false},\n"
    "   \"replay\": {\"policies\": [\"static\", \"periodic-eplb\", \"incremental\", \"oracle\"],\n"
    "              \"every\": [20, 50, \"200ktokens\"], \"window\": [0], \"max_moves\": [64, 256],\n"
    "              \"migration\": [\"stall\"], \"init\": \"eplb\", \"after_request\": 1000},\n"
    "   \"scaling\": {\"sizes\": [1e9, 1e10, 1e11, 1e12], \"gpu\": \"a100\", \"experts\": 64}}\n"
    "  Points are numbered traces outermost, batches innermost; grid points, then\n"
    "  replay points (runs innermost; a list multiplies only the policies that read\n"
    "  it; with replay, grid points only when algorithms is given), scaling points\n"
    "  last. include/moesim/sweep.h gives every rule.\n"
    "\n"
    "options:\n"
    "  -o FILE            results: .json gives JSON, anything else CSV (default stdout, CSV)\n"
    "  --format F         csv, json or table (overrides the extension)\n"
    "  --journal FILE     record every finished point there (default FILE.journal with -o)\n"
    "  --resume           continue from the journal: finished points are not run again\n"
    "  --threads N        points evaluated at once in this process (default: all cores;\n"
    "                     1 per rank under MPI)\n"
    "  --mpi MODE         auto (default: use MPI when started by mpirun/srun), on, off\n"
    "  --quiet / --progress   progress bar off / always (rank 0)\n"
    "test hooks:\n"
    "  --stop-after N     stop after N points evaluated (the journal keeps them; no output)\n"
    "  --fake N[:MS]      ignore SPEC: N synthetic points taking MS milliseconds each\n"
    "\n"
    "MPI: mpirun -np 4 moesim sweep spec.json -o r.csv   (rank 0 hands out points on\n"
    "request and writes the journal and output; see docs/SCALING.md)\n";

/* ------------------------------------------------------- fake points */

typedef struct fake {
    uint64_t n;
    long ms;
} fake;

static const char *const fake_cols[] = {"point", "value", "label"};
static const bool fake_num[] = {true, true, false};

static ms_status fake_eval(void *ctx, uint64_t index, char **cells, ms_error *err) {
    const fake *f = ctx;
    (void)err;
    if (f->ms > 0) {
        struct timespec ts = {f->ms / 1000, (f->ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    uint64_t h = ms_fnv1a(MS_FNV_OFFSET, &index, sizeof index);
    snprintf(cells[0], MS_SWEEP_CELL, "%" PRIu64, index);
    snprintf(cells[1], MS_SWEEP_CELL, "%.10g", (double)(h % 1000000) / 1000.0);
    snprintf(cells[2], MS_SWEEP_CELL, "p%" PRIu64 ",\"x\"", index % 7);
    return MS_OK;
}

/* ------------------------------------------------------------- MPI */

static bool launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", NULL};
    for (const char *const *v = vars; *v; v++)
        if (getenv(*v)) return true;
    return false;
}

static void table_out(FILE *fp, const ms_sweep_result *r, const ms_sweep_evaluator *ev) {
    /* the replay columns exist only in specs with replay points */
    static const char *const want[] = {"point", "trace", "algorithm", "route", "rows", "cols", "slots", "batch",
                                       "policy", "every", "every_unit", "max_moves", "imbalance_mean",
                                       "imbalance_p99", "layer_us_p99", "total_us", "tokens_per_second", "error",
                                       NULL};
    size_t idx[20], n = 0;
    for (const char *const *w = want; *w && n < 20; w++)
        for (size_t c = 0; c < ev->n_columns; c++)
            if (strcmp(ev->columns[c], *w) == 0) idx[n++] = c;
    if (n < 3)
        for (n = 0; n < ev->n_columns && n < 16; n++) idx[n] = n;
    for (size_t k = 0; k < n; k++) fprintf(fp, k ? " %14s" : "%6s", ev->columns[idx[k]]);
    fputc('\n', fp);
    for (uint64_t i = 0; i < r->n_points; i++) {
        char **cells = ms_sweep_row_cells(r->rows[i], ev->n_columns);
        if (!cells) continue;
        for (size_t k = 0; k < n; k++) {
            const char *s = cells[idx[k]];
            char *end;
            double v = strtod(s, &end);
            if (*s && !*end && strchr(s, '.')) fprintf(fp, k ? " %14.6g" : "%6.6g", v);
            else fprintf(fp, k ? " %14.60s" : "%6s", s);
        }
        fputc('\n', fp);
        ms_free(cells);
    }
}

int cmd_sweep(int argc, char **argv) {
    static const struct option longopts[] = {
        {"journal", required_argument, 0, 'J'}, {"resume", no_argument, 0, 'R'},
        {"threads", required_argument, 0, 't'}, {"mpi", required_argument, 0, 'M'},
        {"stop-after", required_argument, 0, 'S'}, {"fake", required_argument, 0, 'F'},
        {"format", required_argument, 0, 'f'},  {"quiet", no_argument, 0, 'q'},
        {"progress", no_argument, 0, 'p'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "sweep";
    ms_sweep_opts so;
    ms_sweep_opts_default(&so);
    cli_format fmt = CLI_CSV;
    bool fmt_given = false;
    const char *outpath = NULL, *journal = NULL, *mpi_mode = "auto", *fake_spec = NULL;
    int progress = 0;
    uint32_t u;
    ms_error err = {0};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'J': journal = optarg; break;
        case 'R': so.resume = true; break;
        case 't':
            if (cli_parse_u32(cmd, "--threads", optarg, &u)) return 2;
            if (u > 1024) return cli_usage(cmd, "--threads %u is too many", u);
            so.threads = (int)u;
            break;
        case 'M':
            if (strcmp(optarg, "auto") && strcmp(optarg, "on") && strcmp(optarg, "off"))
                return cli_usage(cmd, "--mpi must be auto, on or off, got '%s'", optarg);
            mpi_mode = optarg;
            break;
        case 'S': if (cli_parse_u64(cmd, "--stop-after", optarg, &so.stop_after)) return 2; break;
        case 'F': fake_spec = optarg; break;
        case 'f':
            if (cli_parse_format(cmd, optarg, &fmt)) return 2;
            fmt_given = true;
            break;
        case 'o': outpath = optarg; break;
        case 'q': progress = -1; break;
        case 'p': progress = 1; break;
        case 'h':
        {
            /* one write: a reader that stops early (grep -q) must not meet a second one */
            char help[8192];
            snprintf(help, sizeof help, "%s\nthis build: MPI %s\n", usage_text,
                     ms_sweep_have_mpi() ? "available" : "not available (sweeps run locally)");
            cli_print_help(help);
            return 0;
        }
        default: return cli_usage(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    fake fk = {0, 0};
    if (fake_spec) {
        char *end;
        unsigned long long n = strtoull(fake_spec, &end, 10);
        long ms = 0;
        if (*end == ':') ms = strtol(end + 1, &end, 10);
        if (n == 0 || n > 10000000 || *end || ms < 0 || ms > 60000)
            return cli_usage(cmd, "--fake expects N[:MS] (1..10^7 points, 0..60000 ms), got '%s'", fake_spec);
        fk.n = n;
        fk.ms = ms;
        if (optind < argc) return cli_usage(cmd, "--fake takes no SPEC");
    } else {
        if (optind >= argc) return cli_usage(cmd, "no SPEC.json given");
        if (optind + 1 < argc) return cli_usage(cmd, "one SPEC.json only, got '%s' too", argv[optind + 1]);
    }
    if (!fmt_given && outpath) {
        size_t n = strlen(outpath);
        fmt = n > 5 && strcmp(outpath + n - 5, ".json") == 0 ? CLI_JSON : CLI_CSV;
    }
    bool to_file = outpath && strcmp(outpath, "-") != 0;
    if (!journal && to_file) {
        static char jbuf[4096];
        if (snprintf(jbuf, sizeof jbuf, "%s.journal", outpath) >= (int)sizeof jbuf)
            return cli_usage(cmd, "-o path too long");
        journal = jbuf;
    }
    if (so.resume && !journal) return cli_usage(cmd, "--resume needs a journal: give -o FILE or --journal FILE");
    so.journal = journal;

    /* spec first (a bad spec fails before MPI starts) */
    ms_sweep_spec *spec = NULL;
    ms_sweep_evaluator ev;
    uint64_t digest, n_points;
    if (fake_spec) {
        ev.n_columns = 3;
        ev.columns = fake_cols;
        ev.numeric = fake_num;
        ev.eval = fake_eval;
        ev.ctx = &fk;
        n_points = fk.n;
        digest = ms_fnv1a(MS_FNV_OFFSET, &fk.n, sizeof fk.n);
    } else {
        if (ms_sweep_spec_load(argv[optind], &spec, &err) != MS_OK) return cli_fail(cmd, &err);
        ms_sweep_spec_evaluator(spec, 1, &ev);
        n_points = ms_sweep_spec_points(spec);
        digest = ms_sweep_spec_digest(spec);
    }
    so.spec_digest = digest;

    int rank = 0;
    bool mpi_started = false;
    bool want_mpi = strcmp(mpi_mode, "on") == 0 || (strcmp(mpi_mode, "auto") == 0 && launched_by_mpi());
#ifdef MOESIM_HAVE_MPI
    if (want_mpi) {
        int provided = 0;
        if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
            ms_error_set(&err, MS_E_INTERNAL, "MPI_Init_thread failed");
            ms_sweep_spec_free(spec);
            return cli_fail(cmd, &err);
        }
        mpi_started = true;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    }
#else
    if (strcmp(mpi_mode, "on") == 0) {
        ms_sweep_spec_free(spec);
        ms_error_set(&err, MS_E_UNSUPPORTED, "this build has no MPI (install an MPI and rebuild)");
        return cli_fail(cmd, &err);
    }
    if (want_mpi) { /* started by mpirun without MPI support: rank 0 does it all, the others stand by */
        static const char *const rv[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", NULL};
        for (const char *const *v = rv; *v; v++) {
            const char *r = getenv(*v);
            if (r && strcmp(r, "0") != 0) {
                ms_sweep_spec_free(spec);
                return 0;
            }
        }
        fprintf(stderr, "moesim sweep: note: this build has no MPI: rank 0 runs the whole sweep locally\n");
    }
#endif
    so.mpi = mpi_started;
    cli_progress bar;
    cli_progress_init(&bar, "sweep", rank == 0 ? progress : -1);
    so.progress = cli_progress_fn;
    so.progress_ctx = &bar;

    ms_sweep_result *res = NULL;
    double t0 = ms_now();
    ms_status st = ms_sweep_run(n_points, &ev, &so, &res, &err);
    double secs = ms_now() - t0;
    cli_progress_done(&bar);
    int rc = 0;
    if (st != MS_OK) {
        if (rank == 0) rc = cli_fail(cmd, &err);
        else rc = ms_status_exit_code(st);
    } else if (rank == 0) {
        if (res->done < res->n_points) {
            if (progress >= 0)
                fprintf(stderr,
                        "moesim sweep: stopped after %" PRIu64 " of %" PRIu64 " points (--stop-after); the journal "
                        "%s keeps them: run again with --resume\n",
                        res->done, res->n_points, journal ? journal : "(none)");
        } else {
            ms_afile f = {0};
            rc = cli_open_output(cmd, outpath, &f);
            if (!rc) {
                st = fmt == CLI_JSON  ? ms_sweep_write_json(res, &ev, digest, f.fp, &err)
                     : fmt == CLI_CSV ? ms_sweep_write_csv(res, &ev, f.fp, &err)
                                      : (table_out(f.fp, res, &ev), MS_OK);
                if (st != MS_OK) {
                    ms_afile_abort(&f);
                    rc = cli_fail(cmd, &err);
                } else {
                    rc = cli_commit_output(cmd, &f);
                }
            }
        }
        if (!rc && progress >= 0 && to_file)
            fprintf(stderr,
                    "moesim sweep: %" PRIu64 " points: %" PRIu64 " from the journal, %" PRIu64
                    " evaluated (%d process%s), %.2f s%s%s\n",
                    res->n_points, res->resumed, res->evaluated, res->ranks, res->ranks == 1 ? "" : "es", secs,
                    res->done == res->n_points ? " -> " : "", res->done == res->n_points ? outpath : "");
        if (!rc && res->ignored_lines && progress >= 0)
            fprintf(stderr, "moesim sweep: note: %" PRIu64 " journal line(s) ignored (torn or duplicate)\n",
                    res->ignored_lines);
    }
    ms_sweep_result_free(res);
    ms_sweep_spec_free(spec);
#ifdef MOESIM_HAVE_MPI
    if (mpi_started) MPI_Finalize();
#endif
    return rc;
}
