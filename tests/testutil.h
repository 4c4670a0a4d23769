/* testutil.h - helpers shared by the cmocka tests. */
#ifndef MOESIM_TESTUTIL_H
#define MOESIM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "moesim/place.h"
#include "moesim/stats.h"
#include "moesim/trace.h"

#define TU_SKIP 77

/* Environment set by CTest (see CMakeLists.txt); falls back to sane defaults. */
const char *tu_src_dir(void);   /* repository root */
const char *tu_tmp_dir(void);   /* scratch directory for this build */
const char *tu_bin(void);       /* the moesim CLI */
/* ../shared/data/<name> if it exists, else NULL (tests then skip). */
const char *tu_data_dir(const char *name, char *buf, size_t len);
/* ../shared/reference/<name> if it exists, else NULL. */
const char *tu_ref_dir(const char *name, char *buf, size_t len);

/* A fresh path in the scratch directory: <tmp>/<prefix>-<pid>-<n><suffix>. */
const char *tu_tmp_path(const char *prefix, const char *suffix, char *buf, size_t len);

/* Writes len bytes to path; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t len);

/* Runs a shell command, returns its exit status (or -1); output captured into
 * out (NUL-terminated, truncated to outlen-1) when out is not NULL. */
int tu_run(const char *cmd, char *out, size_t outlen);

/* 1 if /usr/bin/python3 with numpy is available. */
int tu_have_numpy(void);

/* Fails the test unless the files at a and b hold the same bytes. */
void tu_assert_files_equal(const char *a, const char *b);

/* ---- placement fixtures (test-place-*.c, test-placement.c, test-eplb.c);
 * each fails the test on an error it does not expect. */

/* A layers x experts ms_loads holding w (row-major, layers * experts values). */
ms_loads *tu_loads(uint32_t layers, uint32_t experts, const double *w);
/* The loads of s (ms_stats_to_loads). */
ms_loads *tu_stats_loads(const ms_stats *s);
/* ms_place_opts_default, then algo on a rows x cols grid of spd slots each. */
void tu_place_opts(ms_place_opts *o, const char *algo, uint32_t rows, uint32_t cols, uint32_t spd);
/* ms_place_run on loads l and statistics s (may be NULL) that must succeed;
 * prints the error first when it does not. */
ms_placement *tu_place_ok(const ms_loads *l, const ms_stats *s, const ms_place_opts *o);
/* The slots of expert e's replicas in layer l, in log2phy order, into slots;
 * returns how many. */
uint32_t tu_replicas(const ms_placement *p, uint32_t l, uint32_t e, int32_t *slots);
/* Device of shared replica i: row i mod rows, column i mod cols. */
uint32_t tu_shared_dev(const ms_cluster *c, uint32_t i);
/* Invariants checked independently of ms_placement_check, for a placement
 * of E routed experts made with o: sizes, ids in range, every routed expert
 * placed, shared replicas in the lowest slots of the devices the rule
 * names and nowhere else, logcnt/log2phy consistent with phy2log, and per
 * layer routed instances == expect_total (unless 0) and <= budget. */
void tu_check_placement(const ms_placement *p, const ms_place_opts *o, uint32_t E, uint32_t expect_total,
                        uint32_t budget);
/* A random skewed trace (seeded): `layers` layers, E experts, top-k
 * distinct ids per token, `tokens` tokens in one request. */
ms_trace *tu_random_trace(uint64_t seed, uint32_t layers, uint32_t E, uint32_t k, uint64_t tokens);
/* A one-request, one-layer trace from explicit rows (k ids per token). */
ms_trace *tu_trace_from_rows(uint32_t E, uint32_t k, const uint16_t *ids, uint64_t tokens);
/* Statistics of t with co-activation; window 0 keeps the default window. */
ms_stats *tu_stats_coact(const ms_trace *t, uint32_t window);

#endif
