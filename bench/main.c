/* main.c - moesim_bench [PART...]: runs the named parts (default: all).
 * Parts: ingest, place, sim, gen, moe, opt, online. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "moesim/common.h"

double bench_best_of(int reps, void (*fn)(void *), void *ctx) {
    double best = 1e300;
    for (int i = 0; i < reps; i++) {
        double t0 = ms_now();
        fn(ctx);
        double dt = ms_now() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

typedef struct part {
    const char *name;
    int (*run)(void);
} part;

int main(int argc, char **argv) {
    part parts[] = {{"ingest", bench_ingest}, {"place", bench_place}, {"sim", bench_sim}, {"gen", bench_gen}, {"moe", bench_moe}, {"opt", bench_opt}, {"online", bench_online}};
    struct utsname u;
    uname(&u);
    printf("machine: %s %s, %ld cores, %d threads\n", u.sysname, u.machine, sysconf(_SC_NPROCESSORS_ONLN),
           ms_thread_count());
    int rc = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], parts[i].name) == 0;
        if (!wanted) continue;
        if (!parts[i].run) {
            printf("[%s] not built\n", parts[i].name);
            continue;
        }
        printf("[%s]\n", parts[i].name);
        fflush(stdout);
        rc |= parts[i].run();
    }
    return rc;
}
