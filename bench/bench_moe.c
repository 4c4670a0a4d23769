/* bench_moe.c - the MoE operator at DeepSeek-V3's expert shape (7168 x 2048):
 * the BLAS sgemm peak of this machine, the optimized forward at 1, 16 and 256
 * tokens per expert (2 experts, top-2; fp32 and bf16 weights) as GFLOP/s and
 * fraction of the peak, and the functional reference at 1 token per expert
 * for the speed-up. Timed with the process CPU clock / threads (the wall
 * clock is unreliable on the shared 2-core machine; moesim moe-bench
 * --clock wall gives wall times). docs/PERFORMANCE.md ("MoE operator")
 * records them. */
#include <stdio.h>

#include "bench.h"
#include "moesim/moe.h"

int bench_moe(void) {
    char machine[512], blas[256];
    ms_moe_machine_describe(machine, sizeof machine);
    ms_moe_blas_describe(blas, sizeof blas);
    printf("cpu: %s; blas: %s\n", machine, blas);
    ms_error err = {0};
    int threads = ms_thread_count();
    double peak = 0;
    if (ms_moe_measure_peak(2048, threads, 5, true, &peak, &err) != MS_OK) {
        printf("peak: failed (%s)\n", err.msg);
        return 1;
    }
    printf("sgemm peak 2048^3 fp32, %d threads (cpu time / threads): %.1f GFLOP/s\n", threads, peak);
    static const uint32_t pts[] = {1, 16, 256};
    for (int dt = 0; dt < 2; dt++) {
        ms_moe_curve_opts o;
        ms_moe_curve_opts_default(&o); /* deepseek-v3 expert, 2 experts, top-2 */
        o.cfg.dtype = (ms_moe_dtype)dt;
        o.tokens_per_expert = pts;
        o.n_points = 3;
        o.min_seconds = 0.5;
        o.max_reps = 5;
        o.reference_max = dt == 0 ? 2 : 0;
        o.cpu_clock = true;
        ms_moe_point res[3];
        if (ms_moe_measure_curve(&o, res, &err) != MS_OK) {
            printf("moe forward: failed (%s)\n", err.msg);
            return 1;
        }
        for (int i = 0; i < 3; i++) {
            printf("moe forward 7168x2048 %s, %u tokens/expert: %.3f ms, %.1f GFLOP/s, %.1f%% of peak",
                   dt ? "bf16" : "fp32", res[i].tokens_per_expert, res[i].opt_s * 1e3, res[i].gflops,
                   100 * res[i].gflops / peak);
            if (res[i].ref_s >= 0)
                printf("; reference %.1f ms (%.0fx slower, rel err %.1e)", res[i].ref_s * 1e3,
                       res[i].ref_s / res[i].opt_s, res[i].max_rel_err);
            printf("\n");
        }
    }
    return 0;
}
