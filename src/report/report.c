/* report.c - turns the inputs of a report into sections of charts and tables
 * and writes them as one HTML page or as standalone SVG files. See
 * moesim/report.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"
#include "report/sbuf.h"
#include "report/svg.h"

/* ------------------------------------------------------------- public */

const char *ms_report_kind_name(ms_report_kind k) {
    switch (k) {
    case MS_REPORT_STATS: return "stats";
    case MS_REPORT_PLACEMENT: return "placement";
    case MS_REPORT_SIM: return "sim";
    case MS_REPORT_COMPARE: return "compare";
    case MS_REPORT_POWER: return "power";
    case MS_REPORT_SCALE: return "scale";
    case MS_REPORT_SWEEP: return "sweep";
    case MS_REPORT_PARETO: return "pareto";
    case MS_REPORT_REPLAY: return "replay";
    case MS_REPORT_OTHER: return "other";
    }
    return "other";
}

void ms_report_opts_default(ms_report_opts *o) {
    o->title = "moesim report";
    o->layer = -1;
    o->coact_max = 48;
}

ms_status ms_report_new(ms_report **out, ms_error *err) {
    *out = calloc(1, sizeof **out);
    return *out ? MS_OK : ms_error_set(err, MS_E_NOMEM, "out of memory");
}

void ms_report_free(ms_report *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) rp_input_clear(&r->in[i]);
    free(r->in);
    free(r);
}

size_t ms_report_input_count(const ms_report *r) { return r->n; }

static rp_input *grow(ms_report *r, ms_error *err) {
    rp_input *in = realloc(r->in, (r->n + 1) * sizeof *in);
    if (!in) {
        ms_error_set(err, MS_E_NOMEM, "out of memory");
        return NULL;
    }
    r->in = in;
    memset(&r->in[r->n], 0, sizeof *in);
    return &r->in[r->n];
}

ms_status ms_report_add_file(ms_report *r, const char *path, ms_report_kind *kind, ms_error *err) {
    rp_input *in = grow(r, err);
    if (!in) return MS_E_NOMEM;
    ms_status st = rp_read_file(path, in, err);
    if (st != MS_OK) {
        rp_input_clear(in);
        return st;
    }
    if (kind) *kind = in->kind;
    r->n++;
    return MS_OK;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

ms_status ms_report_add_stats(ms_report *r, const ms_stats *s, const char *label, ms_error *err) {
    rp_input *in = grow(r, err);
    if (!in) return MS_E_NOMEM;
    in->kind = MS_REPORT_STATS;
    in->path = dupstr(label ? label : "trace");
    in->label = dupstr(label ? label : "trace");
    char info[256];
    snprintf(info, sizeof info, "%u layers x %u experts, top-%u; %llu tokens (%s), %llu requests (trace)",
             s->n_layers, s->n_experts, s->top_k, (unsigned long long)s->tokens, ms_phase_name(s->phase),
             (unsigned long long)s->n_requests);
    in->info = dupstr(info);
    ms_status st = in->path && in->label && in->info ? rp_stats_from(s, &in->stats, err)
                                                     : ms_error_set(err, MS_E_NOMEM, "out of memory");
    if (st != MS_OK) {
        rp_input_clear(in);
        return st;
    }
    r->n++;
    return MS_OK;
}

/* ------------------------------------------------------------- page */

typedef enum btype { B_HTML, B_CHART, B_ROW_OPEN, B_ROW_CLOSE } btype;

typedef struct block {
    btype t;
    char *html;
    ms_chart *chart;
    char slug[64];
    char *caption;
} block;

typedef struct page {
    block *b;
    size_t n;
    bool failed;
    ms_sbuf toc;
} page;

static block *add_block(page *pg, btype t) {
    block *b = realloc(pg->b, (pg->n + 1) * sizeof *b);
    if (!b) {
        pg->failed = true;
        return NULL;
    }
    pg->b = b;
    memset(&b[pg->n], 0, sizeof *b);
    b[pg->n].t = t;
    return &b[pg->n++];
}

/* Takes the text of h (and resets h). */
static void add_html(page *pg, ms_sbuf *h) {
    if (h->failed) pg->failed = true;
    block *b = add_block(pg, B_HTML);
    if (b) {
        b->html = h->s ? h->s : dupstr("");
        if (!b->html) pg->failed = true;
    } else {
        free(h->s);
    }
    ms_sbuf_init(h);
}

/* Takes ownership of c (may be NULL: out of memory). */
static void add_chart(page *pg, ms_chart *c, const char *slug, const char *caption) {
    if (!c) {
        pg->failed = true;
        return;
    }
    block *b = add_block(pg, B_CHART);
    if (!b) {
        ms_chart_free(c);
        return;
    }
    b->chart = c;
    snprintf(b->slug, sizeof b->slug, "%s", slug);
    b->caption = dupstr(caption ? caption : "");
    if (!b->caption) pg->failed = true;
}

static void row(page *pg, bool open) { add_block(pg, open ? B_ROW_OPEN : B_ROW_CLOSE); }

static void page_free(page *pg) {
    for (size_t i = 0; i < pg->n; i++) {
        free(pg->b[i].html);
        free(pg->b[i].caption);
        ms_chart_free(pg->b[i].chart);
    }
    free(pg->b);
    ms_sbuf_free(&pg->toc);
}

static void section(page *pg, const char *id, const char *title, const char *intro) {
    ms_sbuf h;
    ms_sbuf_init(&h);
    ms_sbuf_printf(&h, "<section id=\"%s\">\n<h2>", id);
    ms_sbuf_put_xml(&h, title);
    ms_sbuf_puts(&h, "</h2>\n");
    if (intro) {
        ms_sbuf_puts(&h, "<p class=\"note\">");
        ms_sbuf_put_xml(&h, intro);
        ms_sbuf_puts(&h, "</p>\n");
    }
    add_html(pg, &h);
    ms_sbuf_printf(&pg->toc, "<li><a href=\"#%s\">", id);
    ms_sbuf_put_xml(&pg->toc, title);
    ms_sbuf_puts(&pg->toc, "</a></li>\n");
}

static void section_end(page *pg) {
    ms_sbuf h;
    ms_sbuf_init(&h);
    ms_sbuf_puts(&h, "</section>\n");
    add_html(pg, &h);
}

/* ------------------------------------------------------------ numbers */

static void fmtv(char *buf, size_t len, double v, int sig) {
    if (!isfinite(v)) {
        snprintf(buf, len, "n/a");
        return;
    }
    static const char *const suf[] = {"", "k", "M", "G", "T", "P"};
    double a = fabs(v);
    int k = 0;
    while (a >= 1e5 && k < 5) {
        a /= 1000;
        v /= 1000;
        k++;
    }
    snprintf(buf, len, "%.*g%s", sig, v, suf[k]);
}

static void td_num(ms_sbuf *h, double v, int sig) {
    char buf[48];
    fmtv(buf, sizeof buf, v, sig);
    ms_sbuf_printf(h, "<td>%s</td>", buf);
}

static void td_text(ms_sbuf *h, const char *s, const char *cls) {
    ms_sbuf_printf(h, "<td class=\"%s\">", cls ? cls : "l");
    ms_sbuf_put_xml(h, s ? s : "");
    ms_sbuf_puts(h, "</td>");
}

static void th_row(ms_sbuf *h, const char *const *cols) {
    ms_sbuf_puts(h, "<table>\n<tr>");
    for (; *cols; cols++) {
        ms_sbuf_puts(h, "<th>");
        ms_sbuf_put_xml(h, *cols);
        ms_sbuf_puts(h, "</th>");
    }
    ms_sbuf_puts(h, "</tr>\n");
}

/* ------------------------------------------------------------ views */

typedef struct run_ref {
    const rp_run *run;
    const rp_input *in;
} run_ref;

typedef struct view {
    const ms_report *r;
    const ms_report_opts *o;
    const rp_input *stats;      /* first statistics, or NULL */
    uint32_t layer;
    size_t n_runs;
    run_ref *runs;
    size_t n_place;
    const rp_input **place;
    size_t n_pw;
    const rp_power **pw;
} view;

/* Expected load per device of placement p in `layer` from s's mean loads,
 * every expert's load split evenly over its replicas. false when shapes
 * disagree. */
static bool placement_loads(const ms_placement *p, const rp_stats *s, uint32_t layer, double *dev) {
    if (!p->logcnt || s->E != p->n_routed || layer >= s->L || (p->n_layers != 1 && p->n_layers != s->L)) return false;
    uint32_t pl = p->n_layers == 1 ? 0 : layer, spd = p->cluster.slots_per_device;
    uint32_t nd = ms_cluster_devices(&p->cluster);
    for (uint32_t d = 0; d < nd; d++) dev[d] = 0;
    for (uint32_t slot = 0; slot < p->n_phys; slot++) {
        int32_t e = p->phy2log[(size_t)pl * p->n_phys + slot];
        if (e < 0) continue;
        uint32_t cnt = p->logcnt[(size_t)pl * p->n_logical + (uint32_t)e];
        double load = (uint32_t)e < p->n_routed ? s->load[(size_t)layer * s->E + (uint32_t)e] : s->ltokens[layer];
        if (cnt && isfinite(load)) dev[slot / spd] += load / cnt;
    }
    return true;
}

static double max_mean(const double *v, size_t n) {
    double mx = 0, sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        mx = fmax(mx, v[i]);
        sum += v[i];
    }
    return sum > 0 ? mx / (sum / (double)n) : NAN;
}

static void grid_shape(uint32_t n, uint32_t *rows, uint32_t *cols) {
    uint32_t best = 1;
    if (n > 16) {
        double target = sqrt(n / 2.0);
        for (uint32_t r = 1; r <= n; r++)
            if (n % r == 0 && fabs(r - target) < fabs(best - target)) best = r;
    }
    *rows = best;
    *cols = n / best;
}

static ms_chart *grid_chart(const char *title, const char *note, const double *v, uint32_t rows, uint32_t cols,
                            double lo, double hi, const char *value_label) {
    ms_chart *c = ms_chart_new(MS_CHART_HEATMAP, title);
    if (!c) return NULL;
    ms_chart_set_note(c, note);
    ms_chart_set_size(c, 620, rows <= 4 ? 300 : 460);
    ms_chart_set_x_axis(c, "column (device in node)", NULL, false);
    ms_chart_set_y_axis(c, "row (node)", NULL, false);
    char **rl = calloc(rows, sizeof *rl), **cl = calloc(cols, sizeof *cl);
    char buf[32];
    for (uint32_t i = 0; rl && i < rows; i++) {
        snprintf(buf, sizeof buf, "row %u", i);
        rl[i] = dupstr(buf);
    }
    for (uint32_t i = 0; cl && i < cols; i++) {
        snprintf(buf, sizeof buf, "%u", i);
        cl[i] = dupstr(buf);
    }
    ms_chart_set_matrix(c, rows, cols, v, (const char *const *)rl, (const char *const *)cl, value_label);
    for (uint32_t i = 0; rl && i < rows; i++) free(rl[i]);
    for (uint32_t i = 0; cl && i < cols; i++) free(cl[i]);
    free(rl);
    free(cl);
    ms_chart_set_y_range(c, lo, hi);
    ms_chart_set_cell_values(c, true);
    return c;
}

