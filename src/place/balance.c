/* balance.c - moe-balance's initial placements (stub until implemented). */
#include "place/algos.h"

#define STUB(fn, name) \
    ms_status fn(const ms_place_ctx *ctx, ms_error *err) { \
        (void)ctx; \
        return ms_error_set(err, MS_E_UNSUPPORTED, "placement algorithm '%s' is not implemented yet", name); \
    }
STUB(ms_place_balance, "balance")
STUB(ms_place_balance_coact, "balance-coact")
STUB(ms_place_hot_tier, "hot-tier")
STUB(ms_place_greedy_cost, "greedy-cost")
