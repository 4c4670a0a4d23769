/* fuzz-jsonl.c - libFuzzer target for moe-balance's JSONL trace reader
 * (ms_jsonl_trace_load). The loader takes a path, so the input goes into one
 * memfd, reused across runs, read back through /proc/self/fd/N.
 *
 * Loads the input with an inferred expert count and with 16 experts; what
 * loads must be a consistent trace (ids below n_experts, offsets adding up to
 * n_tokens). Nothing may crash, leak, read out of bounds or allocate more
 * than the input justifies.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMOESIM_FUZZ=ON -DMOESIM_TESTS=OFF
 *        -DCMAKE_BUILD_TYPE=Debug && cmake --build build-fuzz -j2
 * Run:   ./build-fuzz/fuzz-jsonl -max_total_time=60 -malloc_limit_mb=512 fuzz/corpus/jsonl
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "moesim/sim.h"
#include "moesim/trace.h"

#include "fuzz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void verify(const ms_jsonl_trace *j, uint32_t n_experts) {
    const ms_trace *t = j->trace;
    if (!t || t->n_layers == 0 || t->top_k == 0 || t->n_requests == 0) __builtin_trap();
    if (n_experts && t->n_experts != n_experts) __builtin_trap();
    if (t->tok_offset[0] != 0 || t->tok_offset[t->n_requests] != t->n_tokens) __builtin_trap();
    size_t n = (size_t)t->n_layers * t->n_tokens * t->top_k;
    for (size_t i = 0; i < n; i++)
        if (t->experts[i] >= t->n_experts) __builtin_trap();
    if (j->origin_rows) {
        unsigned s = 0;
        for (size_t i = 0; i < (size_t)t->n_layers * t->n_tokens; i++) s += j->origin_rows[i];
        (void)s;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_path("fuzz-jsonl", data, size);
    static const uint32_t experts[2] = {0, 16};
    for (int i = 0; i < 2; i++) {
        ms_jsonl_trace j;
        ms_error err;
        if (ms_jsonl_trace_load(path, experts[i], &j, &err) == MS_OK) {
            verify(&j, experts[i]);
            ms_jsonl_trace_clear(&j);
        }
    }
    return 0;
}
