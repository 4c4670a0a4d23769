/* bench.h - the project's benchmark program, moesim_bench. Each part lives
 * in bench/bench_<name>.c and returns 0 on success. Results print as
 * "name: value unit" lines; docs/PERFORMANCE.md records them with the machine. */
#ifndef MOESIM_BENCH_H
#define MOESIM_BENCH_H

/* Parts are weak so the program links while a part is not written yet. */
int bench_ingest(void) __attribute__((weak));
int bench_place(void) __attribute__((weak));
int bench_sim(void) __attribute__((weak));
int bench_gen(void) __attribute__((weak));
int bench_moe(void) __attribute__((weak));
int bench_opt(void) __attribute__((weak));
int bench_online(void) __attribute__((weak));

/* Seconds of the best of `reps` runs of fn(ctx). */
double bench_best_of(int reps, void (*fn)(void *), void *ctx);

#endif
