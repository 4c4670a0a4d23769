/* cmd_gen.c - moesim gen: write a synthetic routing trace as per-request npz
 * files (model presets, or popularity fitted to a real trace). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "moesim/gen.h"
#include "moesim/trace.h"

static const char *CMD = "gen";

static void help(FILE *fp) {
    fprintf(fp,
        "usage: moesim gen (--model NAME | --fit TRACE | --layers L --experts E --top-k K)\n"
        "                  [--requests N] [options] -o DIR\n\n"
        "Writes a synthetic MoE routing trace as one npz per request (the vLLM/SGLang layout:\n"
        "request_id, prompt_token_ids, output_token_ids, routed_experts [P+D, layers, top_k],\n"
        "num_experts, and routed_experts_ranked with --ranked). Same options and seed, same bytes.\n\n"
        "shape:\n"
        "  --model NAME          a preset (see --list-models): deepseek-v3, deepseek-v2-lite,\n"
        "                        llama4-maverick, qwen3-235b-a22b, mixtral-8x7b, ...\n"
        "  --list-models         print the presets and where their numbers come from\n"
        "  --layers L, --top-k K, --groups G, --topk-groups TG   override the preset\n"
        "  --experts N           with --fit: expert count used to read TRACE (experts never\n"
        "                        chosen still count); otherwise overrides the preset\n"
        "  --ranked R            also write routed_experts_ranked: R > top-k choices in rank order\n"
        "requests:\n"
        "  --requests N          number of requests (default with --fit: as many as TRACE has)\n"
        "  --tokens T            scale the lengths so that all requests hold T tokens in total\n"
        "  --prompt-mean M       log-normal prompt lengths, mean M (default 512)\n"
        "  --prompt-sigma S      ... and sigma of log (default 1.0)\n"
        "  --decode M            log-normal output lengths, mean M (default 256; 0 = prefill only)\n"
        "  --decode-sigma S      ... and sigma of log (default 0.8)\n"
        "  --prefill-only        no output tokens (same as --decode 0)\n"
        "  --max-len N           cap on each prompt and output length (default 16384)\n"
        "                        (with --fit and no length option, lengths are resampled from TRACE)\n"
        "router:\n"
        "  --skew SPEC           expert popularity per layer: zipf:S, lognormal:SIGMA or uniform\n"
        "                        (default: the preset's)\n"
        "  --fit TRACE           match each layer's expert loads to a real trace (a directory or\n"
        "                        .npz file, with the trace syntax of every command: T@eval, A+B,\n"
        "                        T@permute=S; or a CSV load matrix with one line per layer); the\n"
        "                        max/mean ratio and hottest-10%% share per layer are reproduced\n"
        "  --fit-iters N         calibration rounds of --fit (default 5)\n"
        "  --topics C            latent expert clusters that tokens favour together (default 8, at most\n"
        "                        experts/4; 0 = off)\n"
        "  --coact B             log boost of the token's cluster (default 1.0)\n"
        "  --topic-switch P      per-token probability that a request changes topic (default 1/64)\n"
        "  --drift X             std of the log-popularity random-walk step per window (default 0.02;\n"
        "                        0 with --fit)\n"
        "  --drift-window N      tokens per drift step (default 4096)\n"
        "  --seed S              random seed (default 1)\n"
        "shift (a tenant change, for re-placement over time):\n"
        "  --shift N | P%%        from request N on (file order = arrival order), or after P%% of\n"
        "                        the requests, each layer's expert popularity, drift and topic\n"
        "                        clusters move to other experts by a seeded permutation; the\n"
        "                        requests before it are the same as without --shift\n"
        "  --shift-seed S        seed of that permutation (default: --seed); it is the one\n"
        "                        TRACE@permute=S applies to a trace\n"
        "output:\n"
        "  -o, --output DIR      directory to write (created; must not already hold npz files)\n"
        "  --force               replace the npz files already in DIR\n"
        "  --compress            DEFLATE the npz members (like savez_compressed; slower)\n"
        "  --no-compress         store them (default)\n"
        "  --format F            summary on stdout: table (default), json or csv\n"
        "  --threads N           worker threads (default: all cores); output does not depend on it\n"
        "  --quiet, --progress   no progress bar / force one\n\n"
        "example:\n"
        "  moesim gen --model deepseek-v3 --requests 1000 --tokens 1000000 --ranked 16 -o trace-v3\n"
        "  moesim gen --model deepseek-v3 --fit ../shared/data/deepseek-v2-lite-puffin --requests 500 -o v3fit\n"
        "  moesim gen --model deepseek-v3 --requests 2000 --tokens 2000000 --shift 50%% -o v3shift\n");
}

static void list_models(FILE *fp) {
    fprintf(fp, "%-18s %6s %7s %5s %6s %9s  %-14s %s\n", "model", "layers", "experts", "top_k", "groups",
            "topk_grp", "default skew", "source");
    for (size_t i = 0; i < ms_gen_preset_count(); i++) {
        const ms_gen_preset *p = ms_gen_preset_at(i);
        char sk[64];
        ms_gen_skew_format(&p->skew, sk, sizeof sk);
        fprintf(fp, "%-18s %6u %7u %5u %6u %9u  %-14s %s\n", p->name, p->n_layers, p->n_experts, p->top_k,
                p->n_groups, p->topk_groups, sk, p->source);
    }
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Counts (and with remove, deletes) the *.npz files in dir; sums their bytes.
 * A missing dir counts as empty. Returns -1 (errno set) on failure. */
