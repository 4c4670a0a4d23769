/*
 * trace/npy_internal.h - pieces of the .npy code (npy.c) shared with the zip
 * reader/writer (npz.c) and the tests. Not part of the public API.
 */
#ifndef MOESIM_TRACE_NPY_INTERNAL_H
#define MOESIM_TRACE_NPY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "moesim/trace.h"

/* Bytes of the fixed prefix of an npy image needed to learn the header
 * length: magic (6) + version (2) + length (2 or 4). */
#define MS_NPY_PREFIX_MAX 12

/* Longest npy header (dict text) accepted, in bytes. numpy itself refuses
 * headers over 10000 bytes by default; ours are a few hundred. */
#define MS_NPY_HEADER_MAX (1u << 20)

/* Parses the magic, version and header length at the start of an npy image.
 * buf holds the first `len` bytes of the image (len may be anything; at most
 * MS_NPY_PREFIX_MAX are looked at). On success *prefix_len is 10 (v1.0) or 12
 * (v2.0/v3.0) and *head_len the offset of the first data byte. Fails
 * MS_E_INPUT on a bad magic, an unknown version, a header over
 * MS_NPY_HEADER_MAX or an image too short to hold the prefix. */
ms_status ms_npy_parse_prefix(const uint8_t *buf, size_t len, size_t *prefix_len,
                              size_t *head_len, ms_error *err);

/* Parses the header dict text (the bytes between the prefix and the data)
 * into out->dtype, descr, ndim, shape, fortran_order, count and nbytes; other
 * fields are left alone. Fails MS_E_INPUT naming what is wrong (syntax,
 * missing/unknown/duplicate key, unsupported dtype, negative dimension, too
 * many dimensions, shape product or byte size overflowing). */
ms_status ms_npy_parse_header(const char *text, size_t len, ms_npy_array *out, ms_error *err);

/* Parses a numpy descr string ("<i4", "|u1", ">f8", "|b1", "=u2", "i8").
 * Fails MS_E_INPUT on anything else (message names the descr). */
ms_status ms_npy_parse_descr(const char *descr, ms_npy_dtype *out, ms_error *err);

/* Writes the canonical descr of dt into buf (at least 4 bytes): '|' for
 * 1-byte types, '<' or '>' otherwise. Cannot fail. */
void ms_npy_format_descr(const ms_npy_dtype *dt, char *buf);

/* Builds a complete v1.0 npy prefix + header for the given descr, C order and
 * shape, byte for byte as numpy 1.2x writes it (sorted keys, growth-axis
 * spaces, padded to a multiple of 64 ending in '\n'). buf must hold
 * MS_NPY_HEADER_BUF bytes. *nbytes receives the data size. Fails MS_E_INPUT
 * on a bad descr, ndim outside [0, MS_NPY_MAX_DIMS] or a size overflow. */
#define MS_NPY_HEADER_BUF 1024
ms_status ms_npy_format_header(const char *descr, int ndim, const uint64_t *shape, uint8_t *buf,
                               size_t *len, uint64_t *nbytes, ms_error *err);

/* Testing hook: makes the writer emit ZIP64 extra fields and ZIP64 end
 * records for every member, as if every size and offset were over 4 GiB, so
 * that code path can be checked against numpy with small files. */
void ms_npz_writer_force_zip64(ms_npz_writer *w, bool on);

#endif
