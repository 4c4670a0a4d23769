/*
 * npz.c - the zip container of .npz files: a reader for archives held in
 * memory (end of central directory found backwards past any comment, ZIP64
 * end records and extra fields, STORED and DEFLATE members, CRC-32 and sizes
 * checked, data descriptors accepted when the central directory has the
 * sizes) and an atomic writer (STORED or raw DEFLATE, ZIP64 where needed).
 *
 * Reentrant: no globals; each thread opens its own ms_npz.
 *
 * Deflated members are inflated without intermediate copies: the npy prefix
 * and header go to a small buffer, then the data is inflated straight into
 * the array's own buffer, whose size comes from the header and must agree
 * with the declared uncompressed size. The declared size is checked against
 * deflate's maximum ratio (1032:1) before anything is allocated, and inflate
 * never writes past it, so bombs and lies fail without large allocations.
 */
#define ZLIB_CONST
#include "moesim/trace.h"
#include "trace/npy_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define LIM32 0xffffffffu
#define LIM16 0xffffu

#define LOCAL_LEN 30
#define CENTRAL_LEN 46
#define EOCD_LEN 22
#define EOCD64_LEN 56
#define LOC64_LEN 20

/* Largest output deflate can produce per input byte (zlib FAQ: 1032:1). */
#define DEFLATE_MAX_RATIO 1033u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static const char *method_name(unsigned m) {
    switch (m) {
    case 0: return "stored";
    case 1: return "shrink";
    case 6: return "implode";
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    case 95: return "xz";
    case 96: return "jpeg";
    case 98: return "ppmd";
    case 99: return "aes-encrypted";
    default: return "unknown";
    }
}

/* ================================================================ reader */

typedef struct npz_entry {
    uint64_t csize, usize, local_off;
    uint32_t crc;
    uint16_t method, flags;
    uint16_t name_len;
    size_t name_off; /* into ms_npz.names, NUL-terminated there */
} npz_entry;

struct ms_npz {
    uint8_t *buf;
    size_t len;
    npz_entry *e;
    size_t n;
    char *names;
    char *label;
};

/* Finds the ZIP64 extra field (id 0x0001) in an extra area and replaces, in
 * order, each of the values whose 32-bit field was saturated. Other extra
 * fields are skipped by their declared lengths. Returns false when the area or
 * the ZIP64 field is malformed or too short. off may be NULL (local
 * headers). */
static bool apply_zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize,
                              uint64_t *off) {
    size_t i = 0;
    while (xlen - i >= 4) {
        uint16_t id = rd16(x + i), sz = rd16(x + i + 2);
        if (sz > xlen - i - 4) return false;
        if (id == 0x0001) {
            const uint8_t *f = x + i + 4;
            size_t left = sz;
            uint64_t *vals[3] = {usize, csize, off};
            for (int k = 0; k < 3; k++) {
                if (!vals[k] || *vals[k] != LIM32) continue;
                if (left < 8) return false;
                *vals[k] = rd64(f);
                f += 8;
                left -= 8;
            }
            /* a 4-byte disk number may follow in central headers; unused */
            return true;
        }
        i += 4 + (size_t)sz;
    }
    return true; /* no ZIP64 field: the 32-bit values stand (trailing 1-3 bytes ignored) */
}

