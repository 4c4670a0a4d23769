/* fuzz-csv.c - libFuzzer target for the load-matrix CSV parser. */
#include <stddef.h>
#include <stdint.h>
#include "moesim/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ms_loads *l = NULL;
    ms_error err;
    if (ms_loads_parse_csv((const char *)data, size, "fuzz", &l, &err) == MS_OK) {
        /* a parsed matrix is complete and finite */
        double s = 0;
        for (size_t i = 0; i < (size_t)l->n_layers * l->n_experts; i++) s += l->w[i];
        if (s < 0) __builtin_trap();
        ms_loads_free(l);
    }
    return 0;
}
