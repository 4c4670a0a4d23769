/* fuzz-placement.c - libFuzzer target for the placement file reader
 * (moesim's JSON, SGLang's physical_to_logical_map, moe-balance's
 * placement.json), through ms_placement_parse_json.
 *
 * Parses the input three ways: inferring cluster and expert count, with a
 * fixed 1x2x2 cluster and 3 routed experts, and, when the first parse works,
 * again with the cluster and routed count it found (which must work too).
 * Whatever parses must pass ms_placement_check and be indexed. Nothing may
 * crash, leak, read out of bounds or allocate more than the input justifies.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DMOESIM_FUZZ=ON -DMOESIM_TESTS=OFF
 *        -DCMAKE_BUILD_TYPE=Debug && cmake --build build-fuzz -j2
 * Run:   ./build-fuzz/fuzz-placement -max_total_time=60 -malloc_limit_mb=512 fuzz/corpus/placement
 */
#include <stdint.h>
#include <stdlib.h>

#include "moesim/place.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void verify(const ms_placement *p) {
    ms_error err;
    if (!p->log2phy || !p->logcnt || ms_placement_check(p, &err) != MS_OK) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    ms_error err;
    ms_placement *p = NULL;
    if (ms_placement_parse_json(text, size, "fuzz.json", NULL, 0, &p, &err) == MS_OK) {
        verify(p);
        /* the shape it found is accepted when given explicitly (the shared
         * expert, when inferred, needs the routed count to show it) */
        ms_placement *q = NULL;
        ms_cluster c = p->cluster;
        if (ms_placement_parse_json(text, size, "fuzz.json", &c, p->n_routed, &q, &err) != MS_OK) __builtin_trap();
        verify(q);
        if (q->n_layers != p->n_layers || q->n_phys != p->n_phys) __builtin_trap();
        for (size_t i = 0; i < (size_t)p->n_layers * p->n_phys; i++)
            if (q->phy2log[i] != p->phy2log[i]) __builtin_trap();
        ms_placement_free(q);
        ms_placement_free(p);
    }
    ms_cluster small = {1, 2, 2};
    if (ms_placement_parse_json(text, size, "fuzz.json", &small, 3, &p, &err) == MS_OK) {
        verify(p);
        if (p->n_routed != 3 || p->n_phys != 4) __builtin_trap();
        ms_placement_free(p);
    }
    return 0;
}
