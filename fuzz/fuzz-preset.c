/* fuzz-preset.c - libFuzzer target for the hardware and model preset
 * readers (ms_hw_preset_load, ms_model_preset_load). The loaders take a name
 * or a path, so the input goes into one memfd, reused across runs, read back
 * through /proc/self/fd/N (a path: it has a '/').
 *
 * Feeds every input to both loaders; what loads must hold usable figures:
 * finite and positive where the contract says so, fractions in (0, 1], and
 * model counts of at least 1 (hidden, intermediate, experts, top-k, layers).
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMOESIM_FUZZ=ON -DMOESIM_TESTS=OFF
 *        -DCMAKE_BUILD_TYPE=Debug && cmake --build build-fuzz -j2
 * Run:   ./build-fuzz/fuzz-preset -max_total_time=60 fuzz/corpus/preset
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "moesim/sim.h"

#include "fuzz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int positive(double x) { return isfinite(x) && x > 0; }
static int fraction(double x) { return x > 0 && x <= 1; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_path("fuzz-preset", data, size);
    ms_error err;
    ms_hw_preset hw;
    if (ms_hw_preset_load(path, &hw, &err) == MS_OK) {
        if (!positive(hw.peak_tflops_bf16) || !positive(hw.peak_tflops_fp8) || !positive(hw.hbm_tb_s) ||
            !positive(hw.memory_gb) || !positive(hw.nvlink_gb_s) || !positive(hw.nic_gb_s) ||
            !fraction(hw.mfu) || !fraction(hw.hbm_util) || !fraction(hw.nvlink_efficiency) ||
            !fraction(hw.net_efficiency) || !(hw.nvlink_latency_us >= 0) || !(hw.net_latency_us >= 0))
            __builtin_trap();
    }
    ms_model_preset m;
    if (ms_model_preset_load(path, &m, &err) == MS_OK) {
        if (m.hidden < 1 || m.moe_intermediate < 1 || m.routed_experts < 1 || m.top_k < 1 || m.moe_layers < 1 ||
            !positive(m.expert_weight_bytes) || !positive(m.dispatch_bytes) || !positive(m.combine_bytes) ||
            !(m.dense_params_per_layer >= 0))
            __builtin_trap();
    }
    return 0;
}
