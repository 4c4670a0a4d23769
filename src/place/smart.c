/* smart.c - one-per-gpu, tail, coact (stub until implemented). */
#include "place/algos.h"

#define STUB(fn, name) \
    ms_status fn(const ms_place_ctx *ctx, ms_error *err) { \
        (void)ctx; \
        return ms_error_set(err, MS_E_UNSUPPORTED, "placement algorithm '%s' is not implemented yet", name); \
    }
STUB(ms_place_one_per_gpu, "one-per-gpu")
STUB(ms_place_tail, "tail")
STUB(ms_place_coact, "coact")