static int scan_npz(const char *dir, bool remove_them, uint64_t *count, uint64_t *bytes) {
    *count = 0;
    *bytes = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    char path[4096];
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (!ends_with(de->d_name, ".npz")) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path) continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (remove_them && unlink(path) != 0) {
            rc = -1;
            break;
        }
        (*count)++;
        *bytes += (uint64_t)st.st_size;
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return rc;
}

typedef struct gen_cli {
    const char *model, *fit, *out, *skew, *shift;
    cli_format format;
    int progress_mode;
    bool compress, force, prefill_only, list;
    bool has_requests, has_layers, has_experts, has_topk, has_groups, has_topk_groups, has_lengths;
    bool has_topics, has_drift, has_shift_seed;
    uint32_t layers, experts, top_k, groups, topk_groups;
} gen_cli;

/* Value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"), or NULL after a
 * usage error. */
static const char *opt_value(int argc, char **argv, int *i, const char *eq) {
    if (eq) return eq + 1;
    if (*i + 1 >= argc) {
        cli_usage(CMD, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_args(int argc, char **argv, gen_cli *c, ms_gen_opts *o) {
    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *a = argv[i], *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        if (nl >= sizeof name) return cli_usage(CMD, "unknown option '%s'", a);
        memcpy(name, a, nl);
        name[nl] = '\0';
#define IS(s) (strcmp(name, s) == 0)
#define VAL() do { if (!(v = opt_value(argc, argv, &i, eq))) return 2; } while (0)
        const char *v = NULL;
        if (IS("--help") || IS("-h")) {
            help(stdout);
            return -1;
        } else if (IS("--list-models")) {
            c->list = true;
        } else if (IS("--compress")) {
            c->compress = true;
        } else if (IS("--no-compress")) {
            c->compress = false;
        } else if (IS("--force")) {
            c->force = true;
        } else if (IS("--prefill-only")) {
            c->prefill_only = c->has_lengths = true;
        } else if (IS("--quiet") || IS("-q")) {
            c->progress_mode = -1;
        } else if (IS("--progress")) {
            c->progress_mode = 1;
        } else if (IS("--model") || IS("-m")) {
            VAL();
            c->model = v;
        } else if (IS("--fit")) {
            VAL();
            c->fit = v;
        } else if (IS("-o") || IS("--output")) {
            VAL();
            c->out = v;
        } else if (IS("--skew")) {
            VAL();
            c->skew = v;
        } else if (IS("--format")) {
            VAL();
            if (cli_parse_format(CMD, v, &c->format)) return 2;
        } else if (IS("--requests")) {
            VAL();
            if (cli_parse_u64(CMD, name, v, &o->n_requests)) return 2;
            c->has_requests = true;
        } else if (IS("--tokens")) {
            VAL();
            if (cli_parse_u64(CMD, name, v, &o->total_tokens)) return 2;
            if (o->total_tokens == 0) return cli_usage(CMD, "--tokens must be positive");
        } else if (IS("--prompt-mean")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->prompt_mean)) return 2;
            c->has_lengths = true;
        } else if (IS("--prompt-sigma")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->prompt_sigma)) return 2;
            c->has_lengths = true;
        } else if (IS("--decode") || IS("--decode-mean") || IS("--output-mean")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->output_mean)) return 2;
            c->has_lengths = true;
        } else if (IS("--decode-sigma")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->output_sigma)) return 2;
            c->has_lengths = true;
        } else if (IS("--max-len")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &o->max_len)) return 2;
            c->has_lengths = true;
        } else if (IS("--layers")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &c->layers)) return 2;
            c->has_layers = true;
        } else if (IS("--experts")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &c->experts)) return 2;
            c->has_experts = true;
        } else if (IS("--top-k")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &c->top_k)) return 2;
            c->has_topk = true;
        } else if (IS("--groups")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &c->groups)) return 2;
            c->has_groups = true;
        } else if (IS("--topk-groups")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &c->topk_groups)) return 2;
            c->has_topk_groups = true;
        } else if (IS("--ranked")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &o->n_ranked)) return 2;
        } else if (IS("--fit-iters")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &o->fit_iters)) return 2;
        } else if (IS("--topics")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &o->n_topics)) return 2;
            c->has_topics = true;
        } else if (IS("--coact")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->topic_strength)) return 2;
        } else if (IS("--topic-switch")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->topic_switch)) return 2;
        } else if (IS("--drift")) {
            VAL();
            if (cli_parse_double(CMD, name, v, &o->drift)) return 2;
            c->has_drift = true;
        } else if (IS("--drift-window")) {
            VAL();
            if (cli_parse_u32(CMD, name, v, &o->drift_window)) return 2;
        } else if (IS("--seed")) {
            VAL();
            if (cli_parse_u64(CMD, name, v, &o->seed)) return 2;
        } else if (IS("--shift")) {
            VAL();
            c->shift = v;
        } else if (IS("--shift-seed")) {
            VAL();
            if (cli_parse_u64(CMD, name, v, &o->shift_seed)) return 2;
            c->has_shift_seed = true;
        } else if (IS("--threads")) {
            uint32_t th;
            VAL();
            if (cli_parse_u32(CMD, name, v, &th)) return 2;
            if (th > 1024) return cli_usage(CMD, "--threads: %u is too many", th);
            o->threads = (int)th;
        } else {
            return cli_usage(CMD, "unknown option '%s'", a);
        }
