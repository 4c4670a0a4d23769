/* fuzz-sweep-spec.c - libFuzzer target for the sweep spec parser
 * (ms_sweep_spec_parse, SPEC.json of `moesim sweep`).
 *
 * Parses the input; what parses must have between 1 and 10^8 points (the
 * documented limit), and describing its first, middle, last and one
 * out-of-range point must work. The evaluator is not run (it loads traces).
 * Nothing may crash, leak, read out of bounds or allocate more than the
 * input justifies. Option values naming presets (hw, model, scaling.gpu) are
 * read from the preset directory, as in a real run.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMOESIM_FUZZ=ON -DMOESIM_TESTS=OFF
 *        -DCMAKE_BUILD_TYPE=Debug && cmake --build build-fuzz -j2
 * Run:   ./build-fuzz/fuzz-sweep-spec -max_total_time=60 fuzz/corpus/sweep-spec
 */
#include <stdint.h>
#include <string.h>

#include "moesim/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ms_sweep_spec *s = NULL;
    ms_error err;
    if (ms_sweep_spec_parse((const char *)data, size, "fuzz.json", &s, &err) != MS_OK) return 0;
    uint64_t n = ms_sweep_spec_points(s);
    if (n == 0 || n > 100000000ULL) __builtin_trap();
    (void)ms_sweep_spec_digest(s);
    char buf[512];
    const uint64_t idx[4] = {0, n / 2, n - 1, n};
    for (int i = 0; i < 4; i++) {
        ms_sweep_spec_describe(s, idx[i], buf, sizeof buf);
        if (strlen(buf) >= sizeof buf) __builtin_trap();
    }
    ms_sweep_spec_free(s);
    return 0;
}
