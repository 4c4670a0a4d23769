/* fuzz-npz.c - libFuzzer target for the npz/npy reader.
 *
 * Opens the input as an in-memory npz, reads every member, and runs the
 * integer accessors on what parses; also feeds the bytes to the bare npy
 * parser. Nothing may crash, leak, read out of bounds or allocate more than
 * the input can justify (deflate's 1032:1 ratio bounds every allocation).
 *
 * Build: CC=clang cmake -S . -B build-npz-fuzz -DMOESIM_FUZZ=ON -DMOESIM_TESTS=OFF
 *        -DCMAKE_BUILD_TYPE=Debug && cmake --build build-npz-fuzz -j2
 * Run:   ./build-npz-fuzz/fuzz-npz -max_total_time=60 fuzz/corpus/npz
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const ms_npy_array *a) {
    ms_error err;
    if (a->dtype.kind == 'f') return;
    uint16_t *u = malloc(a->count * sizeof *u + 1);
    if (u) {
        (void)ms_npy_to_u16(a, 65536, u, &err);
        free(u);
    }
    int64_t v;
    if (a->count) {
        (void)ms_npy_get_int(a, 0, &v, &err);
        (void)ms_npy_get_int(a, a->count - 1, &v, &err);
        (void)ms_npy_get_int(a, a->count / 2, &v, &err);
    }
    (void)ms_npy_get_int(a, a->count, &v, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ms_error err;
    ms_npz *z = NULL;
    if (ms_npz_open_mem(data, size, "fuzz.npz", &z, &err) == MS_OK) {
        size_t n = ms_npz_member_count(z);
        for (size_t i = 0; i < n; i++) {
            const char *m = ms_npz_member_name(z, i);
            char name[256];
            size_t l = strlen(m);
            if (l >= sizeof name) continue;
            memcpy(name, m, l + 1);
            if (l >= 4 && memcmp(name + l - 4, ".npy", 4) == 0) name[l - 4] = '\0';
            (void)ms_npz_has(z, name);
            ms_npy_array a;
            if (ms_npz_read_array(z, name, &a, &err) == MS_OK) {
                exercise(&a);
                ms_npy_array_clear(&a);
            }
        }
        (void)ms_npz_size(z);
        ms_npz_free(z);
    }
    ms_npy_array a;
    if (ms_npy_parse(data, size, &a, &err) == MS_OK) {
        exercise(&a);
        ms_npy_array_clear(&a);
    }
    return 0;
}