#undef IS
#undef VAL
    }
    return 0;
}

/* Loads --fit (a trace, or a .csv load matrix) into a profile. */
static int load_fit(const gen_cli *c, ms_gen_profile **prof, ms_trace **tr) {
    ms_error err = {0};
    *prof = NULL;
    *tr = NULL;
    struct stat st;
    if (stat(c->fit, &st) == 0 && S_ISREG(st.st_mode) && (ends_with(c->fit, ".csv") || ends_with(c->fit, ".CSV"))) {
        ms_loads *l = NULL;
        if (ms_loads_read_csv(c->fit, &l, &err) != MS_OK) return cli_fail(CMD, &err);
        if (c->has_experts && c->experts != l->n_experts) {
            ms_error_set(&err, MS_E_INPUT, "%s: %u experts per line, but --experts %u", c->fit, l->n_experts,
                         c->experts);
            ms_loads_free(l);
            return cli_fail(CMD, &err);
        }
        ms_status s = ms_gen_profile_from_loads(l, c->has_topk ? c->top_k : 0, c->fit, prof, &err);
        ms_loads_free(l);
        return s == MS_OK ? 0 : cli_fail(CMD, &err);
    }
    cli_trace_opts to = {.n_experts = c->has_experts ? c->experts : 0, .progress = c->progress_mode};
    char *paths[1] = {(char *)c->fit};
    int rc = cli_load_trace(CMD, paths, 1, &to, tr);
    if (rc) return rc;
    if (ms_gen_profile_from_trace(*tr, prof, &err) != MS_OK) {
        ms_trace_free(*tr);
        *tr = NULL;
        return cli_fail(CMD, &err);
    }
    return 0;
}

