/*
 * moesim/trace.h - stage 1: routing traces and load matrices.
 *
 * Inputs understood:
 *  - per-request .npz files as vLLM / SGLang dump them: request_id,
 *    prompt_token_ids [P], output_token_ids [D], routed_experts [P+D, L, K]
 *    (prompt rows first), optionally routed_experts_ranked [P+D, L, R] (R >= K,
 *    the router's choices in rank order, the first K equal to routed_experts)
 *    and num_experts (scalar);
 *  - load matrices [layers x experts] as CSV (EPLB's `weight`).
 *
 * The low-level npz/npy reader and writer are public too: the generator,
 * tests and fuzzers use them.
 */
#ifndef MOESIM_TRACE_H
#define MOESIM_TRACE_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ npy */

#define MS_NPY_MAX_DIMS 8

typedef struct ms_npy_dtype {
    char kind;          /* 'i' signed int, 'u' unsigned int, 'f' float, 'b' bool */
    uint8_t size;       /* bytes per item: 1, 2, 4, 8 */
    bool big_endian;    /* byte order of the stored data */
} ms_npy_dtype;

/* One array as stored in a .npy: header fields plus the raw data bytes
 * (still in the stored byte order and memory order). */
typedef struct ms_npy_array {
    char name[128];         /* member name in the npz without ".npy" ("" for a bare .npy) */
    ms_npy_dtype dtype;
    char descr[16];         /* the header's descr string, e.g. "<i4" */
    int ndim;               /* 0 for a scalar */
    uint64_t shape[MS_NPY_MAX_DIMS];
    bool fortran_order;
    uint64_t count;         /* product of shape (1 for a scalar) */
    uint8_t *data;          /* count * dtype.size bytes, owned */
    size_t nbytes;
} ms_npy_array;

/* Parses a complete .npy image (versions 1.0, 2.0, 3.0). Copies the data into
 * a fresh buffer owned by out. Fails with MS_E_INPUT on a bad magic, a header
 * that does not parse, an unsupported dtype, a shape whose product overflows,
 * or data shorter/longer than the header says; MS_E_NOMEM if allocation fails.
 * On failure out holds nothing to free. */
ms_status ms_npy_parse(const uint8_t *buf, size_t len, ms_npy_array *out, ms_error *err);

/* Frees the data of an array (not the struct). Safe on a zeroed struct. */
void ms_npy_array_clear(ms_npy_array *a);

/* Reads element `index` (in C order of the logical shape, whatever the
 * stored order) as int64. Fails with MS_E_INPUT when the dtype is not an
 * integer/bool type, index >= count, or a u8 value exceeds INT64_MAX. */
ms_status ms_npy_get_int(const ms_npy_array *a, uint64_t index, int64_t *out, ms_error *err);

/* Converts a whole integer array to uint16 in C order of the logical shape,
 * checking every value lies in [0, limit). Fails with MS_E_INPUT (message
 * gives the first offending value and its position) on a non-integer dtype
 * or an out-of-range value. out must hold a->count items. */
ms_status ms_npy_to_u16(const ms_npy_array *a, uint32_t limit, uint16_t *out, ms_error *err);

/* ------------------------------------------------------------------ npz */

typedef struct ms_npz ms_npz;   /* an opened zip archive held in memory */

/* Opens a .npz: reads the file, parses the end of central directory (ZIP64
 * too) and the central directory. Fails MS_E_IO if it cannot be read,
 * MS_E_INPUT if it is not a well-formed zip. `label` names the input in
 * messages (NULL = path). */
ms_status ms_npz_open(const char *path, ms_npz **out, ms_error *err);

/* The same for an archive already in memory (buf is copied). */
ms_status ms_npz_open_mem(const uint8_t *buf, size_t len, const char *label,
                          ms_npz **out, ms_error *err);
void ms_npz_free(ms_npz *z);

size_t ms_npz_member_count(const ms_npz *z);
/* Member name (e.g. "routed_experts.npy"); NULL if i is out of range. */
const char *ms_npz_member_name(const ms_npz *z, size_t i);
bool ms_npz_has(const ms_npz *z, const char *array_name);
/* Total size of the archive in bytes. */
size_t ms_npz_size(const ms_npz *z);

/* Extracts and parses array `array_name` (without ".npy"). STORED and
 * DEFLATE members; the CRC-32 and sizes are checked. Fails MS_E_INPUT if the
 * member is missing, uses another compression method, is truncated, has a
 * bad CRC or is not a valid npy. */
ms_status ms_npz_read_array(ms_npz *z, const char *array_name, ms_npy_array *out, ms_error *err);