/* ------------------------------------------------------------ sections */

static const char *file_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Both known and different: a power result for other hardware or batching
 * does not price this run. */
static bool clash(const char *a, const char *b) { return a && b && strcmp(a, b) != 0; }

/* Energy per token of run r: its own figure, else the power result of the
 * same placement file and route (the same path; else the same file name when
 * only one power result has it) whose hardware and batch mode do not
 * disagree, else a power result with the run's label, else the only power
 * result when there is only one run. NAN when none. */
static double run_energy(const view *v, const rp_run *r) {
    if (isfinite(r->energy_tok)) return r->energy_tok;
    if (r->pfile && r->route) {
        for (int pass = 0; pass < 2; pass++) {
            const rp_power *hit = NULL;
            size_t hits = 0;
            for (size_t k = 0; k < v->n_pw; k++) {
                const rp_power *p = v->pw[k];
                if (!p->pfile || !p->route || strcmp(p->route, r->route) != 0 || clash(p->hw, r->hw) ||
                    clash(p->batch, r->batch))
                    continue;
                bool same = pass == 0 ? strcmp(p->pfile, r->pfile) == 0
                                      : strcmp(file_base(p->pfile), file_base(r->pfile)) == 0;
                if (same && isfinite(p->energy_tok)) {
                    if (!hit) hit = p;
                    hits++;
                }
            }
            if (hit && (pass == 0 || hits == 1)) return hit->energy_tok;
        }
    }
    for (size_t k = 0; k < v->n_pw; k++)
        if (strcmp(v->pw[k]->label, r->label) == 0 && isfinite(v->pw[k]->energy_tok)) return v->pw[k]->energy_tok;
    if (v->n_pw == 1 && v->n_runs == 1) return v->pw[0]->energy_tok;
    return NAN;
}

