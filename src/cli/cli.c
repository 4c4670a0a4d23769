/* cli.c - shared helpers of the command-line front end. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

/* Parses a "@train" / "@eval" suffix ("@train=0.7,seed=3") off path, in place.
 * Returns 0 (no suffix), 1 (train) or 2 (eval); -1 on a malformed suffix. */
static int split_suffix(char *path, double *fraction, uint64_t *seed) {
    char *at = strrchr(path, '@');
    if (!at) return 0;
    int part;
    char *p = at + 1;
    if (strncmp(p, "train", 5) == 0) part = 1, p += 5;
    else if (strncmp(p, "eval", 4) == 0) part = 2, p += 4;
    else return 0; /* an '@' that is part of the path */
    *fraction = 0.5;
    *seed = 0;
    if (*p == '=') {
        char *end;
        *fraction = strtod(p + 1, &end);
        if (end == p + 1 || !(*fraction > 0 && *fraction < 1)) return -1;
        p = end;
    }
    if (strncmp(p, ",seed=", 6) == 0) {
        char *end;
        *seed = strtoull(p + 6, &end, 10);
        if (end == p + 6) return -1;
        p = end;
    }
    if (*p) return -1;
    *at = '\0';
    return part;
}

int cli_load_trace(const char *cmd, char **paths, int n, const cli_trace_opts *o, ms_trace **out) {
    int part = 0;
    double fraction = 0.5;
    uint64_t seed = 0;
    char *copies[64];
    if (n > 64) return cli_usage(cmd, "at most 64 trace paths");
    for (int i = 0; i < n; i++) {
        copies[i] = strdup(paths[i]);
        if (!copies[i]) return 1;
        int p = split_suffix(copies[i], &fraction, &seed);
        if (p < 0 || (p && i != n - 1)) {
            for (int j = 0; j <= i; j++) free(copies[j]);
            return cli_usage(cmd, "'%s': a split suffix is @train or @eval, optionally =FRACTION and "
                             ",seed=N (e.g. trace@eval=0.7,seed=3), on the last trace path", paths[i]);
        }
        part = p ? p : part;
    }
    cli_progress bar;
    cli_progress_init(&bar, "loading", o->progress);
    ms_trace_load_opts lo = {.n_experts = o->n_experts, .threads = o->threads,
                             .progress = cli_progress_fn, .progress_ctx = &bar};
    ms_error err = {0};
    ms_status st = ms_trace_load((const char *const *)copies, (size_t)n, &lo, out, &err);
    for (int i = 0; i < n; i++) free(copies[i]);
    cli_progress_done(&bar);
    if (st != MS_OK) return cli_fail(cmd, &err);
    if ((*out)->n_short_rows && o->progress >= 0)
        fprintf(stderr, "moesim %s: note: %llu request(s) have one routed row fewer than prompt + output "
                        "(the last generated token was never fed back)\n",
                cmd, (unsigned long long)(*out)->n_short_rows);
    if (part) {
        ms_trace *train, *eval;
        st = ms_trace_split(*out, fraction, seed, &train, &eval, &err);
        ms_trace_free(*out);
        *out = NULL;
        if (st != MS_OK) return cli_fail(cmd, &err);
        *out = part == 1 ? train : eval;
        ms_trace_free(part == 1 ? eval : train);
    }
    return 0;
}