typedef struct ms_npz_writer ms_npz_writer;

/* Starts writing `path` atomically: data goes to a temp file in the same
 * directory, renamed over path by ms_npz_writer_close. compress: false =
 * STORED, true = DEFLATE (what numpy's savez_compressed writes). Fails MS_E_IO
 * when the temp file cannot be created. */
ms_status ms_npz_writer_open(const char *path, bool compress, ms_npz_writer **out, ms_error *err);

/* Adds `name`.npy with a v1.0 header. descr is a numpy descr such as "<i4",
 * "<u2", "<f8"; data holds the C-order items (count = product of shape, or 1
 * when ndim is 0) in that byte order. ZIP64 records are written where sizes
 * need them. Fails MS_E_IO on write errors, MS_E_INPUT on a bad descr/ndim. */
ms_status ms_npz_writer_add(ms_npz_writer *w, const char *name, const char *descr,
                            int ndim, const uint64_t *shape, const void *data, ms_error *err);

/* Writes the central directory, flushes, fsyncs and renames into place; frees w
 * in every case. On failure the temp file is removed and path is untouched. */
ms_status ms_npz_writer_close(ms_npz_writer *w, ms_error *err);

/* Discards everything written; path is untouched. Frees w. */
void ms_npz_writer_abort(ms_npz_writer *w);

/* ---------------------------------------------------------------- trace */

/* A routing trace in memory. Expert ids are 16-bit and stored layer-major:
 * experts[(layer * n_tokens + token) * top_k + j]; the tokens of request r are
 * tok_offset[r] .. tok_offset[r+1]-1, prompt rows first (n_prompt[r] of them),
 * then decode rows. Read-only after loading. */
typedef struct ms_trace {
    uint32_t n_layers;
    uint32_t n_experts;      /* routed experts per layer; ids are < n_experts */
    uint32_t top_k;
    uint32_t n_ranked;       /* choices per token in `ranked` (0 = none) */
    uint64_t n_requests;
    uint64_t n_tokens;       /* rows over all requests */
    uint64_t *tok_offset;    /* [n_requests + 1] */
    uint32_t *n_prompt;      /* [n_requests] */
    uint32_t *n_output;      /* [n_requests] output tokens declared (rows may be one fewer) */
    int64_t *request_id;     /* [n_requests] */
    uint16_t *experts;       /* [n_layers][n_tokens][top_k] */
    uint16_t *ranked;        /* NULL or [n_layers][n_tokens][n_ranked], rank order */
    char source_dtype[16];   /* descr of routed_experts in the first file, e.g. "<i4" */
    uint64_t source_bytes;   /* bytes of npz read */
    uint64_t n_short_rows;   /* requests with rows = prompt + output - 1 (accepted, noted) */
    uint64_t digest;         /* FNV-1a 64 of shape, offsets and ids: identifies the data */
    char label[256];         /* what it was loaded from (first path) */
} ms_trace;

typedef void (*ms_progress_fn)(void *ctx, uint64_t done, uint64_t total);

typedef struct ms_trace_load_opts {
    uint32_t n_experts;       /* 0: from a num_experts array, else max id + 1 */
    int threads;              /* 0: all cores */
    ms_progress_fn progress;  /* called from one thread as files finish; may be NULL */
    void *progress_ctx;
} ms_trace_load_opts;

/* Loads a trace from paths: each a directory (every *.npz inside, in name
 * order) or a single .npz (one request). Files are parsed in parallel.
 * Fails MS_E_INPUT (message names the file) on: no npz found, a missing
 * array, a non-integer dtype, a routed_experts that is not 3-D, rows that are
 * neither P+D nor P+D-1, layer or top_k counts that differ between files,
 * top_k of 0, ids negative or >= n_experts (or > 65535). */
ms_status ms_trace_load(const char *const *paths, size_t n_paths, const ms_trace_load_opts *opts,
                        ms_trace **out, ms_error *err);

/* Allocates an empty trace with the given shape (ids zeroed), for generators
 * and tests. n_ranked may be 0. Fails MS_E_NOMEM / MS_E_INPUT on sizes that
 * overflow or exceed 16-bit ids. The caller fills offsets and ids, then calls
 * ms_trace_finish. */
ms_status ms_trace_new(uint32_t n_layers, uint32_t n_experts, uint32_t top_k, uint32_t n_ranked,
                       uint64_t n_requests, uint64_t n_tokens, ms_trace **out, ms_error *err);

/* Validates offsets and ids and computes the digest. MS_E_INPUT if invalid. */
ms_status ms_trace_finish(ms_trace *t, ms_error *err);
void ms_trace_free(ms_trace *t);