/* Resolves the shape from --model / --fit / explicit options. */
static int resolve_shape(const gen_cli *c, const ms_gen_profile *prof, ms_gen_opts *o, const char **model_name) {
    ms_error err = {0};
    if (c->model) {
        const ms_gen_preset *p = ms_gen_preset_find(c->model, &err);
        if (!p) return cli_fail(CMD, &err);
        ms_gen_opts_apply_preset(o, p);
        *model_name = p->name;
        if (c->has_experts && !c->fit) o->n_experts = c->experts;
    } else if (prof) {
        o->n_layers = prof->n_layers;
        o->n_experts = prof->n_experts;
        o->top_k = prof->top_k;
        o->n_groups = o->topk_groups = 1;
        *model_name = "fitted";
        if (!o->top_k && !c->has_topk)
            return cli_usage(CMD, "--fit with a load matrix needs --top-k or --model (the matrix has no top-k)");
    } else if (c->has_layers && c->has_experts && c->has_topk) {
        o->n_experts = c->experts;
        *model_name = "custom";
    } else {
        return cli_usage(CMD, "give --model NAME, --fit TRACE, or --layers, --experts and --top-k");
    }
    if (c->has_layers) o->n_layers = c->layers;
    if (c->has_topk) o->top_k = c->top_k;
    if (c->has_groups) o->n_groups = c->groups;
    if (c->has_topk_groups) o->topk_groups = c->topk_groups;
    if (o->n_groups > 1 && !c->has_topk_groups && !c->model) o->topk_groups = o->n_groups;
    return 0;
}

/* --shift N or P% (of the requests, rounded down) into o->shift_request,
 * which must leave requests on both sides. */
static int parse_shift(const char *v, ms_gen_opts *o) {
    size_t n = strlen(v);
    uint64_t at;
    if (o->n_requests < 2) return cli_usage(CMD, "--shift needs at least 2 requests");
    if (n > 1 && v[n - 1] == '%') {
        char num[64];
        double pct;
        if (n - 1 >= sizeof num) return cli_usage(CMD, "--shift expects N or P%%, got '%s'", v);
        memcpy(num, v, n - 1);
        num[n - 1] = '\0';
        if (cli_parse_double(CMD, "--shift", num, &pct)) return 2;
        if (!(pct > 0 && pct < 100)) return cli_usage(CMD, "--shift %s: the percentage must lie in (0, 100)", v);
        at = (uint64_t)(pct / 100.0 * (double)o->n_requests);
    } else if (cli_parse_u64(CMD, "--shift", v, &at)) {
        return 2;
    }
    if (at == 0 || at >= o->n_requests)
        return cli_usage(CMD, "--shift %s: the shift needs requests on both sides: request 1..%llu of %llu", v,
                         (unsigned long long)o->n_requests - 1, (unsigned long long)o->n_requests);
    o->shift_request = at;
    return 0;
}