static void summary_section(page *pg, const view *v) {
    section(pg, "summary", "Summary",
            "The numbers that decide, and the inputs that produced them. Imbalance = max device load / "
            "mean device load of one (batch, layer), load counted in token-expert assignments.");
    ms_sbuf h;
    ms_sbuf_init(&h);
    char buf[64];
    if (v->n_runs) {
        ms_sbuf_puts(&h, "<h3>Simulated runs</h3>\n");
        static const char *const cols[] = {"run", "mean imbalance", "p99 imbalance", "p99 layer time (µs)",
                                           "mean layer time (µs)", "tokens/s", "energy per token (J)",
                                           "dropped", "rerouted", "inter-row share", NULL};
        th_row(&h, cols);
        for (size_t i = 0; i < v->n_runs; i++) {
            const rp_run *r = v->runs[i].run;
            ms_sbuf_puts(&h, "<tr>");
            td_text(&h, r->label, "l");
            td_num(&h, r->imb[0], 4);
            td_num(&h, r->imb[3], 4);
            td_num(&h, r->lt[3], 5);
            td_num(&h, r->lt[0], 5);
            td_num(&h, r->tps, 4);
            td_num(&h, run_energy(v, r), 4);
            td_num(&h, r->dropped, 6);
            td_num(&h, r->rerouted, 6);
            double tot = r->intra + r->inter;
            if (isfinite(tot) && tot > 0) {
                snprintf(buf, sizeof buf, "%.1f%%", 100 * r->inter / tot);
                td_text(&h, buf, "r");
            } else {
                td_text(&h, "n/a", "r");
            }
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table>\n");
    }
    if (v->n_place) {
        ms_sbuf_puts(&h, "<h3>Placements</h3>\n");
        static const char *const cols[] = {"file", "algorithm", "grid", "slots/device", "layers", "experts",
                                           "max replicas", "objective", "lower bound", "gap", NULL};
        th_row(&h, cols);
        for (size_t i = 0; i < v->n_place; i++) {
            const ms_placement *p = v->place[i]->placement;
            ms_sbuf_puts(&h, "<tr>");
            td_text(&h, v->place[i]->label, "l");
            td_text(&h, p->algorithm, "l");
            snprintf(buf, sizeof buf, "%u x %u", p->cluster.rows, p->cluster.cols);
            td_text(&h, buf, "r");
            td_num(&h, p->cluster.slots_per_device, 6);
            td_num(&h, p->n_layers, 6);
            snprintf(buf, sizeof buf, "%u%s", p->n_routed, p->has_shared ? " + shared" : "");
            td_text(&h, buf, "r");
            td_num(&h, p->max_replicas, 6);
            td_num(&h, p->objective, 6);
            td_num(&h, p->lower_bound, 6);
            if (isfinite(p->objective) && isfinite(p->lower_bound) && p->lower_bound > 0) {
                snprintf(buf, sizeof buf, "%.2f%%", 100 * (p->objective / p->lower_bound - 1));
                td_text(&h, buf, "r");
            } else {
                td_text(&h, "n/a", "r");
            }
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table>\n");
    }
    bool any_stats = false;
    for (size_t i = 0; i < v->r->n; i++) any_stats |= v->r->in[i].stats != NULL;
    if (any_stats) {
        ms_sbuf_puts(&h, "<h3>Traces</h3>\n");
        static const char *const cols[] = {"input", "layers", "experts", "top-k", "tokens", "mean expert max/mean",
                                           "worst layer", "its max/mean", NULL};
        th_row(&h, cols);
        for (size_t i = 0; i < v->r->n; i++) {
            const rp_stats *s = v->r->in[i].stats;
            if (!s) continue;
            double sum = 0, worst = -1;
            uint32_t wl = 0;
            for (uint32_t l = 0; l < s->L; l++) {
                sum += s->ratio[l];
                if (s->ratio[l] > worst) worst = s->ratio[l], wl = l;
            }
            ms_sbuf_puts(&h, "<tr>");
            td_text(&h, v->r->in[i].label, "l");
            td_num(&h, s->L, 6);
            td_num(&h, s->E, 6);
            td_num(&h, s->K, 6);
            td_num(&h, (double)s->tokens, 6);
            td_num(&h, sum / s->L, 4);
            td_num(&h, wl, 6);
            td_num(&h, worst, 4);
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table>\n");
    }
    if (v->n_pw) {
        ms_sbuf_puts(&h, "<h3>Energy and power</h3>\n");
        static const char *const cols[] = {"input", "energy per token (J)", "average power (W)", "peak power (W)",
                                           "energy (J)", "compute", "memory", "communication", "idle", NULL};
        th_row(&h, cols);
        for (size_t i = 0; i < v->n_pw; i++) {
            const rp_power *p = v->pw[i];
            ms_sbuf_puts(&h, "<tr>");
            td_text(&h, p->label, "l");
            td_num(&h, p->energy_tok, 4);
            td_num(&h, p->avg_w, 4);
            td_num(&h, p->peak_w, 4);
            td_num(&h, p->total_j, 4);
            double tot = 0;
            for (int k = 0; k < 4; k++)
                if (isfinite(p->parts[k])) tot += p->parts[k];
            for (int k = 0; k < 4; k++) {
                if (isfinite(p->parts[k]) && tot > 0) {
                    snprintf(buf, sizeof buf, "%.1f%%", 100 * p->parts[k] / tot);
                    td_text(&h, buf, "r");
                } else {
                    td_text(&h, "n/a", "r");
                }
            }
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table>\n");
    }
    ms_sbuf_puts(&h, "<h3>Inputs</h3>\n");
    static const char *const icols[] = {"#", "file", "kind", "trace digest", "details", NULL};
    th_row(&h, icols);
    for (size_t i = 0; i < v->r->n; i++) {
        const rp_input *in = &v->r->in[i];
        const char *dg = in->stats    ? in->stats->digest
                         : in->n_runs ? in->runs[0].digest
                         : in->replay ? in->replay->digest
                                      : "";
        char pd[24] = "";
        if (in->placement && in->placement->trace_digest)
            snprintf(pd, sizeof pd, "%016llx", (unsigned long long)in->placement->trace_digest);
        ms_sbuf_printf(&h, "<tr><td>%zu</td>", i + 1);
        td_text(&h, in->path, "l");
        td_text(&h, ms_report_kind_name(in->kind), "l");
        td_text(&h, pd[0] ? pd : dg, "l");
        td_text(&h, in->info ? in->info : "", "details");
        ms_sbuf_puts(&h, "</tr>\n");
    }
    ms_sbuf_puts(&h, "</table>\n");
    if (v->n_runs) {
        ms_sbuf_puts(&h, "<h3>Run options</h3>\n<table>\n<tr><th>run</th><th>options</th></tr>\n");
        for (size_t i = 0; i < v->n_runs; i++) {
            ms_sbuf_puts(&h, "<tr>");
            td_text(&h, v->runs[i].run->label, "l");
            td_text(&h, v->runs[i].run->details ? v->runs[i].run->details : "", "details");
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table>\n");
    }
    add_html(pg, &h);
    section_end(pg);
}

static void grid_section(page *pg, const view *v) {
    const rp_stats *s = v->stats ? v->stats->stats : NULL;
    /* placements x mean loads */
    size_t np = 0;
    double *loads[64] = {0};
    const rp_input *pin[64];
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < v->n_place && np < 64 && s; i++) {
        const ms_placement *p = v->place[i]->placement;
        uint32_t nd = ms_cluster_devices(&p->cluster);
        double *d = ms_alloc_array(nd, sizeof *d, NULL);
        if (!d) {
            pg->failed = true;
            break;
        }
        if (!placement_loads(p, s, v->layer, d)) {
            free(d);
            continue;
        }
        for (uint32_t k = 0; k < nd; k++) lo = fmin(lo, d[k]), hi = fmax(hi, d[k]);
        loads[np] = d;
        pin[np++] = v->place[i];
    }
    /* worst batch per run */
    size_t nw = 0;
    size_t worst[64];
    const rp_run *wr[64];
    double wlo = INFINITY, whi = -INFINITY;
    for (size_t i = 0; i < v->n_runs && nw < 64; i++) {
        const rp_run *r = v->runs[i].run;
        if (!r->r_dev || !r->n_rec) continue;
        bool has_layer = false;
        for (size_t k = 0; k < r->n_rec; k++) has_layer |= r->r_layer[k] == (int64_t)v->layer;
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < r->n_rec; k++) {
            if (has_layer && r->r_layer[k] != (int64_t)v->layer) continue;
            double im = isfinite(r->r_imb[k]) ? r->r_imb[k] : max_mean(r->r_dev + k * r->n_dev, r->n_dev);
            double bi = best == SIZE_MAX ? -1
                        : isfinite(r->r_imb[best]) ? r->r_imb[best]
                                                    : max_mean(r->r_dev + best * r->n_dev, r->n_dev);
            if (im > bi) best = k;
        }
        if (best == SIZE_MAX) continue;
        for (uint32_t d = 0; d < r->n_dev; d++)
            if (isfinite(r->r_dev[best * r->n_dev + d]))
                wlo = fmin(wlo, r->r_dev[best * r->n_dev + d]), whi = fmax(whi, r->r_dev[best * r->n_dev + d]);
        worst[nw] = best;
        wr[nw++] = r;
    }
    if (!np && !nw) {
        for (size_t i = 0; i < np; i++) free(loads[i]);
        return;
    }
    char intro[400];
    snprintf(intro, sizeof intro,
             "Load per device on the rows x cols grid (a row is a node), layer %u. Charts side by side share one "
             "colour scale from the least to the most loaded device among them, so the brightest cell is the device "
             "every other one waits for; read the numbers for how much.",
             v->layer);
    section(pg, "grid", "Device grid", intro);
    char title[200], note[300], slug[64];
    if (np) {
        row(pg, true);
        for (size_t i = 0; i < np; i++) {
            const ms_placement *p = pin[i]->placement;
            uint32_t nd = ms_cluster_devices(&p->cluster);
            snprintf(title, sizeof title, "%s: expected load, layer %u", p->algorithm[0] ? p->algorithm : pin[i]->label,
                     v->layer);
            snprintf(note, sizeof note, "%s; mean loads of %s split over replicas; max/mean %.3f", pin[i]->label,
                     v->stats->label, max_mean(loads[i], nd));
            snprintf(slug, sizeof slug, "grid-expected-%zu", i + 1);
            add_chart(pg,
                      grid_chart(title, note, loads[i], p->cluster.rows, p->cluster.cols, lo, hi,
                                 "token-expert assignments"),
                      slug, "Expected load per device: each expert's load in the trace split evenly over its replicas.");
        }
        row(pg, false);
    }
    if (nw) {
        row(pg, true);
        for (size_t i = 0; i < nw; i++) {
            const rp_run *r = wr[i];
            uint32_t rows = r->rows, cols = r->cols;
            if ((uint64_t)rows * cols != r->n_dev) {
                rows = cols = 0;
                for (size_t k = 0; k < v->n_place; k++) {
                    const ms_cluster *c = &v->place[k]->placement->cluster;
                    if (ms_cluster_devices(c) == r->n_dev) {
                        rows = c->rows;
                        cols = c->cols;
                        break;
                    }
                }
                if (!rows) grid_shape(r->n_dev, &rows, &cols);
            }
            size_t k = worst[i];
            snprintf(title, sizeof title, "%s: worst batch", r->label);
            snprintf(note, sizeof note, "batch %lld, layer %lld; imbalance %.3f", (long long)r->r_batch[k],
                     (long long)r->r_layer[k],
                     isfinite(r->r_imb[k]) ? r->r_imb[k] : max_mean(r->r_dev + k * r->n_dev, r->n_dev));
            snprintf(slug, sizeof slug, "grid-worst-%zu", i + 1);
            add_chart(pg, grid_chart(title, note, r->r_dev + k * r->n_dev, rows, cols, wlo, whi,
                                 "token-expert assignments"),
                      slug, "Load per device in the (batch, layer) with the largest imbalance.");
        }
        row(pg, false);
    }
    for (size_t i = 0; i < np; i++) free(loads[i]);
    section_end(pg);
}

static void dist_section(page *pg, const view *v) {
    size_t with = 0;
    for (size_t i = 0; i < v->n_runs; i++) with += v->runs[i].run->n_rec > 0;
    if (!with) return;
    section(pg, "distributions", "Distributions",
            "Cumulative distribution over (batch, layer) records: how often a batch is at most this imbalanced "
            "or this slow. Curves further left are better; the tail at the top is what p99 measures.");
    row(pg, true);
    ms_chart *c = ms_chart_new(MS_CHART_LINE, "Per-batch imbalance");
    if (c) {
        ms_chart_set_note(c, "max device load / mean device load, every (batch, layer)");
        ms_chart_set_x_axis(c, "imbalance", "max/mean", false);
        ms_chart_set_y_axis(c, "fraction of records", NULL, false);
        ms_chart_set_y_range(c, 0, 1);
        for (size_t i = 0; i < v->n_runs; i++)
            if (v->runs[i].run->n_rec)
                ms_chart_add_cdf(c, v->runs[i].run->label, v->runs[i].run->r_imb, v->runs[i].run->n_rec);
    }
    add_chart(pg, c, "cdf-imbalance", "CDF of the imbalance of every (batch, layer), per strategy and policy.");
    c = ms_chart_new(MS_CHART_LINE, "Layer time");
    if (c) {
        ms_chart_set_note(c, "slowest device's dispatch + compute + combine, every (batch, layer)");
        ms_chart_set_x_axis(c, "layer time", "µs", false);
        ms_chart_set_y_axis(c, "fraction of records", NULL, false);
        ms_chart_set_y_range(c, 0, 1);
        for (size_t i = 0; i < v->n_runs; i++)
            if (v->runs[i].run->n_rec)
                ms_chart_add_cdf(c, v->runs[i].run->label, v->runs[i].run->r_lt, v->runs[i].run->n_rec);
    }
    add_chart(pg, c, "cdf-layer-time", "CDF of the layer time of every (batch, layer), per strategy and policy.");
    row(pg, false);
    section_end(pg);
}

/* Mean of vals per layer; returns the number of layers (x, y arrays allocated). */
static size_t per_layer_means(const rp_run *r, const double *vals, double **xo, double **yo) {
    *xo = *yo = NULL;
    if (r->n_rec) {
        int64_t mx = -1;
        for (size_t i = 0; i < r->n_rec; i++)
            if (r->r_layer[i] > mx) mx = r->r_layer[i];
        if (mx < 0 || mx > 100000) return 0;
        size_t L = (size_t)mx + 1;
        double *x = ms_calloc_array(L, sizeof *x, NULL), *y = ms_calloc_array(L, sizeof *y, NULL);
        double *cnt = ms_calloc_array(L, sizeof *cnt, NULL);
        if (!x || !y || !cnt) {
            free(x), free(y), free(cnt);
            return 0;
        }
        for (size_t i = 0; i < r->n_rec; i++) {
            if (r->r_layer[i] < 0 || !isfinite(vals[i])) continue;
            y[r->r_layer[i]] += vals[i];
            cnt[r->r_layer[i]] += 1;
        }
        size_t n = 0;
        for (size_t l = 0; l < L; l++)
            if (cnt[l] > 0) {
                x[n] = (double)l;
                y[n] = y[l] / cnt[l];
                n++;
            }
        free(cnt);
        *xo = x;
        *yo = y;
        return n;
    }
    return 0;
}

static void layer_section(page *pg, const view *v) {
    bool runs = false;
    for (size_t i = 0; i < v->n_runs; i++) runs |= v->runs[i].run->n_rec > 0 || v->runs[i].run->n_pl > 0;
    const rp_stats *s = v->stats ? v->stats->stats : NULL;
    bool stats = false;
    for (size_t i = 0; i < v->r->n; i++) stats |= v->r->in[i].stats && v->r->in[i].stats->L > 1;
    if (!runs && !stats) return;
    section(pg, "layers", "Per layer", "Mean over batches of each layer's imbalance and time, and how skewed each "
                                       "layer's expert loads are.");
    row(pg, true);
    if (runs) {
        for (int which = 0; which < 2; which++) {
            ms_chart *c = ms_chart_new(MS_CHART_LINE, which == 0 ? "Imbalance per layer" : "Layer time per layer");
            if (!c) {
                pg->failed = true;
                break;
            }
            ms_chart_set_note(c, "mean over batches");
            ms_chart_set_x_axis(c, "layer", NULL, false);
            ms_chart_set_y_axis(c, which == 0 ? "mean imbalance" : "mean layer time", which == 0 ? "max/mean" : "µs",
                                false);
            for (size_t i = 0; i < v->n_runs; i++) {
                const rp_run *r = v->runs[i].run;
                double *x, *y;
                size_t n = per_layer_means(r, which == 0 ? r->r_imb : r->r_lt, &x, &y);
                if (n) ms_chart_add_line(c, r->label, x, y, n, false, n <= 64);
                else if (r->n_pl)
                    ms_chart_add_line(c, r->label, r->pl_layer, which == 0 ? r->pl_imb : r->pl_lt, r->n_pl, false,
                                      r->n_pl <= 64);
                free(x);
                free(y);
            }
            if (ms_chart_series_count(c))
                add_chart(pg, c, which == 0 ? "layer-imbalance" : "layer-time",
                          which == 0 ? "Mean imbalance of each layer." : "Mean time of each layer.");
            else
                ms_chart_free(c);
        }
    }
    if (stats) {
        ms_chart *c = ms_chart_new(MS_CHART_LINE, "Expert skew and expected device imbalance");
        if (c) {
            ms_chart_set_note(c, "from mean loads over the whole trace");
            ms_chart_set_x_axis(c, "layer", NULL, false);
            ms_chart_set_y_axis(c, "max / mean", NULL, false);
            for (size_t i = 0; i < v->r->n; i++) {
                const rp_stats *t = v->r->in[i].stats;
                if (!t || t->L < 2) continue;
                char name[200];
                snprintf(name, sizeof name, "experts: %s", v->r->in[i].label);
                ms_chart_add_line(c, name, NULL, t->ratio, t->L, false, t->L <= 64);
            }
            for (size_t i = 0; s && i < v->n_place; i++) {
                const ms_placement *p = v->place[i]->placement;
                uint32_t nd = ms_cluster_devices(&p->cluster);
                double *d = ms_alloc_array(nd, sizeof *d, NULL), *y = ms_alloc_array(s->L, sizeof *y, NULL);
                bool ok = d && y;
                for (uint32_t l = 0; ok && l < s->L; l++) {
                    ok = placement_loads(p, s, l, d);
                    if (ok) y[l] = max_mean(d, nd);
                }
                if (ok) {
                    char name[200];
                    snprintf(name, sizeof name, "devices: %s", p->algorithm[0] ? p->algorithm : v->place[i]->label);
                    ms_chart_add_line(c, name, NULL, y, s->L, false, s->L <= 64);
                }
                free(d);
                free(y);
            }
            ms_chart_add_hline(c, 1, "perfect balance");
        }
        add_chart(pg, c, "layer-skew",
                  "Expert max/mean load per layer (how skewed the router is) and, per placement, the expected "
                  "device max/mean when every expert's load is split evenly over its replicas.");
    }
    row(pg, false);
    section_end(pg);
}

static void traffic_section(page *pg, const view *v) {
    size_t nb = 0, nt = 0;
    for (size_t i = 0; i < v->n_runs; i++) {
        const rp_run *r = v->runs[i].run;
        nb += isfinite(r->intra) || isfinite(r->inter);
        nt += isfinite(r->dispatch) || isfinite(r->compute) || isfinite(r->combine);
    }
    if (!nb && !nt) return;
    section(pg, "traffic", "Traffic and time split",
            "Bytes that stay inside a row (NVLink within a node) against bytes that cross rows (the network), and "
            "where a layer's time goes.");
    const char **names = calloc(v->n_runs, sizeof *names);
    double *a = ms_calloc_array(v->n_runs, sizeof *a, NULL), *b = ms_calloc_array(v->n_runs, sizeof *b, NULL),
           *cc = ms_calloc_array(v->n_runs, sizeof *cc, NULL);
    if (!names || !a || !b || !cc) {
        pg->failed = true;
        free(names), free(a), free(b), free(cc);
        section_end(pg);
        return;
    }
    for (size_t i = 0; i < v->n_runs; i++) names[i] = v->runs[i].run->label;
    row(pg, true);
    if (nb) {
        ms_chart *c = ms_chart_new(MS_CHART_BAR, "Intra-row vs inter-row traffic");
        if (c) {
            ms_chart_set_note(c, "dispatch + combine bytes, whole run");
            ms_chart_set_x_axis(c, "run", NULL, false);
            ms_chart_set_y_axis(c, "traffic", "bytes", false);
            ms_chart_set_categories(c, names, v->n_runs);
            for (size_t i = 0; i < v->n_runs; i++) a[i] = v->runs[i].run->intra, b[i] = v->runs[i].run->inter;
            ms_chart_add_bars(c, "intra-row (NVLink)", a, v->n_runs);
            ms_chart_add_bars(c, "inter-row (network)", b, v->n_runs);
        }
        add_chart(pg, c, "traffic", "Bytes moved inside rows and between rows.");
    }
    if (nt) {
        ms_chart *c = ms_chart_new(MS_CHART_BAR, "Where a layer's time goes");
        if (c) {
            ms_chart_set_note(c, "mean over (batch, layer) records");
            ms_chart_set_x_axis(c, "run", NULL, false);
            ms_chart_set_y_axis(c, "time", "µs", false);
            ms_chart_set_categories(c, names, v->n_runs);
            ms_chart_set_stacked(c, true);
            for (size_t i = 0; i < v->n_runs; i++) {
                a[i] = v->runs[i].run->dispatch;
                b[i] = v->runs[i].run->compute;
                cc[i] = v->runs[i].run->combine;
            }
            ms_chart_add_bars(c, "dispatch", a, v->n_runs);
            ms_chart_add_bars(c, "expert compute", b, v->n_runs);
            ms_chart_add_bars(c, "combine", cc, v->n_runs);
        }
        add_chart(pg, c, "time-split", "Mean dispatch, compute and combine time per layer.");
    }
    row(pg, false);
    free(names), free(a), free(b), free(cc);
    section_end(pg);
}

typedef struct idx_load {
    uint32_t e;
    double load;
} idx_load;

static int cmp_load_desc(const void *x, const void *y) {
    const idx_load *a = x, *b = y;
    if (a->load != b->load) return a->load < b->load ? 1 : -1;
    return (a->e > b->e) - (a->e < b->e);
}

static void experts_section(page *pg, const view *v) {
    const rp_stats *s = v->stats ? v->stats->stats : NULL;
    if (!s && !v->n_place) return;
    char intro[300];
    snprintf(intro, sizeof intro,
             "Layer %u: experts sorted by load, the hottest 10%% (rounded up) marked; how many replicas each "
             "placement gives them; which experts are chosen together.",
             v->layer);
    section(pg, "experts", "Experts", intro);
    uint32_t E = s ? s->E : v->place[0]->placement->n_routed;
    idx_load *order = ms_alloc_array(E, sizeof *order, NULL);
    char **names = calloc(E, sizeof *names);
    if (!order || !names) {
        pg->failed = true;
        free(order);
        free(names);
        section_end(pg);
        return;
    }
    for (uint32_t e = 0; e < E; e++) {
        order[e].e = e;
        order[e].load = s && v->layer < s->L ? s->load[(size_t)v->layer * E + e] : 0;
    }
    if (s) qsort(order, E, sizeof *order, cmp_load_desc);
    for (uint32_t i = 0; i < E; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%u", order[i].e);
        names[i] = dupstr(buf);
        if (!names[i]) pg->failed = true;
    }
    row(pg, true);
    if (s && v->layer < s->L) {
        ms_chart *c = ms_chart_new(MS_CHART_BAR, "Expert load profile");
        double *y = ms_alloc_array(E, sizeof *y, NULL);
        unsigned char *mark = calloc(E, 1);
        if (c && y && mark) {
            char note[200];
            snprintf(note, sizeof note, "%s, layer %u, experts sorted by load", v->stats->label, v->layer);
            ms_chart_set_note(c, note);
            ms_chart_set_size(c, 640, 340);
            ms_chart_set_x_axis(c, "expert id (sorted by load)", NULL, false);
            ms_chart_set_y_axis(c, "load", "tokens", false);
            ms_chart_set_categories(c, (const char *const *)names, E);
            uint32_t hot = (E + 9) / 10;
            for (uint32_t i = 0; i < E; i++) {
                y[i] = order[i].load;
                mark[i] = i < hot;
            }
            ms_chart_add_bars(c, "load", y, E);
            ms_chart_set_marks(c, mark, E, "hottest 10%");
        }
        free(y);
        free(mark);
        add_chart(pg, c, "expert-load", "Token-expert assignments per expert in this layer, hottest first.");
    }
    /* replicas per expert, in the same order */
    size_t nrep = 0;
    for (size_t i = 0; i < v->n_place; i++) nrep += v->place[i]->placement->n_routed == E;
    if (nrep) {
        ms_chart *c = ms_chart_new(MS_CHART_LINE, "Replicas per expert");
        double *y = ms_alloc_array(E, sizeof *y, NULL);
        if (c && y) {
            char note[200];
            snprintf(note, sizeof note, "layer %u, experts in the order of the load profile%s", v->layer,
                     s ? "" : " (by id)");
            ms_chart_set_note(c, note);
            ms_chart_set_size(c, 640, 340);
            ms_chart_set_x_axis(c, s ? "expert rank by load (0 = hottest)" : "expert id", NULL, false);
            ms_chart_set_y_axis(c, "replicas", "slots", false);
            for (size_t i = 0; i < v->n_place; i++) {
                const ms_placement *p = v->place[i]->placement;
                if (p->n_routed != E || !p->logcnt) continue;
                uint32_t pl = p->n_layers == 1 ? 0 : v->layer;
                if (pl >= p->n_layers) continue;
                for (uint32_t k = 0; k < E; k++) y[k] = p->logcnt[(size_t)pl * p->n_logical + order[k].e];
                ms_chart_add_line(c, p->algorithm[0] ? p->algorithm : v->place[i]->label, NULL, y, E, true, false);
            }
            ms_chart_set_y_range(c, 0, NAN);
        }
        free(y);
        if (c && ms_chart_series_count(c))
            add_chart(pg, c, "replicas", "How many slots each placement gives every expert (hottest on the left).");
        else
            ms_chart_free(c);
    }
    row(pg, false);
    /* co-activation */
    if (s && v->layer < s->L) {
        uint32_t n = E < v->o->coact_max ? E : v->o->coact_max;
        bool full = s->coact != NULL;
        uint32_t *ids = ms_alloc_array(n ? n : 1, sizeof *ids, NULL);
        double *m = ms_alloc_array((size_t)n * n + 1, sizeof *m, NULL);
        if (!ids || !m) pg->failed = true;
        uint32_t cnt = 0;
        if (ids && m && full) {
            for (uint32_t i = 0; i < n; i++) ids[cnt++] = order[i].e;
        } else if (ids && m) { /* experts in the listed strongest pairs, hottest first */
            for (uint32_t i = 0; i < E && cnt < n; i++) {
                bool in = false;
                for (size_t k = s->pair_off[v->layer]; k < s->pair_off[v->layer + 1] && !in; k++)
                    in = s->pair_a[k] == order[i].e || s->pair_b[k] == order[i].e;
                if (in) ids[cnt++] = order[i].e;
            }
        }
        if (cnt >= 2) {
            for (uint32_t i = 0; i < cnt; i++)
                for (uint32_t j = 0; j < cnt; j++) {
                    double val = NAN;
                    if (i == j) val = NAN;
                    else if (full) val = s->coact[((size_t)v->layer * E + ids[i]) * E + ids[j]];
                    else
                        for (size_t k = s->pair_off[v->layer]; k < s->pair_off[v->layer + 1]; k++)
                            if ((s->pair_a[k] == ids[i] && s->pair_b[k] == ids[j]) ||
                                (s->pair_a[k] == ids[j] && s->pair_b[k] == ids[i]))
                                val = s->pair_n[k];
                    m[(size_t)i * cnt + j] = val;
                }
            char **lab = calloc(cnt, sizeof *lab);
            for (uint32_t i = 0; lab && i < cnt; i++) {
                char buf[16];
                snprintf(buf, sizeof buf, "%u", ids[i]);
                lab[i] = dupstr(buf);
            }
            ms_chart *c = ms_chart_new(MS_CHART_HEATMAP, "Co-activation");
            if (c && lab) {
                char note[240];
                if (full) snprintf(note, sizeof note, "layer %u, the %u hottest experts: tokens choosing both", v->layer, cnt);
                else snprintf(note, sizeof note, "layer %u, experts of the strongest listed pairs (others blank)", v->layer);
                ms_chart_set_note(c, note);
                ms_chart_set_size(c, 720, 720);
                ms_chart_set_x_axis(c, "expert id", NULL, false);
                ms_chart_set_y_axis(c, "expert id", NULL, false);
                ms_chart_set_matrix(c, cnt, cnt, m, (const char *const *)lab, (const char *const *)lab,
                                    "tokens choosing both");
                ms_chart_set_cell_values(c, cnt <= 12);
            }
            for (uint32_t i = 0; lab && i < cnt; i++) free(lab[i]);
            free(lab);
            add_chart(pg, c, "coactivation",
                      "Tokens that chose both experts (diagonal left blank). Experts that peak together should not "
                      "share a device; experts chosen together are cheaper in one row.");
        }
        free(ids);
        free(m);
    }
    for (uint32_t i = 0; i < E; i++) free(names[i]);
    free(names);
    free(order);
    section_end(pg);
}

static void power_section(page *pg, const view *v) {
    size_t nt = 0, nb = 0, ns = 0;
    for (size_t i = 0; i < v->n_pw; i++) {
        const rp_power *p = v->pw[i];
        nt += p->n_t > 0;
        bool any = false;
        for (int k = 0; k < 4; k++) any |= isfinite(p->parts[k]);
        nb += any;
    }
    for (size_t i = 0; i < v->r->n; i++) ns += v->r->in[i].scale != NULL;
    if (!nt && !nb && !ns) return;
    section(pg, "power", "Power and energy",
            "Cluster power over time (devices that wait for the slowest one still draw idle power), where the "
            "energy goes, and how power grows with model size up to a site's power limit.");
    row(pg, true);
    if (nt) {
        ms_chart *c = ms_chart_new(MS_CHART_LINE, "Cluster power");
        if (c) {
            ms_chart_set_note(c, "power timeline");
            ms_chart_set_x_axis(c, "time", "ms", false);
            ms_chart_set_y_axis(c, "power", "W", false);
            for (size_t i = 0; i < v->n_pw; i++) {
                const rp_power *p = v->pw[i];
                if (p->n_t) ms_chart_add_line(c, p->label, p->t_ms, p->p_w, p->n_t, true, false);
            }
        }
        add_chart(pg, c, "power-timeline", "Cluster power draw over the simulated time.");
    }
    if (nb) {
        ms_chart *c = ms_chart_new(MS_CHART_BAR, "Energy breakdown");
        const char **names = calloc(v->n_pw, sizeof *names);
        double *vals[4];
        for (int k = 0; k < 4; k++) vals[k] = ms_calloc_array(v->n_pw, sizeof(double), NULL);
        if (c && names && vals[0] && vals[1] && vals[2] && vals[3]) {
            size_t n = 0;
            for (size_t i = 0; i < v->n_pw; i++) {
                const rp_power *p = v->pw[i];
                names[n] = p->label;
                for (int k = 0; k < 4; k++) vals[k][n] = p->parts[k];
                n++;
            }
            ms_chart_set_note(c, "compute, memory, communication and idle energy");
            ms_chart_set_x_axis(c, "input", NULL, false);
            ms_chart_set_y_axis(c, "energy", "J", false);
            ms_chart_set_categories(c, names, n);
            ms_chart_set_stacked(c, true);
            static const char *const part[4] = {"compute", "memory (HBM)", "communication", "idle"};
            for (int k = 0; k < 4; k++) ms_chart_add_bars(c, part[k], vals[k], n);
        } else {
            pg->failed = true;
        }
        free(names);
        for (int k = 0; k < 4; k++) free(vals[k]);
        add_chart(pg, c, "energy-breakdown", "Energy by part: compute, memory, communication, idle.");
    }
    for (size_t i = 0; i < v->r->n; i++) {
        const rp_scale *s = v->r->in[i].scale;
        if (!s) continue;
        ms_chart *c = ms_chart_new(MS_CHART_LINE, "Power against model size");
        if (c) {
            ms_chart_set_note(c, s->label);
            ms_chart_set_x_axis(c, "total parameters", "G = 10⁹, T = 10¹²", true);
            ms_chart_set_y_axis(c, "power", s->yunit, true);
            for (size_t k = 0; k < s->n_series; k++)
                ms_chart_add_line(c, s->series[k].name, s->series[k].x, s->series[k].y, s->series[k].n, false,
                                  s->series[k].n <= 64);
            for (size_t k = 0; k < s->n_walls; k++) ms_chart_add_hline(c, s->wall_y[k], s->wall_label[k]);
        }
        char slug[32];
        snprintf(slug, sizeof slug, "scaling-%zu", i + 1);
        add_chart(pg, c, slug, "Power of the model family against total parameters (log-log), with the power wall.");
    }
    row(pg, false);
    section_end(pg);
}

/* x, y of the points idx[0..n) of a Pareto answer into xs, ys (kW and the given metric) */
static size_t pareto_xy(const rp_pareto *p, const size_t *idx, size_t n, int metric, double *xs, double *ys) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const rp_ppoint *q = &p->pts[idx[i]];
        double y = metric == 0 ? q->t_us : q->energy_tok * 1e3;
        if (!isfinite(q->peak_w) || !isfinite(y)) continue;
        xs[m] = q->peak_w / 1e3;
        ys[m++] = y;
    }
    return m;
}

/* One chart of a Pareto answer against peak power: the front as a line,
 * every other point (EPLB and the other algorithms, dominated searches) as a
 * marker of its own. metric 0: layer time, 1: energy per token. */
static ms_chart *pareto_chart(const rp_input *in, int metric) {
    const rp_pareto *p = in->pareto;
    ms_chart *c = ms_chart_new(MS_CHART_LINE, metric == 0 ? "Layer time against peak power"
                                                           : "Energy per token against peak power");
    size_t *idx = calloc(p->n, sizeof *idx);
    double *xs = calloc(p->n, sizeof *xs), *ys = calloc(p->n, sizeof *ys);
    if (!c || !idx || !xs || !ys) {
        free(idx);
        free(xs);
        free(ys);
        ms_chart_free(c);
        return NULL;
    }
    char note[320];
    snprintf(note, sizeof note, "%s: front on %s (training requests)", in->label, p->axes);
    ms_chart_set_note(c, note);
    ms_chart_set_x_axis(c, "peak cluster power", "kW", false);
    if (metric == 0) ms_chart_set_y_axis(c, "mean layer time", "µs", false);
    else ms_chart_set_y_axis(c, "energy per token", "mJ", false);
    size_t nf = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->pts[i].front) idx[nf++] = i;
    /* the front in order of peak power (insertion sort: a few points) */
    for (size_t i = 1; i < nf; i++)
        for (size_t j = i; j > 0 && p->pts[idx[j]].peak_w < p->pts[idx[j - 1]].peak_w; j--) {
            size_t t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    size_t m = pareto_xy(p, idx, nf, metric, xs, ys);
    if (m) ms_chart_add_line(c, "front", xs, ys, m, false, true);
    for (size_t i = 0; i < p->n; i++) {
        const rp_ppoint *q = &p->pts[i];
        if (q->front && strcmp(q->source, "search") == 0) continue; /* on the front line */
        if (pareto_xy(p, &i, 1, metric, xs, ys) != 1) continue;
        char name[96];
        snprintf(name, sizeof name, "%s%s", q->label, strcmp(q->source, "init") == 0 ? " (init)" : "");
        ms_chart_add_line(c, name, xs, ys, 1, false, true);
    }
    free(idx);
    free(xs);
    free(ys);
    return c;
}

static void pareto_section(page *pg, const view *v) {
    size_t n = 0;
    for (size_t i = 0; i < v->r->n; i++) n += v->r->in[i].pareto != NULL;
    if (!n) return;
    section(pg, "pareto", "Power against time: Pareto fronts",
            "Placements that no other placement beats on every axis (place --pareto), with EPLB and the other "
            "algorithms as points: mean layer time and energy per token against the peak cluster power.");
    for (size_t i = 0; i < v->r->n; i++) {
        const rp_input *in = &v->r->in[i];
        if (!in->pareto) continue;
        row(pg, true);
        char slug[48];
        snprintf(slug, sizeof slug, "pareto-time-%zu", i + 1);
        add_chart(pg, pareto_chart(in, 0), slug, "Mean layer time against peak cluster power; the line joins the front.");
        snprintf(slug, sizeof slug, "pareto-energy-%zu", i + 1);
        add_chart(pg, pareto_chart(in, 1), slug, "Energy per token against peak cluster power, the same points.");
        row(pg, false);
        ms_sbuf h;
        ms_sbuf_init(&h);
        static const char *const cols[] = {"point", "source", "front", "layer time (µs)", "p99 layer time (µs)",
                                           "peak power (kW)", "energy per token (mJ)", NULL};
        ms_sbuf_puts(&h, "<div class=\"scroll\">");
        th_row(&h, cols);
        for (size_t k = 0; k < in->pareto->n; k++) {
            const rp_ppoint *q = &in->pareto->pts[k];
            ms_sbuf_puts(&h, "<tr>");
            td_text(&h, q->label, "l");
            td_text(&h, q->source, "l");
            td_text(&h, q->front ? "yes" : "", "l");
            td_num(&h, q->t_us, 5);
            td_num(&h, q->p99_us, 5);
            td_num(&h, q->peak_w / 1e3, 5);
            td_num(&h, q->energy_tok * 1e3, 5);
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table></div>\n");
        add_html(pg, &h);
    }
    section_end(pg);
}

/* ------------------------------------------------------------ replay */

/* Runs of one policy with one budget, intervals in one unit: the points of a
 * line of the "how often" chart. */
static bool same_group(const rp_rrun *a, const rp_rrun *b) {
    return a->policy == b->policy && a->max_moves == b->max_moves && a->every.unit == b->every.unit;
}

static bool same_span(const ms_span *a, const ms_span *b) { return a->n == b->n && a->unit == b->unit; }

static int span_cmp(const ms_span *a, const ms_span *b) {
    if (a->unit != b->unit) return a->unit < b->unit ? -1 : 1;
    return (a->n > b->n) - (a->n < b->n);
}

/* Distinct incremental budgets of p below m, and (in *count) all of them. */
static size_t budget_rank(const rp_replay *p, int64_t m, size_t *count) {
    size_t rank = 0, n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        if (r->policy != MS_REBALANCE_INCREMENTAL) continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = p->runs[j].policy == MS_REBALANCE_INCREMENTAL && p->runs[j].max_moves == r->max_moves;
        if (seen) continue;
        n++;
        rank += r->max_moves < m;
    }
    if (count) *count = n;
    return rank;
}

/* A policy keeps its palette colour in every chart: static dashed grey, EPLB orange,
 * incremental blue (its budgets blue, sky blue, purple, black), oracle green. */
static size_t run_color(const rp_replay *p, const rp_rrun *r) {
    static const size_t inc[4] = {0, 4, 3, 7};
    switch (r->policy) {
    case MS_REBALANCE_STATIC: return 14; /* dashed */
    case MS_REBALANCE_PERIODIC_EPLB: return 1;
    case MS_REBALANCE_INCREMENTAL: return inc[budget_rank(p, r->max_moves, NULL) % 4];
    case MS_REBALANCE_ORACLE: return 2;
    }
    return 5;
}

/* "incremental, 64 moves" when the file has several budgets, else the policy. */
static void run_name(const rp_replay *p, const rp_rrun *r, char *buf, size_t len) {
    size_t nb;
    budget_rank(p, 0, &nb);
    if (r->policy == MS_REBALANCE_INCREMENTAL && nb > 1)
        snprintf(buf, len, "incremental, %lld moves", (long long)r->max_moves);
    else
        snprintf(buf, len, "%s", ms_rebalance_name(r->policy));
}

/* The run of r's group (same_group) with the lowest total time, ties to the
 * first; SIZE_MAX when the group has fewer than two runs or r is static or
 * the oracle (no interval to choose). */
static size_t group_best(const rp_replay *p, const rp_rrun *r) {
    if (r->policy == MS_REBALANCE_STATIC || r->policy == MS_REBALANCE_ORACLE) return SIZE_MAX;
    size_t best = SIZE_MAX, n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!same_group(&p->runs[i], r)) continue;
        n++;
        if (best == SIZE_MAX || p->runs[i].total_us < p->runs[best].total_us) best = i;
    }
    return n > 1 ? best : SIZE_MAX;
}

