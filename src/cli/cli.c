/* cli.c - shared helpers of the command-line front end. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_fail(const char *cmd, const ms_error *err) {
    fprintf(stderr, "moesim %s: error: %s\n", cmd, err->msg[0] ? err->msg : ms_status_name(err->status));
    return ms_status_exit_code(err->status);
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "moesim %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry 'moesim %s --help'\n", cmd);
    return 2;
}

int cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return cli_usage(cmd, "%s expects a non-negative integer, got '%s'", opt, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return cli_usage(cmd, "%s expects a non-negative integer, got '%s'", opt, s);
    *out = v;
    return 0;
}

int cli_parse_u32(const char *cmd, const char *opt, const char *s, uint32_t *out) {
    uint64_t v;
    if (cli_parse_u64(cmd, opt, s, &v)) return 2;
    if (v > UINT32_MAX) return cli_usage(cmd, "%s: %s is too large", opt, s);
    *out = (uint32_t)v;
    return 0;
}

int cli_parse_cluster(const char *cmd, const char *s, ms_cluster *out) {
    unsigned r = 0, c = 0, n = 0;
    char tail;
    if (sscanf(s, "%ux%ux%u%c", &r, &c, &n, &tail) != 3 || r == 0 || c == 0 || n == 0)
        return cli_usage(cmd, "--cluster expects RxCxS (rows x cols x slots per device), got '%s'", s);
    out->rows = r;
    out->cols = c;
    out->slots_per_device = n;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = s && *s ? strtod(s, &end) : 0;
    if (!s || !*s || errno || *end || !isfinite(v)) return cli_usage(cmd, "%s expects a number, got '%s'", opt, s ? s : "");
    *out = v;
    return 0;
}

int cli_parse_list(const char *cmd, const char *opt, const char *s, double *out, uint32_t cap, uint32_t *n) {
    char buf[1024];
    if (strlen(s) >= sizeof buf) return cli_usage(cmd, "%s: list too long", opt);
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n >= cap) return cli_usage(cmd, "%s: at most %u values", opt, cap);
        char *end = NULL;
        double v = strtod(t, &end);
        if (!end || *end || end == t || !isfinite(v) || v < 0)
            return cli_usage(cmd, "%s: '%s' is not a non-negative number", opt, t);
        out[(*n)++] = v;
    }
    if (*n == 0) return cli_usage(cmd, "%s: empty list", opt);
    return 0;
}

void cli_print_help(const char *text) {
    fflush(stdout);
    size_t n = strlen(text);
    while (n) {
        ssize_t k = write(STDOUT_FILENO, text, n);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            return;
        }
        text += k;
        n -= (size_t)k;
    }
}

int cli_parse_format(const char *cmd, const char *s, cli_format *out) {
    if (strcmp(s, "table") == 0) *out = CLI_TABLE;
    else if (strcmp(s, "json") == 0) *out = CLI_JSON;
    else if (strcmp(s, "csv") == 0) *out = CLI_CSV;
    else return cli_usage(cmd, "--format must be table, json or csv, got '%s'", s);
    return 0;
}

void cli_progress_init(cli_progress *p, const char *label, int mode) {
    p->label = label;
    p->enabled = mode > 0 || (mode == 0 && isatty(STDERR_FILENO));
    p->start = ms_now();
    p->last_draw = 0;
}

void cli_progress_fn(void *ctx, uint64_t done, uint64_t total) {
    cli_progress *p = ctx;
    if (!p || !p->enabled) return;
    double now = ms_now();
    if (done < total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    double frac = total ? (double)done / (double)total : 1.0;
    double elapsed = now - p->start;
    double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0;
    int width = 30, fill = (int)(frac * width);
    char bar[31];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r%-10s [%s] %3d%% %llu/%llu  %.1fs elapsed, ETA %.1fs ", p->label, bar,
            (int)(frac * 100), (unsigned long long)done, (unsigned long long)total, elapsed, eta);
    fflush(stderr);
}

void cli_progress_done(cli_progress *p) {
    if (p->enabled && p->last_draw > 0) fprintf(stderr, "\n");
}

int cli_open_output(const char *cmd, const char *path, ms_afile *f) {
    ms_error err = {0};
    if (ms_afile_open(f, path ? path : "-", &err) != MS_OK) return cli_fail(cmd, &err);
    return 0;
}

int cli_commit_output(const char *cmd, ms_afile *f) {
    ms_error err = {0};
    if (ms_afile_commit(f, &err) != MS_OK) return cli_fail(cmd, &err);
    return 0;
}

/* ------------------------------------------------------ trace arguments
 *
 * A trace argument is PART or PART+PART+... (concatenated in that order);
 * a part is a path with optional suffixes, in any order, at most one of
 * each kind: @train[=F][,seed=S] or @eval[=F][,seed=S] (one side of a
 * seeded request split of that part) and @permute=SEED (its expert ids
 * relabelled per layer). An argument, or a part, that names an existing path
 * is taken literally, so '@' and '+' inside real paths keep working; when
 * '+' splits the argument in several ways, the one with the most parts whose
 * paths exist wins. */