static json_t *json_doubles(const double *v, uint32_t n) {
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

static void range(const double *v, uint32_t n, double *lo, double *hi, double *mean) {
    *lo = *hi = n ? v[0] : 0;
    double s = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
        s += v[i];
    }
    *mean = n ? s / n : 0;
}

int cmd_gen(int argc, char **argv) {
    gen_cli c;
    memset(&c, 0, sizeof c);
    ms_gen_opts o;
    ms_gen_opts_default(&o);
    int rc = parse_args(argc, argv, &c, &o);
    if (rc) return rc < 0 ? 0 : rc;
    if (c.list) {
        list_models(stdout);
        return 0;
    }
    if (!c.out) return cli_usage(CMD, "-o DIR is required");
    if (c.has_requests && o.n_requests == 0) return cli_usage(CMD, "--requests must be at least 1");
    if (!c.fit && !c.has_requests) return cli_usage(CMD, "--requests N is required");
    if (c.prefill_only) o.output_mean = 0;
    ms_error err = {0};
    ms_gen_skew skew_opt;
    if (c.skew && ms_gen_skew_parse(c.skew, &skew_opt, &err) != MS_OK) return cli_usage(CMD, "--skew: %s", err.msg);
    if (c.model && !ms_gen_preset_find(c.model, &err)) return cli_fail(CMD, &err);

    /* refuse to mix with an earlier trace in DIR */
    uint64_t old_n, old_b;
    if (scan_npz(c.out, false, &old_n, &old_b) != 0) {
        ms_error_set(&err, MS_E_IO, "%s: cannot read the directory: %s", c.out, strerror(errno));
        return cli_fail(CMD, &err);
    }
    if (old_n && !c.force) {
        ms_error_set(&err, MS_E_INPUT, "%s already holds %llu npz files; choose an empty directory or pass --force",
                     c.out, (unsigned long long)old_n);
        return cli_fail(CMD, &err);
    }

    ms_gen_profile *prof = NULL;
    ms_trace *fit_trace = NULL;
    if (c.fit && (rc = load_fit(&c, &prof, &fit_trace)) != 0) return rc;
    ms_trace_free(fit_trace);
    const char *model_name = NULL;
    if ((rc = resolve_shape(&c, prof, &o, &model_name)) != 0) goto out;
    if (c.skew) {
        o.skew = skew_opt;
    }
    if (!c.has_topics && o.n_topics * 4 > o.n_experts) o.n_topics = o.n_experts / 4; /* >= 4 experts per cluster */
    o.profile = prof;
    if (prof && !c.has_drift) o.drift = 0; /* a fit reproduces the loads asked for; --drift adds wander */
    if (prof && !c.has_requests) {
        if (prof->n_requests == 0) {
            rc = cli_usage(CMD, "--requests N is required when fitting a load matrix");
            goto out;
        }
        o.n_requests = prof->n_requests;
    }
    o.lengths_from_profile = prof && prof->n_requests > 0 && !c.has_lengths;
    if (c.shift && (rc = parse_shift(c.shift, &o)) != 0) goto out;
    if (c.shift && !c.has_shift_seed) o.shift_seed = o.seed;
    if (!c.shift && c.has_shift_seed) {
        rc = cli_usage(CMD, "--shift-seed needs --shift");
        goto out;
    }
    if (ms_gen_opts_check(&o, &err) != MS_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }

    cli_progress pg;
    cli_progress_init(&pg, "generating", c.progress_mode);
    o.progress = cli_progress_fn;
    o.progress_ctx = &pg;
    double t0 = ms_now();
    ms_trace *t = NULL;
    ms_status st = ms_gen_trace(&o, &t, &err);
    cli_progress_done(&pg);
    if (st != MS_OK) {
        rc = cli_fail(CMD, &err);
        goto out;
    }
    double t1 = ms_now();
    if (c.force && scan_npz(c.out, true, &old_n, &old_b) != 0) {
        ms_error_set(&err, MS_E_IO, "%s: cannot remove the old npz files: %s", c.out, strerror(errno));
        rc = cli_fail(CMD, &err);
        ms_trace_free(t);
        goto out;
    }
    cli_progress pw;
    cli_progress_init(&pw, "writing", c.progress_mode);
    st = ms_trace_write_npz_dir(t, c.out, c.compress, cli_progress_fn, &pw, &err);
    cli_progress_done(&pw);
    double t2 = ms_now();
    if (st != MS_OK) {
        rc = cli_fail(CMD, &err);
        ms_trace_free(t);
        goto out;
    }
    uint64_t files = 0, bytes = 0;
    scan_npz(c.out, false, &files, &bytes);

    uint32_t L = t->n_layers;
    double *mm = ms_alloc_array(L, sizeof *mm, &err), *h10 = ms_alloc_array(L, sizeof *h10, &err);
    double *fmm = ms_alloc_array(L, sizeof *fmm, &err), *fh10 = ms_alloc_array(L, sizeof *fh10, &err);
    if (!mm || !h10 || !fmm || !fh10 || ms_gen_layer_skew(t, mm, h10, &err) != MS_OK) {
        rc = cli_fail(CMD, &err);
        goto summary_done;
    }
    if (prof) {
        double *tgt = ms_alloc_array(t->n_experts, sizeof *tgt, &err);
        for (uint32_t l = 0; tgt && l < L; l++) {
            if (ms_gen_target_shares(&o, l, tgt, &err) != MS_OK) break;
            ms_gen_skew_of_loads(tgt, t->n_experts, &fmm[l], &fh10[l]);
        }
        ms_free(tgt);
        if (err.status != MS_OK) {
            rc = cli_fail(CMD, &err);
            goto summary_done;
        }
    }
    uint64_t prompt = 0, output = 0;
    for (uint64_t r = 0; r < t->n_requests; r++) {
        prompt += t->n_prompt[r];
        output += t->n_output[r];
    }
    char skew[300], digest[32];
    if (prof) snprintf(skew, sizeof skew, "fit:%s", prof->label);
    else ms_gen_skew_format(&o.skew, skew, sizeof skew);
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)t->digest);
    if (c.format == CLI_JSON) {
        json_t *j = json_object();
        json_object_set_new(j, "dir", json_string(c.out));
        json_object_set_new(j, "model", json_string(model_name));
        json_object_set_new(j, "requests", json_integer((json_int_t)t->n_requests));
        json_object_set_new(j, "tokens", json_integer((json_int_t)t->n_tokens));
        json_object_set_new(j, "prompt_tokens", json_integer((json_int_t)prompt));
        json_object_set_new(j, "output_tokens", json_integer((json_int_t)output));
        json_object_set_new(j, "layers", json_integer(L));
        json_object_set_new(j, "experts", json_integer(t->n_experts));
        json_object_set_new(j, "top_k", json_integer(t->top_k));
        json_object_set_new(j, "ranked", json_integer(t->n_ranked));
        json_object_set_new(j, "groups", json_integer(o.n_groups));
        json_object_set_new(j, "topk_groups", json_integer(o.topk_groups));
        json_object_set_new(j, "skew", json_string(skew));
        json_object_set_new(j, "seed", json_integer((json_int_t)o.seed));
        if (o.shift_request) {
            json_object_set_new(j, "shift_request", json_integer((json_int_t)o.shift_request));
            json_object_set_new(j, "shift_token", json_integer((json_int_t)t->tok_offset[o.shift_request]));
            json_object_set_new(j, "shift_seed", json_integer((json_int_t)o.shift_seed));
        }
        json_object_set_new(j, "compress", json_boolean(c.compress));
        json_object_set_new(j, "files", json_integer((json_int_t)files));
        json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
        json_object_set_new(j, "digest", json_string(digest));
        json_object_set_new(j, "max_mean_ratio", json_doubles(mm, L));
        json_object_set_new(j, "hot10_share", json_doubles(h10, L));
        if (prof) {
            json_object_set_new(j, "fit_source", json_string(prof->label));
            json_object_set_new(j, "fit_max_mean_ratio", json_doubles(fmm, L));
            json_object_set_new(j, "fit_hot10_share", json_doubles(fh10, L));
        }
        if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0 || fputc('\n', stdout) == EOF)
            rc = 1;
        json_decref(j);
    } else if (c.format == CLI_CSV) {
        printf("key,value\ndir,%s\nmodel,%s\nrequests,%llu\ntokens,%llu\nprompt_tokens,%llu\noutput_tokens,%llu\n"
               "layers,%u\nexperts,%u\ntop_k,%u\nranked,%u\ngroups,%u\ntopk_groups,%u\nskew,%s\nseed,%llu\n"
               "compress,%d\nfiles,%llu\nbytes,%llu\ndigest,%s\n",
               c.out, model_name, (unsigned long long)t->n_requests, (unsigned long long)t->n_tokens,
               (unsigned long long)prompt, (unsigned long long)output, L, t->n_experts, t->top_k, t->n_ranked,
               o.n_groups, o.topk_groups, skew, (unsigned long long)o.seed, c.compress ? 1 : 0,
               (unsigned long long)files, (unsigned long long)bytes, digest);
        if (o.shift_request)
            printf("shift_request,%llu\nshift_token,%llu\nshift_seed,%llu\n", (unsigned long long)o.shift_request,
                   (unsigned long long)t->tok_offset[o.shift_request], (unsigned long long)o.shift_seed);
    } else {
        double lo, hi, mean;
        printf("wrote %llu requests (%llu tokens: %llu prompt, %llu output) to %s\n",
               (unsigned long long)t->n_requests, (unsigned long long)t->n_tokens, (unsigned long long)prompt,
               (unsigned long long)output, c.out);
        printf("  model     %s: %u layers x %u experts, top-%u", model_name, L, t->n_experts, t->top_k);
        if (o.n_groups > 1) printf(" (%u groups, top-%u groups)", o.n_groups, o.topk_groups);
        if (t->n_ranked) printf(", %u ranked", t->n_ranked);
        printf("\n  router    skew %s, %u topics x %.2g, drift %.3g per %u tokens, seed %llu\n", skew,
               o.n_topics, o.topic_strength, o.drift, o.drift_window, (unsigned long long)o.seed);
        if (o.shift_request)
            printf("  shift     popularity permuted from request %llu (token %llu) on, shift seed %llu\n",
                   (unsigned long long)o.shift_request, (unsigned long long)t->tok_offset[o.shift_request],
                   (unsigned long long)o.shift_seed);
        range(mm, L, &lo, &hi, &mean);
        printf("  max/mean  %.2f .. %.2f per layer (mean %.2f)", lo, hi, mean);
        if (prof) {
            range(fmm, L, &lo, &hi, &mean);
            printf("; fitted %.2f .. %.2f (mean %.2f)", lo, hi, mean);
        }
        range(h10, L, &lo, &hi, &mean);
        printf("\n  hot 10%%   %.3f .. %.3f of the load (mean %.3f)", lo, hi, mean);
        if (prof) {
            range(fh10, L, &lo, &hi, &mean);
            printf("; fitted %.3f .. %.3f (mean %.3f)", lo, hi, mean);
        }
        printf("\n  files     %llu npz, %.1f MB (%s)\n  time      %.2f s generating, %.2f s writing\n",
               (unsigned long long)files, (double)bytes / 1e6, c.compress ? "deflate" : "stored", t1 - t0, t2 - t1);
    }
    if (fflush(stdout) != 0) rc = 1;
summary_done:
    ms_free(mm);
    ms_free(h10);
    ms_free(fmm);
    ms_free(fh10);
    ms_trace_free(t);
out:
    ms_gen_profile_free(prof);
    return rc;
}