static const rp_rrun *static_run(const rp_replay *p) {
    for (size_t i = 0; i < p->n; i++)
        if (p->runs[i].policy == MS_REBALANCE_STATIC) return &p->runs[i];
    return NULL;
}

/* Distinct intervals of p's runs but static, sorted (steps before tokens,
 * then by length): a new array in *out (NULL when there are none) and its
 * length in *n. false when out of memory. */
static bool replay_intervals(const rp_replay *p, ms_span **out, size_t *n) {
    *out = NULL;
    *n = 0;
    ms_span *v = calloc(p->n, sizeof *v);
    if (!v) return false;
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        if (r->policy == MS_REBALANCE_STATIC) continue;
        size_t j = 0;
        while (j < *n && span_cmp(&v[j], &r->every) < 0) j++;
        if (j < *n && same_span(&v[j], &r->every)) continue;
        memmove(v + j + 1, v + j, (*n - j) * sizeof *v);
        v[j] = r->every;
        (*n)++;
    }
    if (*n) *out = v;
    else free(v);
    return true;
}

/* The steps of r in buckets of k consecutive ones: x the mean step number,
 * y the mean imbalance (of the finite ones; NAN when none) of each. x and y
 * hold ceil(n_steps / k). Returns that count. Cannot fail. */
static size_t bucket_means(const rp_rrun *r, size_t k, double *x, double *y) {
    size_t m = 0;
    for (size_t a = 0; a < r->n_steps; a += k, m++) {
        size_t b = a + k < r->n_steps ? a + k : r->n_steps, cnt = 0;
        double sx = 0, sy = 0;
        for (size_t i = a; i < b; i++) {
            sx += r->step[i];
            if (isfinite(r->imb[i])) sy += r->imb[i], cnt++;
        }
        x[m] = sx / (double)(b - a);
        y[m] = cnt ? sy / (double)cnt : NAN;
    }
    return m;
}