static ms_status npz_parse(ms_npz *z, ms_error *err) {
    const uint8_t *b = z->buf;
    size_t len = z->len;
    if (len == 0) return ms_error_set(err, MS_E_INPUT, "empty file, not a zip archive");
    if (len < EOCD_LEN)
        return ms_error_set(err, MS_E_INPUT, "not a zip archive (%zu bytes, too short)", len);
    /* End of central directory: the last signature whose comment fits. */
    size_t lo = len - EOCD_LEN > 65535 ? len - EOCD_LEN - 65535 : 0;
    size_t eocd = SIZE_MAX;
    for (size_t i = len - EOCD_LEN + 1; i-- > lo;) {
        if (b[i] == 0x50 && rd32(b + i) == SIG_EOCD && i + EOCD_LEN + rd16(b + i + 20) <= len) {
            eocd = i;
            break;
        }
    }
    if (eocd == SIZE_MAX)
        return ms_error_set(err, MS_E_INPUT, "not a zip archive (no end of central directory record)");
    uint64_t disk = rd16(b + eocd + 4), cd_disk = rd16(b + eocd + 6);
    uint64_t n_disk = rd16(b + eocd + 8), n_total = rd16(b + eocd + 10);
    uint64_t cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    uint64_t cd_limit = eocd; /* the central directory must end before this */
    if (eocd >= LOC64_LEN && rd32(b + eocd - LOC64_LEN) == SIG_LOC64) {
        size_t loc = eocd - LOC64_LEN;
        uint64_t rec = rd64(b + loc + 8);
        if (loc < EOCD64_LEN || rec > loc - EOCD64_LEN || rd32(b + rec) != SIG_EOCD64)
            return ms_error_set(err, MS_E_INPUT, "bad ZIP64 end of central directory locator");
        disk = rd32(b + rec + 16);
        cd_disk = rd32(b + rec + 20);
        n_disk = rd64(b + rec + 24);
        n_total = rd64(b + rec + 32);
        cd_size = rd64(b + rec + 40);
        cd_off = rd64(b + rec + 48);
        cd_limit = rec;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return ms_error_set(err, MS_E_INPUT, "multi-disk (split) zip archives are not supported");
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        return ms_error_set(err, MS_E_INPUT,
                            "central directory (offset %" PRIu64 ", %" PRIu64
                            " bytes) lies outside the file (truncated?)",
                            cd_off, cd_size);
    if (n_total > cd_size / CENTRAL_LEN)
        return ms_error_set(err, MS_E_INPUT,
                            "central directory claims %" PRIu64 " entries in %" PRIu64 " bytes",
                            n_total, cd_size);
    z->e = ms_calloc_array((size_t)n_total ? (size_t)n_total : 1, sizeof *z->e, err);
    /* names + NULs take fewer bytes than the central directory holding them */
    z->names = ms_alloc_array((size_t)cd_size + 1, 1, err);
    if (!z->e || !z->names) return MS_E_NOMEM;
    size_t p = (size_t)cd_off, end = (size_t)(cd_off + cd_size), names_used = 0;
    for (uint64_t i = 0; i < n_total; i++) {
        if (end - p < CENTRAL_LEN || rd32(b + p) != SIG_CENTRAL)
            return ms_error_set(err, MS_E_INPUT, "central directory entry %" PRIu64 " is %s", i,
                                end - p < CENTRAL_LEN ? "truncated" : "corrupt (bad signature)");
        npz_entry *e = &z->e[i];
        e->flags = rd16(b + p + 8);
        e->method = rd16(b + p + 10);
        e->crc = rd32(b + p + 16);
        e->csize = rd32(b + p + 20);
        e->usize = rd32(b + p + 24);
        size_t nlen = rd16(b + p + 28), xlen = rd16(b + p + 30), clen = rd16(b + p + 32);
        e->local_off = rd32(b + p + 42);
        if (end - p - CENTRAL_LEN < nlen + xlen + clen)
            return ms_error_set(err, MS_E_INPUT, "central directory entry %" PRIu64 " is truncated", i);
        const uint8_t *name = b + p + CENTRAL_LEN;
        if (memchr(name, 0, nlen))
            return ms_error_set(err, MS_E_INPUT, "central directory entry %" PRIu64
                                " has a NUL byte in its name", i);
        if (!apply_zip64_extra(name + nlen, xlen, &e->usize, &e->csize, &e->local_off))
            return ms_error_set(err, MS_E_INPUT, "%.*s: corrupt extra field in the central directory",
                                (int)(nlen > 200 ? 200 : nlen), (const char *)name);
        e->name_len = (uint16_t)nlen;
        e->name_off = names_used;
        memcpy(z->names + names_used, name, nlen);
        z->names[names_used + nlen] = '\0';
        names_used += nlen + 1;
        p += CENTRAL_LEN + nlen + xlen + clen;
    }
    z->n = (size_t)n_total;
    return MS_OK;
}

/* Takes ownership of buf (freed on failure too). */
static ms_status npz_open_owned(uint8_t *buf, size_t len, const char *label, ms_npz **out,
                                ms_error *err) {
    *out = NULL;
    ms_npz *z = ms_calloc_array(1, sizeof *z, err);
    if (!z) {
        ms_free(buf);
        return MS_E_NOMEM;
    }
    z->buf = buf;
    z->len = len;
    size_t ll = strlen(label);
    z->label = ms_alloc_array(ll + 1, 1, err);
    if (!z->label) {
        ms_npz_free(z);
        return MS_E_NOMEM;
    }
    memcpy(z->label, label, ll + 1);
    ms_status st = npz_parse(z, err);
    if (st != MS_OK) {
        ms_error_prefix(err, z->label);
        ms_npz_free(z);
        return st;
    }
    *out = z;
    return MS_OK;
}

/* Reads a whole file with plain POSIX calls: for the thousands of small
 * files of a trace this is measurably cheaper than stdio (no FILE, no
 * buffer). Fails MS_E_IO (message names the path) or MS_E_NOMEM. */
static ms_status npz_read_file(const char *path, uint8_t **buf, size_t *len, ms_error *err) {
    *buf = NULL;
    *len = 0;
    int fd;
    do fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return ms_error_set(err, MS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ms_error_set(err, MS_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX - 1) {
        close(fd);
        return ms_error_set(err, MS_E_NOMEM, "%s: too large to read into memory", path);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *b = ms_alloc_array(size ? size : 1, 1, err);
    if (!b) {
        close(fd);
        return ms_error_prefix(err, path);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            ms_free(b);
            return ms_error_set(err, MS_E_IO, "%s: read failed: %s", path,
                                e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = size;
    return MS_OK;
}

ms_status ms_npz_open(const char *path, ms_npz **out, ms_error *err) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    ms_status st = npz_read_file(path, &buf, &len, err);
    if (st != MS_OK) return st;
    return npz_open_owned(buf, len, path, out, err);
}

ms_status ms_npz_open_mem(const uint8_t *buf, size_t len, const char *label, ms_npz **out,
                          ms_error *err) {
    *out = NULL;
    if (!label) label = "<memory>";
    uint8_t *copy = ms_alloc_array(len ? len : 1, 1, err);
    if (!copy) return ms_error_prefix(err, label);
    if (len) memcpy(copy, buf, len);
    return npz_open_owned(copy, len, label, out, err);
}

void ms_npz_free(ms_npz *z) {
    if (!z) return;
    ms_free(z->buf);
    ms_free(z->e);
    ms_free(z->names);
    ms_free(z->label);
    ms_free(z);
}

size_t ms_npz_member_count(const ms_npz *z) { return z->n; }

const char *ms_npz_member_name(const ms_npz *z, size_t i) {
    return i < z->n ? z->names + z->e[i].name_off : NULL;
}

size_t ms_npz_size(const ms_npz *z) { return z->len; }

/* Index of the member for array `name` ("name.npy", else exactly "name");
 * the last one wins when names repeat, as in Python's zipfile. -1 if none. */
static ptrdiff_t npz_find(const ms_npz *z, const char *name) {
    size_t nl = strlen(name);
    for (size_t i = z->n; i-- > 0;) {
        const npz_entry *e = &z->e[i];
        const char *m = z->names + e->name_off;
        if (e->name_len == nl + 4 && memcmp(m, name, nl) == 0 && memcmp(m + nl, ".npy", 4) == 0)
            return (ptrdiff_t)i;
    }
    for (size_t i = z->n; i-- > 0;) {
        const npz_entry *e = &z->e[i];
        if (e->name_len == nl && memcmp(z->names + e->name_off, name, nl) == 0) return (ptrdiff_t)i;
    }
    return -1;
}

bool ms_npz_has(const ms_npz *z, const char *array_name) { return npz_find(z, array_name) >= 0; }

static uint32_t crc_update(uint32_t crc, const uint8_t *p, uint64_t n) {
    while (n > 0) {
        uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, take);
        p += take;
        n -= take;
    }
    return crc;
}

/* Inflate state for one member: input bounded by the compressed size. */
typedef struct inflater {
    z_stream s;
    const uint8_t *in;
    uint64_t in_left; /* not yet handed to zlib */
    uint32_t crc;
    bool ended;
} inflater;

#define INFLATE_CHUNK (256u * 1024u)

/* Inflates into dst until n bytes are out or the stream ends; *got receives
 * the bytes produced. CRC of the output accumulated. */
static ms_status inflate_into(inflater *f, uint8_t *dst, uint64_t n, uint64_t *got, ms_error *err) {
    uint64_t done = 0;
    while (done < n && !f->ended) {
        if (f->s.avail_in == 0 && f->in_left > 0) {
            uInt take = f->in_left > (1u << 30) ? (1u << 30) : (uInt)f->in_left;
            f->s.next_in = f->in;
            f->s.avail_in = take;
            f->in += take;
            f->in_left -= take;
        }
        uInt want = n - done > INFLATE_CHUNK ? INFLATE_CHUNK : (uInt)(n - done);
        f->s.next_out = dst + done;
        f->s.avail_out = want;
        int r = inflate(&f->s, Z_NO_FLUSH);
        uInt produced = want - f->s.avail_out;
        f->crc = crc_update(f->crc, dst + done, produced);
        done += produced;
        if (r == Z_STREAM_END) {
            f->ended = true;
        } else if (r == Z_BUF_ERROR || (r == Z_OK && produced == 0 && f->s.avail_in == 0)) {
            if (f->s.avail_in == 0 && f->in_left == 0)
                return ms_error_set(err, MS_E_INPUT, "compressed data truncated (deflate stream "
                                    "ends early)");
            if (r == Z_BUF_ERROR)
                return ms_error_set(err, MS_E_INTERNAL, "inflate made no progress");
        } else if (r == Z_MEM_ERROR) {
            return ms_error_set(err, MS_E_NOMEM, "out of memory in inflate");
        } else if (r != Z_OK) {
            return ms_error_set(err, MS_E_INPUT, "corrupt deflate data (%s)",
                                f->s.msg ? f->s.msg : "zlib error");
        }
    }
    *got = done;
    return MS_OK;
}

static ms_status size_mismatch(uint64_t got_at_least, uint64_t declared, bool more, ms_error *err) {
    if (more)
        return ms_error_set(err, MS_E_INPUT,
                            "decompresses to more than the declared %" PRIu64 " bytes", declared);
    return ms_error_set(err, MS_E_INPUT,
                        "decompresses to %" PRIu64 " bytes, fewer than the declared %" PRIu64,
                        got_at_least, declared);
}

static ms_status inflate_member(const npz_entry *e, const uint8_t *data, ms_npy_array *out,
                                ms_error *err) {
    uint64_t maxu = e->csize > UINT64_MAX / DEFLATE_MAX_RATIO ? UINT64_MAX
                                                               : e->csize * DEFLATE_MAX_RATIO + 64;
    if (e->usize > maxu)
        return ms_error_set(err, MS_E_INPUT,
                            "declared size %" PRIu64 " bytes is impossible for %" PRIu64
                            " deflated bytes (corrupt, or a decompression bomb)",
                            e->usize, e->csize);
    if (e->usize > SIZE_MAX) return ms_error_set(err, MS_E_NOMEM, "member too large for memory");
    inflater f;
    memset(&f, 0, sizeof f);
    f.in = data;
    f.in_left = e->csize;
    if (inflateInit2(&f.s, -MAX_WBITS) != Z_OK)
        return ms_error_set(err, MS_E_NOMEM, "cannot initialise zlib");
    uint8_t pre[MS_NPY_PREFIX_MAX];
    uint8_t *head = NULL;
    ms_status st;
    /* Magic and version first (8 bytes), then exactly the length field of
     * that version, so no data byte lands in the prefix buffer. */
    uint64_t got = 0, want = e->usize < 8 ? e->usize : 8;
    size_t plen = 0, hlen = 0;
    if ((st = inflate_into(&f, pre, want, &got, err)) != MS_OK) goto done;
    if (got == want && want == 8) {
        uint64_t more = (pre[6] == 1 ? 10 : MS_NPY_PREFIX_MAX) - 8;
        if (more > e->usize - 8) more = e->usize - 8;
        if ((st = inflate_into(&f, pre + 8, more, &got, err)) != MS_OK) goto done;
        want += more;
        got += 8;
    }
    if (got < want) {
        st = size_mismatch(got, e->usize, false, err);
        goto done;
    }
    if ((st = ms_npy_parse_prefix(pre, (size_t)want, &plen, &hlen, err)) != MS_OK) goto done;
    if (want > hlen) { /* cannot happen: the prefix is part of the header length */
        st = ms_error_set(err, MS_E_INTERNAL, "npy prefix longer than its header");
        goto done;
    }
    if (hlen > e->usize) {
        st = ms_error_set(err, MS_E_INPUT, "npy header (%zu bytes) longer than the member (%" PRIu64
                          " bytes)", hlen, e->usize);
        goto done;
    }
    head = ms_alloc_array(hlen, 1, err);
    if (!head) {
        st = MS_E_NOMEM;
        goto done;
    }
    memcpy(head, pre, (size_t)want);
    if ((st = inflate_into(&f, head + want, hlen - want, &got, err)) != MS_OK) goto done;
    if (got < hlen - want) {
        st = size_mismatch(want + got, e->usize, false, err);
        goto done;
    }
    if ((st = ms_npy_parse_header((const char *)head + plen, hlen - plen, out, err)) != MS_OK)
        goto done;
    if (e->usize - hlen != out->nbytes) {
        st = ms_error_set(err, MS_E_INPUT,
                          "npy data is %" PRIu64 " bytes but dtype %s and %d-d shape need %zu",
                          e->usize - hlen, out->descr, out->ndim, out->nbytes);
        goto done;
    }
    out->data = ms_alloc_array(out->nbytes ? out->nbytes : 1, 1, err);
    if (!out->data) {
        st = MS_E_NOMEM;
        goto done;
    }
    if ((st = inflate_into(&f, out->data, out->nbytes, &got, err)) != MS_OK) goto done;
    if (got < out->nbytes) {
        st = size_mismatch(hlen + got, e->usize, false, err);
        goto done;
    }
    if (!f.ended) { /* all declared bytes are out: the stream must end here */
        uint8_t extra;
        if ((st = inflate_into(&f, &extra, 1, &got, err)) != MS_OK) goto done;
        if (got > 0 || !f.ended) {
            st = size_mismatch(0, e->usize, true, err);
            goto done;
        }
    }
    if (f.s.avail_in != 0 || f.in_left != 0) {
        st = ms_error_set(err, MS_E_INPUT,
                          "deflate stream ends %" PRIu64 " bytes before the compressed size",
                          (uint64_t)f.s.avail_in + f.in_left);
        goto done;
    }
    if (f.crc != e->crc)
        st = ms_error_set(err, MS_E_INPUT, "CRC mismatch (stored 0x%08" PRIx32
                          ", computed 0x%08" PRIx32 ")", e->crc, f.crc);
done:
    inflateEnd(&f.s);
    ms_free(head);
    return st;
}

static ms_status extract(const ms_npz *z, const npz_entry *e, ms_npy_array *out, ms_error *err) {
    const uint8_t *b = z->buf;
    size_t len = z->len;
    if (e->flags & 0x41)
        return ms_error_set(err, MS_E_INPUT, "encrypted member (not supported)");
    if (e->method != 0 && e->method != 8)
        return ms_error_set(err, MS_E_INPUT, "unsupported compression method %u (%s); only "
                            "stored and deflate are read", e->method, method_name(e->method));
    uint64_t lo = e->local_off;
    if (lo > len || len - lo < LOCAL_LEN)
        return ms_error_set(err, MS_E_INPUT, "local header at offset %" PRIu64
                            " lies outside the file (truncated?)", lo);
    const uint8_t *h = b + lo;
    if (rd32(h) != SIG_LOCAL)
        return ms_error_set(err, MS_E_INPUT, "bad local header signature at offset %" PRIu64, lo);
    uint16_t lflags = rd16(h + 6), lmethod = rd16(h + 8);
    uint32_t lcrc = rd32(h + 14);
    uint64_t lcsize = rd32(h + 18), lusize = rd32(h + 22);
    size_t nlen = rd16(h + 26), xlen = rd16(h + 28);
    if (len - lo - LOCAL_LEN < nlen + xlen)
        return ms_error_set(err, MS_E_INPUT, "local header truncated");
    if (nlen != e->name_len || memcmp(h + LOCAL_LEN, z->names + e->name_off, nlen) != 0)
        return ms_error_set(err, MS_E_INPUT, "local header names '%.*s'",
                            (int)(nlen > 200 ? 200 : nlen), (const char *)h + LOCAL_LEN);
    if (lmethod != e->method)
        return ms_error_set(err, MS_E_INPUT, "compression method %u in the local header, %u in "
                            "the central directory", lmethod, e->method);
    if (lflags & 0x41) return ms_error_set(err, MS_E_INPUT, "encrypted member (not supported)");
    if (!(lflags & 0x08)) { /* no data descriptor: the local header has crc and sizes */
        if (!apply_zip64_extra(h + LOCAL_LEN + nlen, xlen, &lusize, &lcsize, NULL))
            return ms_error_set(err, MS_E_INPUT, "corrupt extra field in the local header");
        if (lcrc != e->crc || lcsize != e->csize || lusize != e->usize)
            return ms_error_set(err, MS_E_INPUT,
                                "local header (crc 0x%08" PRIx32 ", sizes %" PRIu64 "/%" PRIu64
                                ") disagrees with the central directory (crc 0x%08" PRIx32
                                ", sizes %" PRIu64 "/%" PRIu64 ")",
                                lcrc, lcsize, lusize, e->crc, e->csize, e->usize);
    }
    uint64_t data_off = lo + LOCAL_LEN + nlen + xlen;
    if (e->csize > len - data_off)
        return ms_error_set(err, MS_E_INPUT, "data truncated (%" PRIu64 " bytes at offset %" PRIu64
                            ", file has %zu)", e->csize, data_off, len);
    const uint8_t *data = b + data_off;
    if (e->method == 0) {
        if (e->csize != e->usize)
            return ms_error_set(err, MS_E_INPUT, "stored member with compressed size %" PRIu64
                                " != uncompressed size %" PRIu64, e->csize, e->usize);
        uint32_t crc = crc_update(0, data, e->csize);
        if (crc != e->crc)
            return ms_error_set(err, MS_E_INPUT, "CRC mismatch (stored 0x%08" PRIx32
                                ", computed 0x%08" PRIx32 ")", e->crc, crc);
        return ms_npy_parse(data, (size_t)e->csize, out, err);
    }
    return inflate_member(e, data, out, err);
}

ms_status ms_npz_read_array(ms_npz *z, const char *array_name, ms_npy_array *out, ms_error *err) {
    memset(out, 0, sizeof *out);
    ptrdiff_t i = npz_find(z, array_name);
    if (i < 0) return ms_error_set(err, MS_E_INPUT, "no array '%.200s' in the archive", array_name);
    const npz_entry *e = &z->e[i];
    const char *mname = z->names + e->name_off;
    ms_status st = extract(z, e, out, err);
    if (st != MS_OK) {
        ms_npy_array_clear(out);
        memset(out, 0, sizeof *out);
        return ms_error_prefix(err, mname);
    }
    size_t nl = e->name_len;
    if (nl >= 4 && memcmp(mname + nl - 4, ".npy", 4) == 0) nl -= 4;
    if (nl >= sizeof out->name) nl = sizeof out->name - 1;
    memcpy(out->name, mname, nl);
    out->name[nl] = '\0';
    return MS_OK;
}

/* ================================================================ writer */

typedef struct wentry {
    char *name; /* "x.npy" */
    uint16_t name_len;
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize, offset;
} wentry;

struct ms_npz_writer {
    ms_afile f;
    bool compress;
    bool force_zip64;
    bool failed;
    uint64_t pos; /* bytes written so far */
    wentry *e;
    size_t n, cap;
    uint8_t *zbuf;
};

#define ZBUF_LEN (256u * 1024u)

static void wr16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v) {
    wr16(p, v & 0xffff);
    wr16(p + 2, v >> 16);
}
static void wr64(uint8_t *p, uint64_t v) {
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static ms_status w_write(ms_npz_writer *w, const void *p, size_t n, ms_error *err) {
    if (n && fwrite(p, 1, n, w->f.fp) != n) {
        w->failed = true;
        return ms_error_set(err, MS_E_IO, "%s: write failed: %s", w->f.path, strerror(errno));
    }
    w->pos += n;
    return MS_OK;
}

void ms_npz_writer_force_zip64(ms_npz_writer *w, bool on) { w->force_zip64 = on; }

ms_status ms_npz_writer_open(const char *path, bool compress, ms_npz_writer **out, ms_error *err) {
    *out = NULL;
    if (strcmp(path, "-") == 0)
        return ms_error_set(err, MS_E_IO, "an npz cannot be written to stdout");
    ms_npz_writer *w = ms_calloc_array(1, sizeof *w, err);
    if (!w) return MS_E_NOMEM;
    w->compress = compress;
    if (compress && !(w->zbuf = ms_alloc_array(ZBUF_LEN, 1, err))) {
        ms_free(w);
        return MS_E_NOMEM;
    }
    ms_status st = ms_afile_open(&w->f, path, err);
    if (st != MS_OK) {
        ms_free(w->zbuf);
        ms_free(w);
        return st;
    }
    *out = w;
    return MS_OK;
}

static void w_free(ms_npz_writer *w) {
    for (size_t i = 0; i < w->n; i++) ms_free(w->e[i].name);
    ms_free(w->e);
    ms_free(w->zbuf);
    ms_free(w);
}

void ms_npz_writer_abort(ms_npz_writer *w) {
    if (!w) return;
    ms_afile_abort(&w->f);
    w_free(w);
}

/* Local header for e; zip64: carry a ZIP64 extra with both sizes. */
static size_t local_header(uint8_t *h, const wentry *e, bool zip64) {
    bool utf8 = false;
    for (size_t i = 0; i < e->name_len; i++) utf8 |= (unsigned char)e->name[i] >= 0x80;
    wr32(h, SIG_LOCAL);
    wr16(h + 4, zip64 ? 45 : 20);
    wr16(h + 6, utf8 ? 0x800 : 0);
    wr16(h + 8, e->method);
    wr16(h + 10, 0);      /* time 00:00:00 */
    wr16(h + 12, 0x21);   /* date 1980-01-01: same input, same bytes */
    wr32(h + 14, e->crc);
    wr32(h + 18, zip64 ? LIM32 : (uint32_t)e->csize);
    wr32(h + 22, zip64 ? LIM32 : (uint32_t)e->usize);
    wr16(h + 26, e->name_len);
    wr16(h + 28, zip64 ? 20 : 0);
    memcpy(h + LOCAL_LEN, e->name, e->name_len);
    size_t n = LOCAL_LEN + e->name_len;
    if (zip64) {
        wr16(h + n, 1);
        wr16(h + n + 2, 16);
        wr64(h + n + 4, e->usize);
        wr64(h + n + 12, e->csize);
        n += 20;
    }
    return n;
}

/* Streams header + data through raw deflate into the file. */
static ms_status w_deflate(ms_npz_writer *w, const uint8_t *head, size_t hlen, const uint8_t *data,
                           uint64_t nbytes, uint64_t *csize, ms_error *err) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return ms_error_set(err, MS_E_NOMEM, "cannot initialise zlib");
    ms_status st = MS_OK;
    uint64_t start = w->pos;
    const uint8_t *src[2] = {head, data};
    uint64_t left[2] = {hlen, nbytes};
    for (int part = 0; part < 2 && st == MS_OK; part++) {
        const uint8_t *p = src[part];
        uint64_t n = left[part];
        do {
            uInt take = n > (1u << 30) ? (1u << 30) : (uInt)n;
            s.next_in = p;
            s.avail_in = take;
            p += take;
            n -= take;
            int flush = (part == 1 && n == 0) ? Z_FINISH : Z_NO_FLUSH;
            int r;
            do {
                s.next_out = w->zbuf;
                s.avail_out = ZBUF_LEN;
                r = deflate(&s, flush);
                if (r == Z_STREAM_ERROR) {
                    st = ms_error_set(err, MS_E_INTERNAL, "deflate failed");
                    break;
                }
                st = w_write(w, w->zbuf, ZBUF_LEN - s.avail_out, err);
            } while (st == MS_OK && s.avail_out == 0);
        } while (st == MS_OK && n > 0);
    }
    deflateEnd(&s);
    *csize = w->pos - start;
    return st;
}

ms_status ms_npz_writer_add(ms_npz_writer *w, const char *name, const char *descr, int ndim,
                            const uint64_t *shape, const void *data, ms_error *err) {
    if (w->failed) return ms_error_set(err, MS_E_IO, "%s: an earlier write failed", w->f.path);
    size_t nl = strlen(name);
    if (nl == 0 || nl > 1000) return ms_error_set(err, MS_E_INPUT, "bad array name length %zu", nl);
    for (size_t i = 0; i < w->n; i++)
        if (w->e[i].name_len == nl + 4 && memcmp(w->e[i].name, name, nl) == 0)
            return ms_error_set(err, MS_E_INPUT, "array '%s' added twice", name);
    uint8_t head[MS_NPY_HEADER_BUF];
    size_t hlen;
    uint64_t nbytes;
    ms_status st = ms_npy_format_header(descr, ndim, shape, head, &hlen, &nbytes, err);
    if (st != MS_OK) return ms_error_prefix(err, name);
    if (nbytes && !data) return ms_error_set(err, MS_E_INPUT, "%s: no data", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 8;
        wentry *ne = ms_realloc_array(w->e, cap, sizeof *ne, err);
        if (!ne) return MS_E_NOMEM;
        w->e = ne;
        w->cap = cap;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = ms_alloc_array(nl + 5, 1, err);
    if (!e->name) return MS_E_NOMEM;
    memcpy(e->name, name, nl);
    memcpy(e->name + nl, ".npy", 5);
    e->name_len = (uint16_t)(nl + 4);
    w->n++; /* owned by the writer from here on (freed with it) */
    e->method = w->compress ? 8 : 0;
    e->usize = hlen + nbytes;
    e->offset = w->pos;
    e->crc = crc_update(crc_update(0, head, hlen), data, nbytes);
    e->csize = w->compress ? 0 : e->usize;
    bool zip64 = w->force_zip64 || e->usize >= LIM32 ||
                 (w->compress && deflateBound(NULL, (uLong)e->usize) >= LIM32);
    uint8_t lh[LOCAL_LEN + 1004 + 20];
    size_t lhl = local_header(lh, e, zip64);
    if ((st = w_write(w, lh, lhl, err)) != MS_OK) goto fail;
    if (!w->compress) {
        if ((st = w_write(w, head, hlen, err)) != MS_OK) goto fail;
        if (nbytes && (st = w_write(w, data, (size_t)nbytes, err)) != MS_OK) goto fail;
        return MS_OK;
    }
    if ((st = w_deflate(w, head, hlen, data, nbytes, &e->csize, err)) != MS_OK) goto fail;
    if (!zip64 && e->csize >= LIM32) {
        st = ms_error_set(err, MS_E_INTERNAL, "%s: compressed size exceeded its bound", name);
        goto fail;
    }
    /* Patch the sizes into the local header, then return to the end. */
    lhl = local_header(lh, e, zip64);
    if (fseeko(w->f.fp, (off_t)e->offset, SEEK_SET) != 0 || fwrite(lh, 1, lhl, w->f.fp) != lhl ||
        fseeko(w->f.fp, (off_t)w->pos, SEEK_SET) != 0) {
        st = ms_error_set(err, MS_E_IO, "%s: write failed: %s", w->f.path, strerror(errno));
        goto fail;
    }
    return MS_OK;
fail:
    w->failed = true;
    return st;
}

ms_status ms_npz_writer_close(ms_npz_writer *w, ms_error *err) {
    ms_status st = MS_OK;
    if (!w) return ms_error_set(err, MS_E_INTERNAL, "ms_npz_writer_close: no writer");
    if (w->failed) {
        st = ms_error_set(err, MS_E_IO, "%s: an earlier write failed", w->f.path);
        ms_npz_writer_abort(w);
        return st;
    }
    uint64_t cd_off = w->pos;
    uint8_t h[CENTRAL_LEN + 1004 + 28];
    for (size_t i = 0; i < w->n && st == MS_OK; i++) {
        const wentry *e = &w->e[i];
        bool zu = w->force_zip64 || e->usize >= LIM32, zc = w->force_zip64 || e->csize >= LIM32,
             zo = w->force_zip64 || e->offset >= LIM32;
        bool z64 = zu || zc || zo;
        bool utf8 = false;
        for (size_t k = 0; k < e->name_len; k++) utf8 |= (unsigned char)e->name[k] >= 0x80;
        uint16_t xlen = (uint16_t)((zu + zc + zo) * 8 + (z64 ? 4 : 0));
        wr32(h, SIG_CENTRAL);
        wr16(h + 4, 0x0300 | (z64 ? 45 : 20)); /* made by: unix */
        wr16(h + 6, z64 ? 45 : 20);
        wr16(h + 8, utf8 ? 0x800 : 0);
        wr16(h + 10, e->method);
        wr16(h + 12, 0);
        wr16(h + 14, 0x21);
        wr32(h + 16, e->crc);
        wr32(h + 20, zc ? LIM32 : (uint32_t)e->csize);
        wr32(h + 24, zu ? LIM32 : (uint32_t)e->usize);
        wr16(h + 28, e->name_len);
        wr16(h + 30, xlen);
        wr16(h + 32, 0);
        wr16(h + 34, 0);
        wr16(h + 36, 0);
        wr32(h + 38, 0100644u << 16); /* regular file, rw-r--r-- */
        wr32(h + 42, zo ? LIM32 : (uint32_t)e->offset);
        memcpy(h + CENTRAL_LEN, e->name, e->name_len);
        size_t n = CENTRAL_LEN + e->name_len;
        if (z64) {
            wr16(h + n, 1);
            wr16(h + n + 2, (uint16_t)(xlen - 4));
            n += 4;
            if (zu) { wr64(h + n, e->usize); n += 8; }
            if (zc) { wr64(h + n, e->csize); n += 8; }
            if (zo) { wr64(h + n, e->offset); n += 8; }
        }
        st = w_write(w, h, n, err);
    }
    uint64_t cd_size = w->pos - cd_off;
    bool z64 = w->force_zip64 || w->n >= LIM16 || cd_size >= LIM32 || cd_off >= LIM32;
    if (st == MS_OK && z64) {
        uint8_t r[EOCD64_LEN + LOC64_LEN];
        uint64_t rec = w->pos;
        wr32(r, SIG_EOCD64);
        wr64(r + 4, EOCD64_LEN - 12);
        wr16(r + 12, 0x0300 | 45);
        wr16(r + 14, 45);
        wr32(r + 16, 0);
        wr32(r + 20, 0);
        wr64(r + 24, w->n);
        wr64(r + 32, w->n);
        wr64(r + 40, cd_size);
        wr64(r + 48, cd_off);
        wr32(r + 56, SIG_LOC64);
        wr32(r + 60, 0);
        wr64(r + 64, rec);
        wr32(r + 72, 1);
        st = w_write(w, r, sizeof r, err);
    }
    if (st == MS_OK) {
        uint8_t r[EOCD_LEN];
        wr32(r, SIG_EOCD);
        wr16(r + 4, 0);
        wr16(r + 6, 0);
        wr16(r + 8, z64 ? LIM16 : (uint32_t)w->n);
        wr16(r + 10, z64 ? LIM16 : (uint32_t)w->n);
        wr32(r + 12, z64 ? LIM32 : (uint32_t)cd_size);
        wr32(r + 16, z64 ? LIM32 : (uint32_t)cd_off);
        wr16(r + 20, 0);
        st = w_write(w, r, sizeof r, err);
    }
    if (st != MS_OK) {
        ms_npz_writer_abort(w);
        return st;
    }
    st = ms_afile_commit(&w->f, err);
    w_free(w);
    return st;
}