#define CLI_MAX_PARTS 64

static const char *trace_syntax =
    "a trace is PATH[@train|@eval[=FRACTION][,seed=N]][@permute=SEED], several joined with '+' "
    "(e.g. T+T@permute=7, T@eval+T@eval@permute=7)";

typedef struct trace_part {
    char *text;            /* the part as written (owned) */
    char *path;            /* text without its suffixes (owned) */
    int split;             /* 0 none, 1 @train, 2 @eval */
    double fraction;
    uint64_t split_seed;
    bool permute;
    uint64_t permute_seed;
} trace_part;

static bool path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Parses "=F" and ",seed=N" after @train/@eval (p points past the keyword).
 * Returns false when malformed. */
static bool parse_split_args(const char *p, double *fraction, uint64_t *seed) {
    *fraction = 0.5;
    *seed = 0;
    char *end;
    if (*p == '=') {
        *fraction = strtod(p + 1, &end);
        if (end == p + 1 || !(*fraction > 0 && *fraction < 1)) return false;
        p = end;
    }
    if (strncmp(p, ",seed=", 6) == 0) {
        if (!isdigit((unsigned char)p[6])) return false;
        errno = 0;
        *seed = strtoull(p + 6, &end, 10);
        if (errno) return false;
        p = end;
    }
    return *p == '\0';
}

/* Strips the suffixes off part->path (a copy of part->text) from the right
 * until what is left names an existing path; an '@' followed by anything but
 * train, eval or permute belongs to the path.
 * Returns false (and a usage message in msg) on a malformed or repeated
 * suffix. */
static bool parse_suffixes(trace_part *part, char *msg, size_t len) {
    char *at;
    while ((at = strrchr(part->path, '@')) != NULL) {
        const char *kw = at + 1;
        if (strncmp(kw, "train", 5) == 0 || strncmp(kw, "eval", 4) == 0) {
            int which = kw[0] == 't' ? 1 : 2;
            if (part->split) {
                snprintf(msg, len, "'%s': more than one @train/@eval suffix", part->text);
                return false;
            }
            if (!parse_split_args(kw + (which == 1 ? 5 : 4), &part->fraction, &part->split_seed)) {
                snprintf(msg, len, "'%s': a split suffix is @train or @eval, optionally =FRACTION in (0, 1) "
                         "and ,seed=N (e.g. T@eval=0.7,seed=3)", part->text);
                return false;
            }
            part->split = which;
        } else if (strncmp(kw, "permute", 7) == 0) {
            char *end;
            errno = 0;
            if (part->permute || kw[7] != '=' || !isdigit((unsigned char)kw[8]) ||
                (part->permute_seed = strtoull(kw + 8, &end, 10), errno || *end)) {
                snprintf(msg, len, "'%s': the permutation suffix is @permute=SEED (a non-negative integer), "
                         "at most once per part", part->text);
                return false;
            }
            part->permute = true;
        } else {
            break;
        }
        *at = '\0';
        if (path_exists(part->path)) break; /* what is left names a path, '@' and all */
    }
    if (!part->path[0]) {
        snprintf(msg, len, "'%s': no path before the suffix", part->text);
        return false;
    }
    return true;
}

static void part_clear(trace_part *p) {
    free(p->text);
    free(p->path);
    memset(p, 0, sizeof *p);
}

/* Fills part from text[0..len). Returns 0, 1 (out of memory) or 2 (usage
 * error in msg). A text naming an existing path is taken literally. */
static int part_parse(const char *text, size_t len, trace_part *part, char *msg, size_t mlen) {
    memset(part, 0, sizeof *part);
    part->text = strndup(text, len);
    part->path = strndup(text, len);
    if (!part->text || !part->path) {
        part_clear(part);
        return 1;
    }
    if (len == 0) {
        snprintf(msg, mlen, "an empty part");
        part_clear(part);
        return 2;
    }
    if (path_exists(part->text)) return 0;
    if (!parse_suffixes(part, msg, mlen)) {
        part_clear(part);
        return 2;
    }
    return 0;
}

/* The '+' grouping search: piece i of the argument is arg[pos[i] ..
 * pos[i+1]-1); cut[d] is the piece where part d ends. */