/* The trace's label when short enough for a chart's note, else the file's. */
static const char *replay_source(const rp_input *in) {
    size_t n = 0;
    for (const char *s = in->replay->trace; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n <= 60 ? in->replay->trace : in->label;
}

#define REPLAY_POINTS 500 /* most points a line of imbalance over time has */

/* Imbalance over the steps of p's static run and the runs re-placing every
 * `every` (NULL: static only), marks at every re-placement's effective step
 * and its bytes in a strip beneath. *per_point: steps averaged per point;
 * *marks: marks drawn. NULL when out of memory. */
static ms_chart *replay_time_chart(const rp_input *in, const ms_span *every, size_t *per_point, size_t *marks) {
    const rp_replay *p = in->replay;
    char title[128], note[400], sp[48], name[64], tip[256];
    if (every)
        snprintf(title, sizeof title, "Imbalance over time, re-placing every %s", ms_span_format(every, sp, sizeof sp));
    else
        snprintf(title, sizeof title, "Imbalance over time");
    ms_chart *c = ms_chart_new(MS_CHART_LINE, title);
    size_t nmax = 0;
    for (size_t i = 0; i < p->n; i++) nmax = p->runs[i].n_steps > nmax ? p->runs[i].n_steps : nmax;
    size_t k = nmax > REPLAY_POINTS ? (nmax + REPLAY_POINTS - 1) / REPLAY_POINTS : 1;
    double *x = ms_alloc_array(nmax / k + 1, sizeof *x, NULL), *y = ms_alloc_array(nmax / k + 1, sizeof *y, NULL);
    if (!c || !x || !y) {
        free(x);
        free(y);
        ms_chart_free(c);
        return NULL;
    }
    *per_point = k;
    *marks = 0;
    snprintf(note, sizeof note, "%s: mean over layers of max/mean device load per step", replay_source(in));
    ms_chart_set_note(c, note);
    ms_chart_set_size(c, 900, 360);
    ms_chart_set_x_axis(c, "step", NULL, false);
    ms_chart_set_y_axis(c, "imbalance", "max/mean", false);
    ms_chart_set_strip(c, 80, "copied", "GB");
    const rp_rrun *st = static_run(p);
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        bool in_chart = r == st || (r->policy != MS_REBALANCE_STATIC && every && same_span(&r->every, every));
        if (!in_chart || !r->n_steps) continue;
        size_t s = ms_chart_series_count(c), m = bucket_means(r, k, x, y);
        run_name(p, r, name, sizeof name);
        ms_chart_add_line(c, name, x, y, m, false, false);
        ms_chart_set_series_color(c, s, run_color(p, r));
        for (size_t e = 0; e < r->n_ev; e++) {
            const rp_revent *ev = &r->ev[e];
            snprintf(tip, sizeof tip,
                     "%s: re-placement decided after %llu steps, serving from step %llu; %llu replicas, %.3g GB", name,
                     (unsigned long long)ev->point, (unsigned long long)ev->effective, (unsigned long long)ev->moved,
                     ev->bytes / 1e9);
            ms_chart_add_xmark(c, s, (double)ev->effective, tip);
            snprintf(tip, sizeof tip, "%s, step %llu: %.3g GB copied (%llu replicas)", name,
                     (unsigned long long)ev->effective, ev->bytes / 1e9, (unsigned long long)ev->moved);
            ms_chart_add_strip_bar(c, s, (double)ev->effective, ev->bytes / 1e9, tip);
            (*marks)++;
        }
    }
    if (p->split_step >= 0) {
        snprintf(tip, sizeof tip, "from request %lld", (long long)p->after_request);
        ms_chart_add_vline(c, (double)p->split_step, tip);
    }
    free(x);
    free(y);
    return c;
}

