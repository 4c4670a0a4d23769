/* bench_gen.c - speed of the synthetic trace generator: routing events per
 * second for a group-limited (DeepSeek-V3) and a plain (Qwen3) router, and
 * the time to generate and write a DeepSeek-V3-scale trace as stored npz.
 * MOESIM_BENCH_GEN_TOKENS sets the trace size (default 1000000 tokens). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "moesim/gen.h"

/* CPU seconds of the whole process (all threads): with other jobs on the
 * machine, wall time alone says little. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t env_tokens(void) {
    const char *v = getenv("MOESIM_BENCH_GEN_TOKENS");
    char *end;
    unsigned long long n = v && *v ? strtoull(v, &end, 10) : 0;
    return n >= 1000 ? n : 1000000;
}

/* Sums and removes the files in dir, then the dir. */
static uint64_t remove_dir(const char *dir) {
    uint64_t bytes = 0;
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) == 0) bytes += (uint64_t)st.st_size;
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    return bytes;
}

static int gen_only(const char *model, uint64_t tokens, uint32_t ranked) {
    ms_error err = {0};
    ms_gen_opts o;
    ms_gen_opts_default(&o);
    ms_gen_opts_apply_preset(&o, ms_gen_preset_find(model, &err));
    o.n_requests = tokens / 1000;
    o.total_tokens = tokens;
    o.n_ranked = ranked;
    ms_trace *t = NULL;
    double t0 = ms_now(), c0 = cpu_now();
    if (ms_gen_trace(&o, &t, &err) != MS_OK) {
        fprintf(stderr, "bench gen: %s\n", err.msg);
        return 1;
    }
    double dt = ms_now() - t0, dc = cpu_now() - c0;
    double events = (double)t->n_tokens * t->n_layers * t->top_k;
    printf("gen %s%s: %llu tokens x %u layers x top-%u in %.2f s (%.2f s cpu): %.1f M routing events/s, "
           "%.0f ns cpu per token-layer\n",
           model, ranked ? " ranked" : "", (unsigned long long)t->n_tokens, t->n_layers, t->top_k, dt, dc,
           events / dt / 1e6, dc * 1e9 / ((double)t->n_tokens * t->n_layers));
    ms_trace_free(t);
    return 0;
}

static int gen_and_write(uint64_t tokens, bool compress) {
    ms_error err = {0};
    ms_gen_opts o;
    ms_gen_opts_default(&o);
    ms_gen_opts_apply_preset(&o, ms_gen_preset_find("deepseek-v3", &err));
    o.n_requests = tokens / 1000;
    o.total_tokens = tokens;
    ms_trace *t = NULL;
    double t0 = ms_now(), c0 = cpu_now();
    if (ms_gen_trace(&o, &t, &err) != MS_OK) {
        fprintf(stderr, "bench gen: %s\n", err.msg);
        return 1;
    }
    double t1 = ms_now(), c1 = cpu_now();
    char dir[] = "/tmp/moesim-bench-gen-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench gen: mkdtemp");
        ms_trace_free(t);
        return 1;
    }
    ms_status st = ms_trace_write_npz_dir(t, dir, compress, NULL, NULL, &err);
    double t2 = ms_now(), c2 = cpu_now();
    uint64_t bytes = remove_dir(dir);
    if (st != MS_OK) {
        fprintf(stderr, "bench gen: %s\n", err.msg);
        ms_trace_free(t);
        return 1;
    }
    printf("gen+write deepseek-v3 %llu tokens (%llu requests, %.0f M events), %s: generate %.2f s + write %.2f s "
           "= %.2f s wall (cpu %.2f + %.2f s), %.1f MB written (%.0f MB/s)\n",
           (unsigned long long)t->n_tokens, (unsigned long long)t->n_requests,
           (double)t->n_tokens * t->n_layers * t->top_k / 1e6, compress ? "deflate" : "stored", t1 - t0, t2 - t1,
           t2 - t0, c1 - c0, c2 - c1, (double)bytes / 1e6, (double)bytes / 1e6 / (t2 - t1));
    ms_trace_free(t);
    return 0;
}

int bench_gen(void) {
    uint64_t tokens = env_tokens();
    uint64_t small = tokens / 10 < 1000 ? 1000 : tokens / 10;
    int rc = 0;
    rc |= gen_only("deepseek-v3", small, 0);
    rc |= gen_only("deepseek-v3", small, 16);
    rc |= gen_only("qwen3-235b-a22b", small, 0);
    rc |= gen_only("llama4-maverick", small, 0);
    rc |= gen_and_write(tokens, false);
    return rc;
}