typedef struct grouping {
    const char *arg;
    size_t pos[CLI_MAX_PARTS + 1];
    int pieces;
    bool dead[CLI_MAX_PARTS];   /* no grouping works from this piece on */
    int cut[CLI_MAX_PARTS];
    int n;
} grouping;

/* 1 when pieces i..j-1 form a part that parses and names an existing path,
 * 0 when not, -1 out of memory. */
static int part_fits(const grouping *g, int i, int j) {
    trace_part tp;
    char msg[512];
    int rc = part_parse(g->arg + g->pos[i], g->pos[j] - 1 - g->pos[i], &tp, msg, sizeof msg);
    if (rc == 1) return -1;
    int ok = rc == 0 && path_exists(tp.path);
    if (rc == 0) part_clear(&tp);
    return ok;
}

/* Groups pieces i.. into parts, shortest part first: 1 found (g->cut,
 * g->n), 0 none, -1 out of memory. */
static int group_from(grouping *g, int i, int depth) {
    if (i == g->pieces) {
        g->n = depth;
        return 1;
    }
    if (g->dead[i]) return 0;
    for (int j = i + 1; j <= g->pieces; j++) {
        int ok = part_fits(g, i, j);
        if (ok < 0) return -1;
        if (!ok) continue;
        g->cut[depth] = j;
        int r = group_from(g, j, depth + 1);
        if (r) return r;
    }
    g->dead[i] = true;
    return 0;
}

/* Splits arg into parts at its '+' signs, except where a '+' belongs to an
 * existing path (the grouping whose parts all exist, shorter parts tried
 * first); when no grouping works, at every '+', so that the first bad part
 * is reported (a missing path by the loader). Returns 0, 1 (out of memory)
 * or 2 (usage error printed). */
static int split_parts(const char *cmd, const char *arg, trace_part *parts, int *n_parts) {
    grouping g = {.arg = arg};
    for (size_t i = 0;; i++) {
        if (arg[i] == '+' || arg[i] == '\0') {
            if (g.pieces == CLI_MAX_PARTS) return cli_usage(cmd, "'%s': at most %d parts", arg, CLI_MAX_PARTS);
            g.pos[++g.pieces] = i + 1;
        }
        if (arg[i] == '\0') break;
    }
    int found = group_from(&g, 0, 0);
    if (found < 0) return 1;
    if (!found) {
        g.n = g.pieces;
        for (int i = 0; i < g.pieces; i++) g.cut[i] = i + 1;
    }
    for (int i = 0; i < g.pieces; i++)
        if (g.pos[i + 1] - 1 == g.pos[i])
            return cli_usage(cmd, "'%s' has an empty part (nothing before, between or after '+' signs); %s", arg,
                             trace_syntax);
    char msg[512];
    for (int d = 0, from = 0; d < g.n; from = g.cut[d++]) {
        int rc = part_parse(arg + g.pos[from], g.pos[g.cut[d]] - 1 - g.pos[from], &parts[d], msg, sizeof msg);
        if (rc) {
            for (int k = 0; k < d; k++) part_clear(&parts[k]);
            return rc == 1 ? 1 : cli_usage(cmd, "%s; %s", msg, trace_syntax);
        }
    }
    *n_parts = g.n;
    return 0;
}

/* Loads paths[0..n) as one trace with a progress bar and the short-rows
 * note. Returns 0 or the exit code (error printed). */
static int load_paths(const char *cmd, char **paths, int n, const cli_trace_opts *o, ms_trace **out) {
    cli_progress bar;
    cli_progress_init(&bar, "loading", o->progress);
    ms_trace_load_opts lo = {.n_experts = o->n_experts, .threads = o->threads,
                             .progress = cli_progress_fn, .progress_ctx = &bar};
    ms_error err = {0};
    ms_status st = ms_trace_load((const char *const *)paths, (size_t)n, &lo, out, &err);
    cli_progress_done(&bar);
    if (st != MS_OK) return cli_fail(cmd, &err);
    if ((*out)->n_short_rows && o->progress >= 0)
        fprintf(stderr, "moesim %s: note: %llu request(s) have one routed row fewer than prompt + output "
                        "(the last generated token was never fed back)\n",
                cmd, (unsigned long long)(*out)->n_short_rows);
    return 0;
}

/* The trace a part names: t after the part's split and permutation, in a
 * new trace (*out != t), or t itself when the part has neither. Returns 0
 * or the exit code (error printed). */