/* Total time against the interval (in unit) for each group of runs, static
 * as a flat line, each group's best interval marked. NULL when out of
 * memory. */
static ms_chart *replay_often_chart(const rp_input *in, ms_span_unit unit) {
    const rp_replay *p = in->replay;
    ms_chart *c = ms_chart_new(MS_CHART_LINE, "Total time against the re-placement interval");
    double *x = ms_alloc_array(p->n, sizeof *x, NULL), *y = ms_alloc_array(p->n, sizeof *y, NULL);
    size_t *idx = ms_alloc_array(p->n, sizeof *idx, NULL);
    if (!c || !x || !y || !idx) {
        free(x);
        free(y);
        free(idx);
        ms_chart_free(c);
        return NULL;
    }
    char note[400], name[64], tip[200], sp[48];
    snprintf(note, sizeof note, "%s: serving + migration, the whole trace", replay_source(in));
    ms_chart_set_note(c, note);
    ms_chart_set_size(c, 760, 380);
    double lo = INFINITY, hi = 0;
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        if (r->policy == MS_REBALANCE_STATIC || r->every.unit != unit) continue;
        lo = fmin(lo, (double)r->every.n);
        hi = fmax(hi, (double)r->every.n);
    }
    ms_chart_set_x_axis(c, "re-placement interval", unit == MS_SPAN_TOKENS ? "tokens" : "steps", hi >= 10 * lo);
    ms_chart_set_y_axis(c, "total time", "ms", false);
    const rp_rrun *st = static_run(p);
    if (st) {
        double sx[2] = {lo, hi}, sy[2] = {st->total_us / 1e3, st->total_us / 1e3};
        ms_chart_add_line(c, "static", sx, sy, 2, false, false);
        ms_chart_set_series_color(c, 0, run_color(p, st));
    }
    /* one line per group: the first run of each, in policy then budget order */
    size_t ng = 0;
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        if (r->policy == MS_REBALANCE_STATIC || r->every.unit != unit) continue;
        bool first = true;
        for (size_t j = 0; j < i && first; j++) first = !same_group(&p->runs[j], r);
        if (!first) continue;
        size_t j = ng++;
        for (; j > 0; j--) {
            const rp_rrun *q = &p->runs[idx[j - 1]];
            if (q->policy < r->policy || (q->policy == r->policy && q->max_moves < r->max_moves)) break;
            idx[j] = idx[j - 1];
        }
        idx[j] = i;
    }
    for (size_t g = 0; g < ng; g++) {
        const rp_rrun *lead = &p->runs[idx[g]];
        size_t m = 0;
        for (size_t i = 0; i < p->n; i++) {
            const rp_rrun *r = &p->runs[i];
            if (!same_group(r, lead)) continue;
            size_t j = m++;
            for (; j > 0 && x[j - 1] > (double)r->every.n; j--) x[j] = x[j - 1], y[j] = y[j - 1];
            x[j] = (double)r->every.n;
            y[j] = r->total_us / 1e3;
        }
        size_t s = ms_chart_series_count(c);
        run_name(p, lead, name, sizeof name);
        ms_chart_add_line(c, name, x, y, m, false, true);
        ms_chart_set_series_color(c, s, run_color(p, lead));
        size_t best = group_best(p, lead);
        if (best != SIZE_MAX) {
            const rp_rrun *b = &p->runs[best];
            snprintf(tip, sizeof tip, "best for %s: every %s, %.6g ms", name, ms_span_format(&b->every, sp, sizeof sp),
                     b->total_us / 1e3);
            ms_chart_add_ring(c, s, (double)b->every.n, b->total_us / 1e3, tip);
        }
    }
    free(x);
    free(y);
    free(idx);
    return c;
}

static size_t replay_count(const view *v) {
    size_t n = 0;
    for (size_t i = 0; i < v->r->n; i++) n += v->r->in[i].replay != NULL;
    return n;
}

/* An <h3> naming a replay input: its file and trace. */
static void replay_heading(page *pg, const rp_input *in) {
    ms_sbuf h;
    ms_sbuf_init(&h);
    ms_sbuf_puts(&h, "<h3>");
    ms_sbuf_put_xml(&h, in->label);
    ms_sbuf_puts(&h, ": ");
    ms_sbuf_put_xml(&h, in->replay->trace);
    ms_sbuf_puts(&h, "</h3>\n");
    add_html(pg, &h);
}

