/* ilp.c - exact integer program and LP lower bound (stub until implemented). */
#include <math.h>
#include "place/algos.h"

ms_status ms_place_ilp(const ms_place_ctx *ctx, ms_error *err) {
    (void)ctx;
    return ms_error_set(err, MS_E_UNSUPPORTED, "placement algorithm 'ilp' is not implemented yet");
}

double ms_place_lower_bound(const ms_place_ctx *ctx, uint32_t layer) {
    (void)ctx;
    (void)layer;
    return NAN;
}
