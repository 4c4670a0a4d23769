/*
 * npy.c - the .npy format: header parsing (versions 1.0, 2.0, 3.0), header
 * formatting (v1.0, byte-identical to numpy), and reading integer arrays in C
 * order of their logical shape whatever the stored order and byte order.
 *
 * Everything here is reentrant: no globals, no static state.
 */
#include "moesim/trace.h"
#include "trace/npy_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define NPY_HOST_BIG true
#else
#define NPY_HOST_BIG false
#endif

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* ------------------------------------------------------------ prefix */

ms_status ms_npy_parse_prefix(const uint8_t *buf, size_t len, size_t *prefix_len,
                              size_t *head_len, ms_error *err) {
    if (len < 8 || memcmp(buf, npy_magic, 6) != 0) {
        if (len >= 6 && memcmp(buf, npy_magic, 6) != 0)
            return ms_error_set(err, MS_E_INPUT, "not an npy array (bad magic)");
        return ms_error_set(err, MS_E_INPUT, "npy image truncated (%zu bytes)", len);
    }
    unsigned major = buf[6], minor = buf[7];
    if (minor != 0 || major < 1 || major > 3)
        return ms_error_set(err, MS_E_INPUT, "unsupported npy format version %u.%u", major, minor);
    size_t plen = major == 1 ? 10 : 12;
    if (len < plen) return ms_error_set(err, MS_E_INPUT, "npy image truncated (%zu bytes)", len);
    uint32_t hlen = major == 1 ? (uint32_t)buf[8] | (uint32_t)buf[9] << 8
                               : (uint32_t)buf[8] | (uint32_t)buf[9] << 8 |
                                     (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
    if (hlen > MS_NPY_HEADER_MAX)
        return ms_error_set(err, MS_E_INPUT, "npy header too long (%" PRIu32 " bytes)", hlen);
    *prefix_len = plen;
    *head_len = plen + hlen;
    return MS_OK;
}

/* ------------------------------------------------------------ dtype */

ms_status ms_npy_parse_descr(const char *descr, ms_npy_dtype *out, ms_error *err) {
    const char *p = descr;
    char order = '=';
    if (*p == '<' || *p == '>' || *p == '=' || *p == '|') order = *p++;
    char kind = *p++;
    int size = 0;
    if (*p >= '1' && *p <= '9' && p[1] == '\0') size = *p - '0';
    bool ok = false;
    if (kind == 'i' || kind == 'u') ok = size == 1 || size == 2 || size == 4 || size == 8;
    else if (kind == 'f') ok = size == 2 || size == 4 || size == 8;
    else if (kind == 'b') ok = size == 1;
    if (!ok) return ms_error_set(err, MS_E_INPUT, "unsupported dtype '%.32s'", descr);
    if (order == '|' && size > 1)
        return ms_error_set(err, MS_E_INPUT, "dtype '%.32s' has no byte order", descr);
    out->kind = kind;
    out->size = (uint8_t)size;
    out->big_endian = size > 1 && (order == '>' || (order == '=' && NPY_HOST_BIG));
    return MS_OK;
}

void ms_npy_format_descr(const ms_npy_dtype *dt, char *buf) {
    buf[0] = dt->size == 1 ? '|' : (dt->big_endian ? '>' : '<');
    buf[1] = dt->kind;
    buf[2] = (char)('0' + dt->size);
    buf[3] = '\0';
}

/* ------------------------------------------------------------ header */

typedef struct hcur {
    const char *p, *end;
} hcur;

static void h_ws(hcur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool h_eat(hcur *c, char ch) {
    h_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static int h_peek(hcur *c) {
    h_ws(c);
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

/* A Python string literal without escapes; returns its bytes in [*s, *s+*n). */
static ms_status h_string(hcur *c, const char **s, size_t *n, const char *what, ms_error *err) {
    int q = h_peek(c);
    if (q != '\'' && q != '"')
        return ms_error_set(err, MS_E_INPUT, "npy header: expected a string for %s", what);
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != (char)q) {
        if (*c->p == '\\' || *c->p == '\n')
            return ms_error_set(err, MS_E_INPUT, "npy header: unsupported string for %s", what);
        c->p++;
    }
    if (c->p >= c->end) return ms_error_set(err, MS_E_INPUT, "npy header: unterminated string");
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return MS_OK;
}

static bool h_word(hcur *c, const char *w) {
    size_t n = strlen(w);
    h_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        const char *after = c->p + n;
        if (after == c->end || !((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                                 (*after >= '0' && *after <= '9') || *after == '_')) {
            c->p = after;
            return true;
        }
    }
    return false;
}

static ms_status h_dim(hcur *c, uint64_t *out, ms_error *err) {
    h_ws(c);
    if (c->p < c->end && *c->p == '-')
        return ms_error_set(err, MS_E_INPUT, "npy header: negative dimension in shape");
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return ms_error_set(err, MS_E_INPUT, "npy header: shape is not a tuple of integers");
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return ms_error_set(err, MS_E_INPUT, "npy header: dimension too large");
        v = v * 10 + d;
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++; /* Python 2 long */
    *out = v;
    return MS_OK;
}

static ms_status h_shape(hcur *c, ms_npy_array *out, ms_error *err) {
    ms_status st;
    out->ndim = 0;
    if (!h_eat(c, '(')) return ms_error_set(err, MS_E_INPUT, "npy header: shape is not a tuple");
    if (h_eat(c, ')')) return MS_OK;
    for (;;) {
        uint64_t d = 0;
        if ((st = h_dim(c, &d, err)) != MS_OK) return st;
        if (out->ndim >= MS_NPY_MAX_DIMS)
            return ms_error_set(err, MS_E_INPUT, "npy header: more than %d dimensions",
                                MS_NPY_MAX_DIMS);
        out->shape[out->ndim++] = d;
        if (h_eat(c, ')')) return MS_OK;
        if (!h_eat(c, ',')) return ms_error_set(err, MS_E_INPUT, "npy header: bad shape tuple");
        if (h_eat(c, ')')) return MS_OK;
    }
}

ms_status ms_npy_parse_header(const char *text, size_t len, ms_npy_array *out, ms_error *err) {
    hcur c = {text, text + len};
    ms_status st;
    bool have_descr = false, have_fortran = false, have_shape = false;
    if (!h_eat(&c, '{')) return ms_error_set(err, MS_E_INPUT, "npy header is not a dict");
    for (;;) {
        if (h_eat(&c, '}')) break;
        const char *key;
        size_t klen;
        if ((st = h_string(&c, &key, &klen, "a key", err)) != MS_OK) return st;
        if (!h_eat(&c, ':')) return ms_error_set(err, MS_E_INPUT, "npy header: expected ':'");
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            if (have_descr) return ms_error_set(err, MS_E_INPUT, "npy header: duplicate key 'descr'");
            have_descr = true;
            if (h_peek(&c) == '[')
                return ms_error_set(err, MS_E_INPUT, "structured dtypes are not supported");
            const char *d;
            size_t dlen;
            if ((st = h_string(&c, &d, &dlen, "descr", err)) != MS_OK) return st;
            if (dlen >= sizeof out->descr)
                return ms_error_set(err, MS_E_INPUT, "unsupported dtype '%.*s'",
                                    (int)(dlen > 32 ? 32 : dlen), d);
            memcpy(out->descr, d, dlen);
            out->descr[dlen] = '\0';
            if ((st = ms_npy_parse_descr(out->descr, &out->dtype, err)) != MS_OK) return st;
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (have_fortran)
                return ms_error_set(err, MS_E_INPUT, "npy header: duplicate key 'fortran_order'");
            have_fortran = true;
            if (h_word(&c, "True")) out->fortran_order = true;
            else if (h_word(&c, "False")) out->fortran_order = false;
            else return ms_error_set(err, MS_E_INPUT, "npy header: fortran_order is not True/False");
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            if (have_shape) return ms_error_set(err, MS_E_INPUT, "npy header: duplicate key 'shape'");
            have_shape = true;
            if ((st = h_shape(&c, out, err)) != MS_OK) return st;
        } else {
            return ms_error_set(err, MS_E_INPUT, "npy header: unexpected key '%.*s'",
                                (int)(klen > 32 ? 32 : klen), key);
        }
        if (h_eat(&c, ',')) continue;
        if (h_eat(&c, '}')) break;
        return ms_error_set(err, MS_E_INPUT, "npy header: expected ',' or '}'");
    }
    h_ws(&c);
    if (c.p != c.end) return ms_error_set(err, MS_E_INPUT, "npy header: junk after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return ms_error_set(err, MS_E_INPUT, "npy header: missing key '%s'",
                            !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    /* count = product of the shape; a zero dimension makes it 0 whatever the rest. */
    uint64_t count = 1;
    bool zero = false;
    for (int i = 0; i < out->ndim; i++) zero |= out->shape[i] == 0;
    if (zero) {
        count = 0;
    } else {
        for (int i = 0; i < out->ndim; i++) {
            if (count > UINT64_MAX / out->shape[i])
                return ms_error_set(err, MS_E_INPUT, "npy header: shape product overflows");
            count *= out->shape[i];
        }
    }
    if (count > (uint64_t)SIZE_MAX / out->dtype.size || count > UINT64_MAX / out->dtype.size)
        return ms_error_set(err, MS_E_INPUT, "npy header: array size overflows");
    out->count = count;
    out->nbytes = (size_t)(count * out->dtype.size);
    return MS_OK;
}

/* ------------------------------------------------------------ parse */

ms_status ms_npy_parse(const uint8_t *buf, size_t len, ms_npy_array *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    size_t plen, hlen;
    ms_status st = ms_npy_parse_prefix(buf, len, &plen, &hlen, err);
    if (st != MS_OK) return st;
    if (hlen > len)
        return ms_error_set(err, MS_E_INPUT, "npy header truncated (needs %zu bytes, have %zu)",
                            hlen, len);
    st = ms_npy_parse_header((const char *)buf + plen, hlen - plen, out, err);
    if (st == MS_OK && len - hlen != out->nbytes)
        st = ms_error_set(err, MS_E_INPUT,
                          "npy data is %zu bytes but dtype %s and %d-d shape need %zu",
                          len - hlen, out->descr, out->ndim, out->nbytes);
    if (st == MS_OK) {
        out->data = ms_alloc_array(out->nbytes ? out->nbytes : 1, 1, err);
        if (!out->data) st = MS_E_NOMEM;
        else if (out->nbytes) memcpy(out->data, buf + hlen, out->nbytes);
    }
    if (st != MS_OK) memset(out, 0, sizeof *out);
    return st;
}

void ms_npy_array_clear(ms_npy_array *a) {
    if (!a) return;
    ms_free(a->data);
    a->data = NULL;
    a->nbytes = 0;
}

/* ------------------------------------------------------------ format */

ms_status ms_npy_format_header(const char *descr, int ndim, const uint64_t *shape, uint8_t *buf,
                               size_t *len, uint64_t *nbytes, ms_error *err) {
    ms_npy_dtype dt;
    ms_status st = ms_npy_parse_descr(descr, &dt, err);
    if (st != MS_OK) return st;
    if (ndim < 0 || ndim > MS_NPY_MAX_DIMS)
        return ms_error_set(err, MS_E_INPUT, "bad ndim %d (0..%d)", ndim, MS_NPY_MAX_DIMS);
    uint64_t count = 1;
    bool zero = false;
    for (int i = 0; i < ndim; i++) zero |= shape[i] == 0;
    for (int i = 0; i < ndim && !zero; i++) {
        if (count > UINT64_MAX / shape[i]) return ms_error_set(err, MS_E_INPUT, "shape product overflows");
        count *= shape[i];
    }
    if (zero) count = 0;
    if (count > UINT64_MAX / dt.size || count * dt.size > (uint64_t)SIZE_MAX)
        return ms_error_set(err, MS_E_INPUT, "array size overflows");
    char d[4];
    ms_npy_format_descr(&dt, d);
    /* numpy: "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }" then
     * 21 - len(repr(shape[0])) spaces (room to grow axis 0 in place), then
     * spaces to make prefix + header + '\n' a multiple of 64. */
    char text[MS_NPY_HEADER_BUF];
    int n = snprintf(text, sizeof text, "{'descr': '%s', 'fortran_order': False, 'shape': (", d);
    for (int i = 0; i < ndim; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, i ? ", %" PRIu64 : "%" PRIu64, shape[i]);
    n += snprintf(text + n, sizeof text - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        char first[24];
        int flen = snprintf(first, sizeof first, "%" PRIu64, shape[0]);
        for (int i = flen; i < 21; i++) text[n++] = ' ';
    }
    size_t hl = (size_t)n + 1;                     /* + '\n' */
    size_t pad = 64 - (10 + hl) % 64;              /* numpy pads 64 when already aligned */
    size_t total = 10 + hl + pad;
    if (total > MS_NPY_HEADER_BUF) return ms_error_set(err, MS_E_INTERNAL, "npy header too long");
    memcpy(buf, npy_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)((total - 10) & 0xff);
    buf[9] = (uint8_t)((total - 10) >> 8);
    memcpy(buf + 10, text, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[total - 1] = '\n';
    *len = total;
    *nbytes = count * dt.size;
    return MS_OK;
}

/* ------------------------------------------------------------ values */

static bool is_integer(const ms_npy_dtype *dt) {
    return dt->kind == 'i' || dt->kind == 'u' || dt->kind == 'b';
}

static ms_status not_integer(const ms_npy_array *a, ms_error *err) {
    if (a->dtype.kind == 'f')
        ms_error_set(err, MS_E_INPUT, "float dtype '%s' where integers expected", a->descr);
    else
        ms_error_set(err, MS_E_INPUT, "dtype '%s' where integers expected", a->descr);
    return a->name[0] ? ms_error_prefix(err, a->name) : MS_E_INPUT;
}

/* Element at storage index i as uint64: signed types sign-extended (so a
 * negative value reads as a huge unsigned one), bool as 0/1. */
static uint64_t load_raw(const ms_npy_array *a, uint64_t i) {
    const uint8_t *p = a->data + i * a->dtype.size;
    bool swap = a->dtype.big_endian != NPY_HOST_BIG;
    bool sgn = a->dtype.kind == 'i';
    switch (a->dtype.size) {
    case 1:
        if (a->dtype.kind == 'b') return p[0] != 0;
        return sgn ? (uint64_t)(int64_t)(int8_t)p[0] : p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        if (swap) v = __builtin_bswap16(v);
        return sgn ? (uint64_t)(int64_t)(int16_t)v : v;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        if (swap) v = __builtin_bswap32(v);
        return sgn ? (uint64_t)(int64_t)(int32_t)v : v;
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (swap) v = __builtin_bswap64(v);
        return v;
    }
    }
}

/* Storage index of the element at C-order index ci. */
static uint64_t storage_index(const ms_npy_array *a, uint64_t ci) {
    if (!a->fortran_order || a->ndim < 2) return ci;
    uint64_t off = 0, stride = 1, rem = ci;
    uint64_t idx[MS_NPY_MAX_DIMS];
    for (int d = a->ndim - 1; d >= 0; d--) {
        idx[d] = rem % a->shape[d];
        rem /= a->shape[d];
    }
    for (int d = 0; d < a->ndim; d++) {
        off += idx[d] * stride;
        stride *= a->shape[d];
    }
    return off;
}

ms_status ms_npy_get_int(const ms_npy_array *a, uint64_t index, int64_t *out, ms_error *err) {
    if (!is_integer(&a->dtype)) return not_integer(a, err);
    if (index >= a->count) {
        ms_error_set(err, MS_E_INPUT, "index %" PRIu64 " out of range (%" PRIu64 " items)", index,
                     a->count);
        return a->name[0] ? ms_error_prefix(err, a->name) : MS_E_INPUT;
    }
    uint64_t v = load_raw(a, storage_index(a, index));
    if (a->dtype.kind == 'u' && a->dtype.size == 8 && v > (uint64_t)INT64_MAX) {
        ms_error_set(err, MS_E_INPUT, "value %" PRIu64 " at index %" PRIu64 " exceeds int64", v, index);
        return a->name[0] ? ms_error_prefix(err, a->name) : MS_E_INPUT;
    }
    *out = (int64_t)v;
    return MS_OK;
}

/* Formats the value at C index ci and its position for an error message. */
static ms_status range_error(const ms_npy_array *a, uint64_t ci, uint32_t limit, ms_error *err) {
    if (!err) return MS_E_INPUT;
    uint64_t raw = load_raw(a, storage_index(a, ci));
    char val[32], pos[256];
    if (a->dtype.kind == 'i') snprintf(val, sizeof val, "%" PRId64, (int64_t)raw);
    else snprintf(val, sizeof val, "%" PRIu64, raw);
    uint64_t idx[MS_NPY_MAX_DIMS], rem = ci;
    for (int d = a->ndim - 1; d >= 0; d--) {
        idx[d] = a->shape[d] ? rem % a->shape[d] : 0;
        rem = a->shape[d] ? rem / a->shape[d] : 0;
    }
    size_t n = 0;
    pos[n++] = '[';
    pos[n] = '\0';
    for (int d = 0; d < a->ndim && n < sizeof pos - 24; d++)
        n += (size_t)snprintf(pos + n, sizeof pos - n, d ? ", %" PRIu64 : "%" PRIu64, idx[d]);
    snprintf(pos + n, sizeof pos - n, "]");
    ms_error_set(err, MS_E_INPUT, "value %s at %s (flat index %" PRIu64 ") outside [0, %" PRIu32 ")",
                 val, pos, ci, limit);
    return a->name[0] ? ms_error_prefix(err, a->name) : MS_E_INPUT;
}

#define NPY_BLOCK 4096

/* Converts n stored items of type T (loaded as UT, byte-swapped by SWAP) to
 * uint16 in storage order; the range check is a branch-free OR over a block so
 * the loop vectorises (full blocks have a constant trip count, which gcc's
 * -O2 "very cheap" vectoriser needs). W is the unsigned type the value is
 * widened to, with sign extension, so negatives become huge and fail the
 * single unsigned comparison. Sets *bad_at to the first bad index or n. */
#define NPY_CONVERT(fname, T, UT, W, SWAP)                                                   \
    static unsigned fname##_block(const uint8_t *restrict src, W lim,                        \
                                  uint16_t *restrict out) {                                  \
        unsigned bad = 0;                                                                    \
        for (size_t i = 0; i < NPY_BLOCK; i++) {                                             \
            UT u;                                                                            \
            memcpy(&u, src + i * sizeof(UT), sizeof(UT));                                    \
            W v = (W)(T)SWAP(u);                                                             \
            bad |= v >= lim;                                                                 \
            out[i] = (uint16_t)v;                                                            \
        }                                                                                    \
        return bad;                                                                          \
    }                                                                                        \
    static unsigned fname##_tail(const uint8_t *restrict src, size_t n, W lim,               \
                                 uint16_t *restrict out) {                                   \
        unsigned bad = 0;                                                                    \
        for (size_t i = 0; i < n; i++) {                                                     \
            UT u;                                                                            \
            memcpy(&u, src + i * sizeof(UT), sizeof(UT));                                    \
            W v = (W)(T)SWAP(u);                                                             \
            bad |= v >= lim;                                                                 \
            out[i] = (uint16_t)v;                                                            \
        }                                                                                    \
        return bad;                                                                          \
    }                                                                                        \
    static void fname(const uint8_t *src, uint64_t n, W lim, uint16_t *out,                 \
                      uint64_t *bad_at) {                                                    \
        for (uint64_t b0 = 0; b0 < n; b0 += NPY_BLOCK) {                                     \
            uint64_t len = n - b0 > NPY_BLOCK ? NPY_BLOCK : n - b0;                          \
            const uint8_t *s = src + b0 * sizeof(UT);                                        \
            unsigned bad = len == NPY_BLOCK ? fname##_block(s, lim, out + b0)                \
                                            : fname##_tail(s, (size_t)len, lim, out + b0);   \
            if (bad) {                                                                       \
                for (uint64_t i = 0; i < len; i++) {                                         \
                    UT u;                                                                    \
                    memcpy(&u, s + i * sizeof(UT), sizeof(UT));                              \
                    if ((W)(T)SWAP(u) >= lim) {                                              \
                        *bad_at = b0 + i;                                                    \
                        return;                                                              \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        *bad_at = n;                                                                         \
    }

#define NPY_NOSWAP(x) (x)
NPY_CONVERT(conv_i1, int8_t, uint8_t, uint32_t, NPY_NOSWAP)
NPY_CONVERT(conv_u1, uint8_t, uint8_t, uint32_t, NPY_NOSWAP)
NPY_CONVERT(conv_i2, int16_t, uint16_t, uint32_t, NPY_NOSWAP)
NPY_CONVERT(conv_u2, uint16_t, uint16_t, uint32_t, NPY_NOSWAP)
NPY_CONVERT(conv_i4, int32_t, uint32_t, uint32_t, NPY_NOSWAP)
NPY_CONVERT(conv_u4, uint32_t, uint32_t, uint32_t, NPY_NOSWAP)
NPY_CONVERT(conv_i8, int64_t, uint64_t, uint64_t, NPY_NOSWAP)
NPY_CONVERT(conv_u8, uint64_t, uint64_t, uint64_t, NPY_NOSWAP)
NPY_CONVERT(conv_i2s, int16_t, uint16_t, uint32_t, __builtin_bswap16)
NPY_CONVERT(conv_u2s, uint16_t, uint16_t, uint32_t, __builtin_bswap16)
NPY_CONVERT(conv_i4s, int32_t, uint32_t, uint32_t, __builtin_bswap32)
NPY_CONVERT(conv_u4s, uint32_t, uint32_t, uint32_t, __builtin_bswap32)
NPY_CONVERT(conv_i8s, int64_t, uint64_t, uint64_t, __builtin_bswap64)
NPY_CONVERT(conv_u8s, uint64_t, uint64_t, uint64_t, __builtin_bswap64)

ms_status ms_npy_to_u16(const ms_npy_array *a, uint32_t limit, uint16_t *out, ms_error *err) {
    if (!is_integer(&a->dtype)) return not_integer(a, err);
    uint32_t lim = limit > 65536 ? 65536 : limit;
    uint64_t n = a->count;
    if (n == 0) return MS_OK;
    if (a->fortran_order && a->ndim >= 2) {
        /* Gather in C order: odometer over the C index, storage offset moving
         * by Fortran strides. */
        uint64_t idx[MS_NPY_MAX_DIMS] = {0}, fstride[MS_NPY_MAX_DIMS];
        int nd = a->ndim;
        uint64_t s = 1;
        for (int d = 0; d < nd; d++) {
            fstride[d] = s;
            s *= a->shape[d];
        }
        uint64_t off = 0;
        for (uint64_t ci = 0; ci < n; ci++) {
            uint64_t v = load_raw(a, off);
            if (v >= lim) return range_error(a, ci, lim, err);
            out[ci] = (uint16_t)v;
            for (int d = nd - 1; d >= 0; d--) {
                off += fstride[d];
                if (++idx[d] < a->shape[d]) break;
                off -= fstride[d] * a->shape[d];
                idx[d] = 0;
            }
        }
        return MS_OK;
    }
    uint64_t bad = n;
    const uint8_t *src = a->data;
    bool swap = a->dtype.big_endian != NPY_HOST_BIG;
    switch (a->dtype.kind) {
    case 'b':
        for (uint64_t i = 0; i < n; i++) {
            uint16_t v = src[i] != 0;
            if (v >= lim) {
                bad = i;
                break;
            }
            out[i] = v;
        }
        break;
    case 'i':
        switch (a->dtype.size) {
        case 1: conv_i1(src, n, lim, out, &bad); break;
        case 2: (swap ? conv_i2s : conv_i2)(src, n, lim, out, &bad); break;
        case 4: (swap ? conv_i4s : conv_i4)(src, n, lim, out, &bad); break;
        default: (swap ? conv_i8s : conv_i8)(src, n, lim, out, &bad); break;
        }
        break;
    default:
        switch (a->dtype.size) {
        case 1: conv_u1(src, n, lim, out, &bad); break;
        case 2: (swap ? conv_u2s : conv_u2)(src, n, lim, out, &bad); break;
        case 4: (swap ? conv_u4s : conv_u4)(src, n, lim, out, &bad); break;
        default: (swap ? conv_u8s : conv_u8)(src, n, lim, out, &bad); break;
        }
        break;
    }
    if (bad < n) return range_error(a, bad, lim, err);
    return MS_OK;
}