static void note_html(page *pg, const char *text) {
    ms_sbuf h;
    ms_sbuf_init(&h);
    ms_sbuf_puts(&h, "<p class=\"note\">");
    ms_sbuf_put_xml(&h, text);
    ms_sbuf_puts(&h, "</p>\n");
    add_html(pg, &h);
}

/* The intervals of iv[0..n) drawn over time: all of them up to 4, else the
 * smallest, the one of the fastest run (periodic-eplb or incremental; the
 * middle one when that is the smallest or the largest) and the largest.
 * Returns how many were chosen into pick (at most 4). */
static size_t replay_picks(const rp_replay *p, const ms_span *iv, size_t n, ms_span pick[4]) {
    if (n <= 4) {
        for (size_t i = 0; i < n; i++) pick[i] = iv[i];
        return n;
    }
    const rp_rrun *fast = NULL;
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        if ((r->policy == MS_REBALANCE_PERIODIC_EPLB || r->policy == MS_REBALANCE_INCREMENTAL) &&
            (!fast || r->total_us < fast->total_us))
            fast = r;
    }
    bool end = !fast || same_span(&fast->every, &iv[0]) || same_span(&fast->every, &iv[n - 1]);
    pick[0] = iv[0];
    pick[1] = end ? iv[n / 2] : fast->every;
    pick[2] = iv[n - 1];
    return 3;
}

static void replay_section(page *pg, const view *v) {
    if (!replay_count(v)) return;
    section(pg, "replay", "Re-placement over time",
            "How balanced each step is while the policies re-place experts (moesim replay): the mean over layers of "
            "the max/mean device load of every step, one line per policy, static for reference. A triangle in a "
            "policy's colour (and a thin line, where they are few) marks each re-placement at the first step the new "
            "placement serves; the bars beneath are the bytes it copied. A red dashed line marks --after-request, "
            "where the statistics split.");
    for (size_t i = 0; i < v->r->n; i++) {
        const rp_input *in = &v->r->in[i];
        const rp_replay *p = in->replay;
        if (!p) continue;
        replay_heading(pg, in);
        bool steps = false;
        for (size_t k = 0; k < p->n; k++) steps |= p->runs[k].n_steps > 0;
        if (!steps) {
            note_html(pg, "Written with --no-steps: no imbalance per step to draw.");
            continue;
        }
        ms_span *iv, pick[4];
        size_t n_iv;
        if (!replay_intervals(p, &iv, &n_iv)) {
            pg->failed = true;
            return;
        }
        size_t n_pick = replay_picks(p, iv, n_iv, pick);
        if (n_pick < n_iv) {
            char text[200];
            snprintf(text, sizeof text,
                     "%zu intervals: drawn are the smallest, the one of the fastest run (or the middle one) and "
                     "the largest.", n_iv);
            note_html(pg, text);
        }
        free(iv);
        for (size_t k = 0; k < (n_pick ? n_pick : 1); k++) {
            const ms_span *every = n_pick ? &pick[k] : NULL;
            const rp_rrun *any = NULL;
            for (size_t j = 0; j < p->n && !any && every; j++)
                if (p->runs[j].policy != MS_REBALANCE_STATIC && same_span(&p->runs[j].every, every)) any = &p->runs[j];
            size_t per = 1, marks = 0, nmax = 0;
            ms_chart *c = replay_time_chart(in, every, &per, &marks);
            for (size_t j = 0; j < p->n; j++) nmax = p->runs[j].n_steps > nmax ? p->runs[j].n_steps : nmax;
            ms_sbuf cap;
            ms_sbuf_init(&cap);
            char sp[48], wp[48];
            if (any)
                ms_sbuf_printf(&cap, "Re-placing every %s (window %s, migration %s): ",
                               ms_span_format(every, sp, sizeof sp), ms_span_format(&any->window, wp, sizeof wp),
                               ms_migration_name(any->migration));
            ms_sbuf_printf(&cap, "imbalance of every step under each policy; %zu marks at the steps re-placements take "
                                 "effect, the bytes each copied beneath (GB).", marks);
            if (per > 1)
                ms_sbuf_printf(&cap, " Downsampled: each point is the mean of %zu consecutive steps (%zu steps).", per,
                               nmax);
            char slug[64];
            if (every)
                snprintf(slug, sizeof slug, "replay-%zu-every-%llu%s", i + 1, (unsigned long long)every->n,
                         every->unit == MS_SPAN_TOKENS ? "tokens" : "steps");
            else
                snprintf(slug, sizeof slug, "replay-%zu-static", i + 1);
            if (cap.failed) pg->failed = true;
            add_chart(pg, c, slug, cap.s ? cap.s : "");
            ms_sbuf_free(&cap);
        }
    }
    section_end(pg);
}

/* "periodic-eplb every 50 steps (1098.76 ms); ..." for the groups of p with
 * a best interval, appended to b; returns how many. */
static size_t replay_bests(const rp_replay *p, ms_sbuf *b) {
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        size_t best = group_best(p, r);
        bool first = true;
        for (size_t j = 0; j < i && first; j++) first = !same_group(&p->runs[j], r);
        if (best == SIZE_MAX || !first) continue;
        char name[64], sp[48];
        run_name(p, r, name, sizeof name);
        ms_sbuf_printf(b, "%s%s every %s (%.6g ms)", n ? "; " : "", name,
                       ms_span_format(&p->runs[best].every, sp, sizeof sp), p->runs[best].total_us / 1e3);
        n++;
    }
    return n;
}

static void replay_table(page *pg, const rp_replay *p) {
    ms_sbuf h;
    ms_sbuf_init(&h);
    char split[64];
    snprintf(split, sizeof split, "mean imbalance from request %lld", (long long)p->after_request);
    const char *cols[16] = {"policy", "interval", "window", "max moves", "re-placements", "replicas moved",
                            "GB moved", "migration (ms)", "serving (ms)", "total (ms)", "mean imbalance"};
    size_t nc = 11;
    if (p->split_step >= 0) cols[nc++] = split;
    cols[nc++] = "saved vs static (ms)";
    cols[nc++] = "best interval";
    cols[nc] = NULL;
    ms_sbuf_puts(&h, "<div class=\"scroll\">");
    th_row(&h, cols);
    const rp_rrun *st = static_run(p);
    for (size_t i = 0; i < p->n; i++) {
        const rp_rrun *r = &p->runs[i];
        char buf[64];
        bool stat = r->policy == MS_REBALANCE_STATIC;
        ms_sbuf_puts(&h, "<tr>");
        run_name(p, r, buf, sizeof buf);
        td_text(&h, buf, "l");
        td_text(&h, stat ? "-" : ms_span_format(&r->every, buf, sizeof buf), "r");
        td_text(&h, stat ? "-" : ms_span_format(&r->window, buf, sizeof buf), "r");
        if (r->max_moves >= 0) td_num(&h, (double)r->max_moves, 8);
        else td_text(&h, "-", "r");
        td_num(&h, (double)r->replacements, 8);
        td_num(&h, (double)r->moved, 8);
        td_num(&h, r->bytes / 1e9, 4);
        td_num(&h, r->migration_us / 1e3, 6);
        td_num(&h, r->serve_us / 1e3, 6);
        td_num(&h, r->total_us / 1e3, 6);
        td_num(&h, r->imbalance, 4);
        if (p->split_step >= 0) td_num(&h, r->imbalance_after, 4);
        if (st && r != st) td_num(&h, (st->total_us - r->total_us) / 1e3, 6);
        else td_text(&h, "-", "r");
        td_text(&h, group_best(p, r) == i ? "best" : "", "l");
        ms_sbuf_puts(&h, "</tr>\n");
    }
    ms_sbuf_puts(&h, "</table></div>\n");
    add_html(pg, &h);
}

static void often_section(page *pg, const view *v) {
    if (!replay_count(v)) return;
    section(pg, "how-often", "How often to rebalance",
            "Serving plus migration time of the whole trace against the re-placement interval: re-placing more often "
            "follows the traffic more closely but copies more weights. Static (no re-placement) is the flat line, "
            "the oracle (hindsight, copies free) the bound; a ring marks each policy's best interval.");
    for (size_t i = 0; i < v->r->n; i++) {
        const rp_input *in = &v->r->in[i];
        const rp_replay *p = in->replay;
        if (!p) continue;
        replay_heading(pg, in);
        ms_sbuf best;
        ms_sbuf_init(&best);
        size_t nb = replay_bests(p, &best);
        ms_span *iv;
        size_t n_iv;
        if (!replay_intervals(p, &iv, &n_iv)) {
            pg->failed = true;
            ms_sbuf_free(&best);
            return;
        }
        bool drawn = false;
        for (int u = MS_SPAN_STEPS; u <= MS_SPAN_TOKENS; u++) {
            size_t in_unit = 0;
            for (size_t k = 0; k < n_iv; k++) in_unit += (int)iv[k].unit == u;
            if (in_unit < 2) continue;
            ms_sbuf cap;
            ms_sbuf_init(&cap);
            ms_sbuf_printf(&cap, "Total time (serving + migration) of each policy against its interval in %s.",
                           u == MS_SPAN_TOKENS ? "tokens" : "steps");
            if (nb) ms_sbuf_printf(&cap, " Best: %s.", best.s);
            const rp_rrun *st = static_run(p);
            if (st) ms_sbuf_printf(&cap, " Static: %.6g ms.", st->total_us / 1e3);
            char slug[64];
            snprintf(slug, sizeof slug, "replay-%zu-how-often%s", i + 1, u == MS_SPAN_TOKENS ? "-tokens" : "");
            if (cap.failed) pg->failed = true;
            add_chart(pg, replay_often_chart(in, (ms_span_unit)u), slug, cap.s ? cap.s : "");
            ms_sbuf_free(&cap);
            drawn = true;
        }
        free(iv);
        if (!drawn)
            note_html(pg, "One interval per policy: replay several (--rebalance-every 10,20,50) for the curve.");
        if (nb) {
            ms_sbuf h;
            ms_sbuf_init(&h);
            ms_sbuf_puts(&h, "<p>Best interval: ");
            ms_sbuf_put_xml(&h, best.s);
            ms_sbuf_puts(&h, ".</p>\n");
            add_html(pg, &h);
        }
        if (best.failed) pg->failed = true;
        ms_sbuf_free(&best);
        replay_table(pg, p);
    }
    section_end(pg);
}