static int apply_suffixes(const char *cmd, const trace_part *p, const ms_trace *t, ms_trace **out) {
    ms_error err = {0};
    ms_trace *cur = (ms_trace *)t;
    if (p->split) {
        ms_trace *train, *eval;
        if (ms_trace_split(t, p->fraction, p->split_seed, &train, &eval, &err) != MS_OK) return cli_fail(cmd, &err);
        cur = p->split == 1 ? train : eval;
        ms_trace_free(p->split == 1 ? eval : train);
    }
    if (p->permute) {
        ms_trace *perm;
        ms_status st = ms_trace_permute_experts(cur, p->permute_seed, &perm, &err);
        if (cur != t) ms_trace_free(cur);
        if (st != MS_OK) return cli_fail(cmd, &err);
        cur = perm;
    }
    *out = cur;
    return 0;
}

/* The legacy form: several paths loaded as one trace, a split suffix on the
 * last one applying to all of them. */
static int load_several(const char *cmd, char **paths, int n, const cli_trace_opts *o, ms_trace **out) {
    trace_part parts[CLI_MAX_PARTS];
    char *bases[CLI_MAX_PARTS];
    char msg[512];
    int rc = 0, done = 0;
    for (; done < n && !rc; done++) {
        rc = part_parse(paths[done], strlen(paths[done]), &parts[done], msg, sizeof msg);
        if (rc == 2) rc = cli_usage(cmd, "%s; %s", msg, trace_syntax);
        if (rc) break;
        const trace_part *p = &parts[done];
        bases[done] = p->path;
        if (p->permute || (strchr(p->path, '+') && !path_exists(p->path)))
            rc = cli_usage(cmd, "'%s': @permute and '+' need the trace as one argument (e.g. 'A+B@permute=7'), "
                           "not several paths", p->text);
        else if (p->split && done != n - 1)
            rc = cli_usage(cmd, "'%s': with several trace paths, only the last may carry @train or @eval "
                           "(it splits all of them)", p->text);
    }
    if (!rc) rc = load_paths(cmd, bases, n, o, out);
    if (!rc && parts[n - 1].split) {
        ms_trace *t = *out;
        rc = apply_suffixes(cmd, &parts[n - 1], t, out);
        ms_trace_free(t);
        if (rc) *out = NULL;
    }
    for (int i = 0; i < done; i++) part_clear(&parts[i]);
    return rc;
}

int cli_load_trace(const char *cmd, char **paths, int n, const cli_trace_opts *o, ms_trace **out) {
    *out = NULL;
    if (n > CLI_MAX_PARTS) return cli_usage(cmd, "at most %d trace paths", CLI_MAX_PARTS);
    if (n > 1) return load_several(cmd, paths, n, o, out);
    if (n < 1) return cli_usage(cmd, "no trace given");
    trace_part parts[CLI_MAX_PARTS];
    int n_parts = 0, rc;
    if (path_exists(paths[0])) {
        rc = part_parse(paths[0], strlen(paths[0]), &parts[0], NULL, 0);
        n_parts = rc ? 0 : 1;
    } else {
        rc = split_parts(cmd, paths[0], parts, &n_parts);
    }
    bool composite = n_parts > 1;
    for (int i = 0; i < n_parts; i++) composite = composite || parts[i].permute;
    /* each distinct path is loaded once; bases[] own them */
    ms_trace *bases[CLI_MAX_PARTS] = {NULL}, *acc = NULL;
    bool acc_owned = false;
    ms_error err = {0};
    for (int i = 0; i < n_parts && !rc; i++) {
        int b = 0;
        while (b < i && strcmp(parts[b].path, parts[i].path) != 0) b++;
        if (b == i) rc = load_paths(cmd, &parts[i].path, 1, o, &bases[i]);
        ms_trace *pt = NULL;
        if (!rc) rc = apply_suffixes(cmd, &parts[i], bases[b], &pt);
        if (rc) break;
        bool owned = pt != bases[b];
        if (composite && owned) snprintf(pt->label, sizeof pt->label, "%.*s", (int)sizeof pt->label - 1, parts[i].text);
        if (!acc) {
            acc = pt;
            acc_owned = owned;
            continue;
        }
        ms_trace *cat;
        ms_status st = ms_trace_concat(acc, pt, &cat, &err);
        if (acc_owned) ms_trace_free(acc);
        if (owned) ms_trace_free(pt);
        acc = NULL;
        if (st != MS_OK) {
            rc = cli_fail(cmd, &err);
            break;
        }
        acc = cat;
        acc_owned = true;
    }
    if (rc && acc_owned) ms_trace_free(acc);
    else if (!rc) *out = acc;
    for (int i = 0; i < n_parts; i++) {
        if (bases[i] != *out) ms_trace_free(bases[i]);
        part_clear(&parts[i]);
    }
    return rc;
}