/* Pointer to the top_k ids of token `tok` in `layer`. */
static inline const uint16_t *ms_trace_row(const ms_trace *t, uint32_t layer, uint64_t tok) {
    return t->experts + ((uint64_t)layer * t->n_tokens + tok) * t->top_k;
}

/* Checks that two traces can be compared (same layers, experts, top_k);
 * MS_E_INPUT naming what differs otherwise. */
ms_status ms_trace_check_compatible(const ms_trace *a, const ms_trace *b, ms_error *err);

/* A new trace holding the requests whose indices are listed (in that order).
 * Used to split training and evaluation requests. */
ms_status ms_trace_select(const ms_trace *t, const uint64_t *requests, uint64_t n,
                          ms_trace **out, ms_error *err);

/* Splits requests into two traces by a seeded shuffle: `train_fraction` of
 * them (rounded down, at least 1 and at most n-1) go to *train, the rest to
 * *test. MS_E_INPUT if the trace has fewer than 2 requests. */
ms_status ms_trace_split(const ms_trace *t, double train_fraction, uint64_t seed,
                         ms_trace **train, ms_trace **test, ms_error *err);

/* Concatenates two traces: the requests of a, then those of b (arrival
 * order = request order), request ids, lengths and expert ids kept. Layers
 * and top_k must agree; the expert count is the larger of the two (ids of
 * both fit in it: a part that never chose the highest ids often reads as
 * fewer experts; pass the true count when loading to avoid that). Ranked
 * choices are kept only when both have them with the same width, otherwise
 * the result has none (n_ranked 0). source_bytes and n_short_rows add up,
 * source_dtype is a's, the label is "A+B" (truncated to fit) and the digest
 * is recomputed. Fails MS_E_INPUT naming what differs (layers or top_k),
 * MS_E_NOMEM when the sizes overflow or memory runs out. */
ms_status ms_trace_concat(const ms_trace *a, const ms_trace *b, ms_trace **out, ms_error *err);

/* The seeded permutation of expert ids used for layer `layer`: perm[e] is the
 * new id of expert e (a Fisher-Yates shuffle of 0..n_experts-1 from a stream
 * seeded by seed and layer, so every layer gets an independent one).
 * ms_trace_permute_experts applies it; `moesim gen --shift` moves the
 * popularity of layer `layer` by it. Cannot fail. */
void ms_trace_draw_permutation(uint64_t seed, uint32_t layer, uint32_t n_experts, uint32_t *perm);

/* A copy of t whose expert ids are relabelled, per layer l, by
 * ms_trace_draw_permutation(seed, l, n_experts): id e becomes perm[e] in
 * `experts` and `ranked`. Requests, lengths, token counts and the structure
 * of choices (which tokens share an expert, rank order) are unchanged, so a
 * real skew moves to other experts. The label gains "@permute=SEED"; the
 * digest is recomputed. Fails MS_E_NOMEM. */
ms_status ms_trace_permute_experts(const ms_trace *t, uint64_t seed, ms_trace **out, ms_error *err);

/* Writes one npz per request into directory dir (created if missing) as
 * req_NNNNNN.npz, in the layout ms_trace_load reads. Atomic per file. */
ms_status ms_trace_write_npz_dir(const ms_trace *t, const char *dir, bool compress,
                                 ms_progress_fn progress, void *progress_ctx, ms_error *err);

/* --------------------------------------------------------- load matrix */

/* Expert loads [n_layers][n_experts] (token counts or any non-negative weight). */
typedef struct ms_loads {
    uint32_t n_layers;
    uint32_t n_experts;
    double *w;
} ms_loads;

ms_status ms_loads_new(uint32_t n_layers, uint32_t n_experts, ms_loads **out, ms_error *err);
void ms_loads_free(ms_loads *l);

/* Parses CSV text: one line per layer, comma-separated non-negative numbers
 * (integers, decimals, exponents), optionally a first header line whose first
 * field is not a number. Blank trailing lines are ignored; CRLF accepted.
 * Fails MS_E_INPUT (with line and column) on a field that is not a finite
 * non-negative number, rows of unequal length, or no data. label names the
 * input in messages. */
ms_status ms_loads_parse_csv(const char *text, size_t len, const char *label,
                             ms_loads **out, ms_error *err);
ms_status ms_loads_read_csv(const char *path, ms_loads **out, ms_error *err);

/* Writes CSV (no header, %.9g per value) atomically to path ("-" = stdout). */
ms_status ms_loads_write_csv(const ms_loads *l, const char *path, ms_error *err);

#ifdef __cplusplus
}
#endif
#endif