static void tables_section(page *pg, const view *v) {
    size_t n = 0;
    for (size_t i = 0; i < v->r->n; i++) n += v->r->in[i].table != NULL;
    if (!n) return;
    section(pg, "tables", "Other results", NULL);
    ms_sbuf h;
    ms_sbuf_init(&h);
    for (size_t i = 0; i < v->r->n; i++) {
        const rp_table *t = v->r->in[i].table;
        if (!t) continue;
        ms_sbuf_puts(&h, "<h3>");
        ms_sbuf_put_xml(&h, v->r->in[i].label);
        ms_sbuf_printf(&h, " (%s)</h3>\n<div class=\"scroll\"><table>\n<tr>", ms_report_kind_name(v->r->in[i].kind));
        for (size_t c = 0; c < t->n_cols; c++) {
            ms_sbuf_puts(&h, "<th>");
            ms_sbuf_put_xml(&h, t->head[c] ? t->head[c] : "");
            ms_sbuf_puts(&h, "</th>");
        }
        ms_sbuf_puts(&h, "</tr>\n");
        for (size_t r = 0; r < t->n_rows; r++) {
            ms_sbuf_puts(&h, "<tr>");
            for (size_t c = 0; c < t->n_cols; c++) {
                const char *s = t->cell[r * t->n_cols + c];
                char *end = NULL;
                bool num = s && *s && (strtod(s, &end), end && *end == '\0');
                td_text(&h, s ? s : "", num ? "r" : "l");
            }
            ms_sbuf_puts(&h, "</tr>\n");
        }
        ms_sbuf_puts(&h, "</table></div>\n");
    }
    add_html(pg, &h);
    section_end(pg);
}

/* ------------------------------------------------------------- build */

static ms_status build(const ms_report *r, const ms_report_opts *o, page *pg, ms_error *err) {
    memset(pg, 0, sizeof *pg);
    if (!r->n) return ms_error_set(err, MS_E_INPUT, "no inputs for the report");
    view v = {.r = r, .o = o};
    /* the statistics the charts use: the first with full co-activation
     * matrices (a trace given to the report), else the first */
    for (size_t i = 0; i < r->n && !v.stats; i++)
        if (r->in[i].stats && r->in[i].stats->coact) v.stats = &r->in[i];
    for (size_t i = 0; i < r->n; i++) {
        if (r->in[i].stats && !v.stats) v.stats = &r->in[i];
        v.n_runs += r->in[i].n_runs;
        v.n_place += r->in[i].placement != NULL;
    }
    for (size_t i = 0; i < r->n; i++) v.n_pw += r->in[i].n_power;
    v.runs = calloc(v.n_runs ? v.n_runs : 1, sizeof *v.runs);
    v.place = calloc(v.n_place ? v.n_place : 1, sizeof *v.place);
    v.pw = calloc(v.n_pw ? v.n_pw : 1, sizeof *v.pw);
    if (!v.runs || !v.place || !v.pw) {
        free(v.runs);
        free(v.place);
        free(v.pw);
        return ms_error_set(err, MS_E_NOMEM, "out of memory");
    }
    size_t nr = 0, np = 0, nw = 0;
    for (size_t i = 0; i < r->n; i++) {
        for (size_t k = 0; k < r->in[i].n_power; k++) v.pw[nw++] = &r->in[i].power[k];
        for (size_t k = 0; k < r->in[i].n_runs; k++) v.runs[nr++] = (run_ref){&r->in[i].runs[k], &r->in[i]};
        if (r->in[i].placement) v.place[np++] = &r->in[i];
    }
    if (o->layer >= 0) {
        uint32_t maxl = 0;
        for (size_t i = 0; i < r->n; i++) {
            if (r->in[i].stats) maxl = r->in[i].stats->L > maxl ? r->in[i].stats->L : maxl;
            if (r->in[i].placement) maxl = r->in[i].placement->n_layers > maxl ? r->in[i].placement->n_layers : maxl;
            for (size_t k = 0; k < r->in[i].n_runs; k++)
                for (size_t j = 0; j < r->in[i].runs[k].n_rec; j++)
                    if (r->in[i].runs[k].r_layer[j] + 1 > (int64_t)maxl) maxl = (uint32_t)(r->in[i].runs[k].r_layer[j] + 1);
        }
        if (maxl && o->layer >= (int64_t)maxl) {
            free(v.runs);
            free(v.place);
            free(v.pw);
            return ms_error_set(err, MS_E_INPUT, "--layer %lld is out of range: the inputs have %u layers",
                                (long long)o->layer, maxl);
        }
        v.layer = (uint32_t)o->layer;
    } else if (v.stats) {
        const rp_stats *s = v.stats->stats;
        for (uint32_t l = 1; l < s->L; l++)
            if (s->ratio[l] > s->ratio[v.layer]) v.layer = l;
    }
    ms_sbuf_init(&pg->toc);
    summary_section(pg, &v);
    grid_section(pg, &v);
    dist_section(pg, &v);
    layer_section(pg, &v);
    traffic_section(pg, &v);
    experts_section(pg, &v);
    power_section(pg, &v);
    pareto_section(pg, &v);
    replay_section(pg, &v);
    often_section(pg, &v);
    tables_section(pg, &v);
    free(v.runs);
    free(v.place);
    free(v.pw);
    if (pg->failed || pg->toc.failed) {
        page_free(pg);
        return ms_error_set(err, MS_E_NOMEM, "out of memory while building the report");
    }
    return MS_OK;
}

static const char *css =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1380px;padding:0 16px;"
    "color:#222;background:#fafafa}\n"
    "h1{font-size:26px;margin-bottom:4px}h2{font-size:20px;border-bottom:2px solid #0072B2;padding-bottom:4px;"
    "margin-top:40px}h3{font-size:15px;margin:18px 0 6px}\n"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;background:#fff}th,td{border:1px solid "
    "#d0d0d0;padding:4px 8px;text-align:right;vertical-align:top}th{background:#eef3f8;text-align:center}"
    "td.l{text-align:left}td.details{text-align:left;font-size:12px;color:#444;max-width:760px;"
    "overflow-wrap:anywhere}\n"
    ".row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}figure{margin:8px 0;background:#fff;"
    "border:1px solid #e2e2e2;padding:6px}figcaption{font-size:12px;color:#555;max-width:640px;margin-top:4px}"
    "svg.chart{display:block}\n"
    ".note{color:#555;font-size:13px;max-width:1000px}.scroll{overflow-x:auto}nav ul{columns:2;font-size:14px}\n";

static ms_status emit_html(const ms_report *r, const ms_report_opts *o, const page *pg, FILE *fp, ms_error *err) {
    ms_sbuf h;
    ms_sbuf_init(&h);
    ms_sbuf_puts(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                     "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    ms_sbuf_put_xml(&h, o->title);
    ms_sbuf_printf(&h, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", css);
    ms_sbuf_put_xml(&h, o->title);
    ms_sbuf_printf(&h, "</h1>\n<p class=\"note\">Written by moesim %s from %zu input%s. Every chart is inline SVG; "
                       "hover a bar or cell for its value.</p>\n<nav><ul>\n",
                   MS_VERSION, r->n, r->n == 1 ? "" : "s");
    ms_sbuf_puts(&h, pg->toc.s ? pg->toc.s : "");
    ms_sbuf_puts(&h, "</ul></nav>\n");
    size_t chart_no = 0;
    ms_status st = MS_OK;
    for (size_t i = 0; i < pg->n && st == MS_OK; i++) {
        const block *b = &pg->b[i];
        switch (b->t) {
        case B_HTML: ms_sbuf_puts(&h, b->html); break;
        case B_ROW_OPEN: ms_sbuf_puts(&h, "<div class=\"row\">\n"); break;
        case B_ROW_CLOSE: ms_sbuf_puts(&h, "</div>\n"); break;
        case B_CHART: {
            char id[96];
            snprintf(id, sizeof id, "c%02zu-%s", ++chart_no, b->slug);
            ms_sbuf_puts(&h, "<figure>\n");
            st = ms_chart_render(b->chart, &h, false, id, err);
            if (st == MS_E_INPUT) { /* nothing to draw: say so instead of failing the page */
                ms_error_clear(err);
                st = MS_OK;
                ms_sbuf_puts(&h, "<p class=\"note\">(no data to draw)</p>\n");
            }
            ms_sbuf_puts(&h, "<figcaption>");
            ms_sbuf_put_xml(&h, b->caption);
            ms_sbuf_puts(&h, "</figcaption>\n</figure>\n");
            break;
        }
        }
    }
    ms_sbuf_puts(&h, "</body>\n</html>\n");
    if (st == MS_OK) st = ms_sbuf_status(&h, err);
    if (st == MS_OK && (fwrite(h.s, 1, h.len, fp) != h.len || ferror(fp)))
        st = ms_error_set(err, MS_E_IO, "writing the report failed");
    ms_sbuf_free(&h);
    return st;
}

ms_status ms_report_write_html(const ms_report *r, const ms_report_opts *o, FILE *fp, ms_error *err) {
    ms_report_opts def;
    if (!o) {
        ms_report_opts_default(&def);
        o = &def;
    }
    page pg;
    ms_status st = build(r, o, &pg, err);
    if (st != MS_OK) return st;
    st = emit_html(r, o, &pg, fp, err);
    page_free(&pg);
    return st;
}

ms_status ms_report_write_svgs(const ms_report *r, const ms_report_opts *o, const char *dir, size_t *count,
                               ms_error *err) {
    ms_report_opts def;
    if (!o) {
        ms_report_opts_default(&def);
        o = &def;
    }
    if (count) *count = 0;
    page pg;
    ms_status st = build(r, o, &pg, err);
    if (st != MS_OK) return st;
    st = ms_mkdir_p(dir, err);
    size_t chart_no = 0, written = 0;
    ms_sbuf s;
    ms_sbuf_init(&s);
    for (size_t i = 0; i < pg.n && st == MS_OK; i++) {
        const block *b = &pg.b[i];
        if (b->t != B_CHART) continue;
        char id[96];
        snprintf(id, sizeof id, "c%02zu-%s", ++chart_no, b->slug);
        ms_sbuf_reset(&s);
        st = ms_chart_render(b->chart, &s, true, id, err);
        if (st == MS_E_INPUT) {
            ms_error_clear(err);
            st = MS_OK;
            continue;
        }
        if (st != MS_OK) break;
        size_t plen = strlen(dir) + strlen(id) + 8;
        char *path = malloc(plen);
        if (!path) {
            st = ms_error_set(err, MS_E_NOMEM, "out of memory");
            break;
        }
        snprintf(path, plen, "%s/%s.svg", dir, id);
        ms_afile f;
        st = ms_afile_open(&f, path, err);
        if (st == MS_OK) {
            if (fwrite(s.s, 1, s.len, f.fp) != s.len) {
                ms_afile_abort(&f);
                st = ms_error_set(err, MS_E_IO, "%s: write failed", path);
            } else {
                st = ms_afile_commit(&f, err);
            }
        }
        free(path);
        if (st == MS_OK) written++;
    }
    ms_sbuf_free(&s);
    page_free(&pg);
    if (count) *count = written;
    return st;
}
