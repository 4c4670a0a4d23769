/* test-npz.c - the npy/npz reader and writer.
 *
 * Truth comes from numpy (/usr/bin/python3): fixtures written with np.savez,
 * np.savez_compressed, np.lib.format.write_array (v1/v2/v3) and zipfile
 * (ZIP64 everywhere, data descriptors, comments, bzip2/lzma), with every value
 * listed by Python and cross-checked; files written by ms_npz_writer are read
 * back by numpy and compared byte for byte with np.save. Bad inputs are built
 * by hand (a tiny zip builder below) and by cutting and flipping valid files.
 * The numpy parts are skipped when numpy is missing.
 */
#define ZLIB_CONST
#include "testutil.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "moesim/trace.h"
#include "trace/npy_internal.h"

/* ------------------------------------------------------------ helpers */

/* Reads every member of an archive; returns the first failure (or MS_OK).
 * Also runs ms_npy_to_u16 and ms_npy_get_int on integer arrays, as a loader
 * would. */
static ms_status read_all(ms_npz *z, ms_error *err) {
    ms_status first = MS_OK;
    for (size_t i = 0; i < ms_npz_member_count(z); i++) {
        char name[1100];
        snprintf(name, sizeof name, "%s", ms_npz_member_name(z, i));
        size_t nl = strlen(name);
        if (nl >= 4 && strcmp(name + nl - 4, ".npy") == 0) name[nl - 4] = '\0';
        ms_npy_array a;
        ms_status st = ms_npz_read_array(z, name, &a, err);
        if (st != MS_OK) {
            assert_null(a.data);
            if (first == MS_OK) first = st;
            continue;
        }
        assert_int_equal(a.nbytes, a.count * a.dtype.size);
        if (a.dtype.kind != 'f') {
            uint16_t *u = malloc(a.count * 2 + 2);
            assert_non_null(u);
            ms_error e2;
            (void)ms_npy_to_u16(&a, 65536, u, &e2);
            int64_t v;
            if (a.count) (void)ms_npy_get_int(&a, a.count - 1, &v, &e2);
            free(u);
        }
        ms_npy_array_clear(&a);
    }
    return first;
}

static ms_status open_read_all(const uint8_t *buf, size_t len, ms_error *err) {
    ms_npz *z;
    ms_status st = ms_npz_open_mem(buf, len, "mem.npz", &z, err);
    if (st != MS_OK) {
        assert_null(z);
        return st;
    }
    st = read_all(z, err);
    ms_npz_free(z);
    return st;
}

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *buf;
    ms_error err;
    assert_int_equal(ms_file_read_all(path, &buf, len, &err), MS_OK);
    return buf;
}

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A v1.0 npy image with the given header dict text (padded like numpy). */
static size_t make_npy(uint8_t *out, const char *dict, const void *data, size_t dlen) {
    size_t n = strlen(dict);
    size_t total = 10 + n + 1;
    size_t pad = (64 - total % 64) % 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    put16(out + 8, (uint32_t)(n + 1 + pad));
    memcpy(out + 10, dict, n);
    memset(out + 10 + n, ' ', pad);
    out[10 + n + pad] = '\n';
    if (dlen) memcpy(out + total + pad, data, dlen);
    return total + pad + dlen;
}

/* ---- a tiny zip builder for hand-made (and broken) archives ---- */

typedef struct zmember {
    const char *name;
    const uint8_t *data;
    size_t len;
    int method; /* 0 stored, 8 deflate */
} zmember;

typedef struct zbuilt {
    uint8_t *buf;
    size_t len;
    size_t local[8], central[8], data[8], csize[8];
} zbuilt;

static size_t raw_deflate(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = in;
    s.avail_in = (uInt)n;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t got = cap - s.avail_out;
    deflateEnd(&s);
    return got;
}

static void build_zip(zbuilt *z, const zmember *m, int n) {
    size_t cap = 1 << 20;
    z->buf = calloc(1, cap);
    assert_non_null(z->buf);
    uint8_t *cd = calloc(1, 1 << 16);
    assert_non_null(cd);
    size_t p = 0, c = 0;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(m[i].name);
        uint32_t crc = (uint32_t)crc32(0, m[i].data, (uInt)m[i].len);
        uint8_t *h = z->buf + p;
        z->local[i] = p;
        put32(h, 0x04034b50);
        put16(h + 4, 20);
        put16(h + 8, (uint32_t)m[i].method);
        put32(h + 14, crc);
        put16(h + 26, (uint32_t)nl);
        memcpy(h + 30, m[i].name, nl);
        size_t d = p + 30 + nl;
        size_t cs = m[i].method == 8 ? raw_deflate(m[i].data, m[i].len, z->buf + d, cap - d - 1024)
                                     : m[i].len;
        if (m[i].method != 8) memcpy(z->buf + d, m[i].data, m[i].len);
        put32(h + 18, (uint32_t)cs);
        put32(h + 22, (uint32_t)m[i].len);
        z->data[i] = d;
        z->csize[i] = cs;
        p = d + cs;
        uint8_t *e = cd + c;
        put32(e, 0x02014b50);
        put16(e + 4, 20);
        put16(e + 6, 20);
        put16(e + 10, (uint32_t)m[i].method);
        put32(e + 16, crc);
        put32(e + 20, (uint32_t)cs);
        put32(e + 24, (uint32_t)m[i].len);
        put16(e + 28, (uint32_t)nl);
        put32(e + 42, (uint32_t)z->local[i]);
        memcpy(e + 46, m[i].name, nl);
        z->central[i] = c; /* relative; fixed below */
        c += 46 + nl;
    }
    size_t cd_off = p;
    memcpy(z->buf + p, cd, c);
    for (int i = 0; i < n; i++) z->central[i] += cd_off;
    p += c;
    uint8_t *e = z->buf + p;
    put32(e, 0x06054b50);
    put16(e + 8, (uint32_t)n);
    put16(e + 10, (uint32_t)n);
    put32(e + 12, (uint32_t)c);
    put32(e + 16, (uint32_t)cd_off);
    z->len = p + 22;
    free(cd);
}

/* Reads array `name` from a built zip; returns the status, message in err. */
static ms_status read_one(const zbuilt *z, const char *name, ms_npy_array *a, ms_error *err) {
    ms_npz *npz;
    ms_status st = ms_npz_open_mem(z->buf, z->len, "hand.npz", &npz, err);
    if (st != MS_OK) return st;
    st = ms_npz_read_array(npz, name, a, err);
    ms_npz_free(npz);
    return st;
}

static void expect_fail(ms_status st, const ms_error *err, const char *needle) {
    assert_int_equal(st, MS_E_INPUT);
    if (!strstr(err->msg, needle)) {
        print_error("message '%s' lacks '%s'\n", err->msg, needle);
        fail();
    }
    assert_null(strchr(err->msg, '\n'));
}

/* ------------------------------------------------------------ numpy fixtures */

static const char *fixture_py =
    "import sys, os, io, zipfile, numpy as np\n"
    "out = sys.argv[1]\n"
    "rng = np.random.default_rng(1234)\n"
    "exp = open(os.path.join(out, 'expect.txt'), 'w')\n"
    "def record(fname, arrays):\n"
    "    exp.write('FILE %s %d\\n' % (fname, len(arrays)))\n"
    "    for name, a in arrays.items():\n"
    "        fo = 1 if (a.flags.f_contiguous and not a.flags.c_contiguous) else 0\n"
    "        exp.write('ARR %s %s %d %d %s\\n' % (name, a.dtype.str, fo, a.ndim, ' '.join(str(d) for d in a.shape)))\n"
    "        if a.dtype.kind in 'iub':\n"
    "            exp.write('VALS %d %s\\n' % (a.size, ' '.join(str(int(v)) for v in a.ravel(order='C'))))\n"
    "def ints(dt, shape):\n"
    "    info = np.iinfo(dt)\n"
    "    v = rng.integers(info.min, info.max, size=int(np.prod(shape)), endpoint=True, dtype=dt.newbyteorder('='))\n"
    "    ext = [info.min, info.max, 0, 1, info.max - 1]\n"
    "    v[:len(ext)] = ext\n"
    "    return v.reshape(shape).astype(dt)\n"
    "def npy_bytes(a, version):\n"
    "    b = io.BytesIO(); np.lib.format.write_array(b, a, version=version, allow_pickle=False); return b.getvalue()\n"
    "A = {}\n"
    "for dt in ['i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8']:\n"
    "    for bo in '<>':\n"
    "        A['%s_%s' % (dt, 'le' if bo == '<' else 'be')] = ints(np.dtype(dt), (3, 4)).astype(np.dtype(bo + dt))\n"
    "A['b1'] = rng.integers(0, 2, size=(2, 5)).astype(bool)\n"
    "A['small_i4'] = rng.integers(0, 64, size=(5, 3, 2)).astype('<i4')\n"
    "A['small_u1'] = rng.integers(0, 200, size=(7,)).astype('u1')\n"
    "A['fort_i4'] = np.asfortranarray(rng.integers(0, 300, size=(3, 4, 5)).astype('<i4'))\n"
    "A['fort_neg_i2'] = np.asfortranarray(rng.integers(-5, 300, size=(4, 6)).astype('>i2'))\n"
    "A['fort_u2_be'] = np.asfortranarray(rng.integers(0, 60000, size=(4, 3)).astype('>u2'))\n"
    "A['fort_i8'] = np.asfortranarray(rng.integers(0, 1000, size=(2, 3, 2, 2)).astype('>i8'))\n"
    "A['fort_b1'] = np.asfortranarray(rng.integers(0, 2, size=(3, 2)).astype(bool))\n"
    "A['scalar'] = np.array(42, dtype='<i8')\n"
    "A['scalar_u2'] = np.array(7, dtype='>u2')\n"
    "A['empty'] = np.zeros((0,), dtype='<i4')\n"
    "A['empty3'] = np.zeros((2, 0, 3), dtype='<u2')\n"
    "A['f4'] = np.arange(6, dtype='<f4').reshape(2, 3)\n"
    "A['f8'] = np.arange(3, dtype='>f8')\n"
    "A['f2'] = np.arange(3, dtype='<f2')\n"
    "np.savez(os.path.join(out, 'plain.npz'), **A); record('plain.npz', A)\n"
    "np.savez_compressed(os.path.join(out, 'comp.npz'), **A); record('comp.npz', A)\n"
    "B = {'v1': ints(np.dtype('<i4'), (4, 5)), 'v2': ints(np.dtype('>u4'), (3, 2)),\n"
    "     'v3': np.asfortranarray(ints(np.dtype('<i2'), (3, 5)))}\n"
    "with zipfile.ZipFile(os.path.join(out, 'versions.npz'), 'w', compression=zipfile.ZIP_DEFLATED) as zf:\n"
    "    zf.writestr('v1.npy', npy_bytes(B['v1'], (1, 0)))\n"
    "    zf.writestr('v2.npy', npy_bytes(B['v2'], (2, 0)))\n"
    "    zf.writestr('v3.npy', npy_bytes(B['v3'], (3, 0)))\n"
    "    zf.comment = b'a zip comment that the reader must skip'\n"
    "record('versions.npz', B)\n"
    "C = {'a': ints(np.dtype('<i4'), (6, 2)), 'b': ints(np.dtype('<u8'), (5,)), 'c': np.array(3, dtype='<i8')}\n"
    "lim = (zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT)\n"
    "zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 1, 1\n"
    "try:\n"
    "    for fname, comp in (('zip64.npz', zipfile.ZIP_DEFLATED), ('zip64s.npz', zipfile.ZIP_STORED)):\n"
    "        with zipfile.ZipFile(os.path.join(out, fname), 'w', compression=comp) as zf:\n"
    "            for k, v in C.items():\n"
    "                with zf.open(k + '.npy', 'w', force_zip64=True) as f:\n"
    "                    np.lib.format.write_array(f, v)\n"
    "        record(fname, C)\n"
    "finally:\n"
    "    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = lim\n"
    "class NoSeek:\n"
    "    def __init__(self, f): self.f = f\n"
    "    def write(self, b): return self.f.write(b)\n"
    "    def flush(self): self.f.flush()\n"
    "D = {'d': ints(np.dtype('<i8'), (4, 3)), 'e': ints(np.dtype('u1'), (9,))}\n"
    "with open(os.path.join(out, 'descr.npz'), 'wb') as raw:\n"
    "    with zipfile.ZipFile(NoSeek(raw), 'w', compression=zipfile.ZIP_DEFLATED) as zf:\n"
    "        zf.writestr('d.npy', npy_bytes(D['d'], (1, 0)))\n"
    "        zf.writestr(zipfile.ZipInfo('e.npy'), npy_bytes(D['e'], (1, 0)), compress_type=zipfile.ZIP_STORED)\n"
    "record('descr.npz', D)\n"
    "for fname, comp in (('bzip2.npz', zipfile.ZIP_BZIP2), ('lzma.npz', zipfile.ZIP_LZMA)):\n"
    "    with zipfile.ZipFile(os.path.join(out, fname), 'w', compression=comp) as zf:\n"
    "        zf.writestr('x.npy', npy_bytes(np.arange(10, dtype='<i4'), (1, 0)))\n"
    "exp.close()\n";

static int make_fixture_dir(char *dir, size_t len) {
    tu_tmp_path("npz-fx", "", dir, len);
    char cmd[2048], script[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (tu_run(cmd, NULL, 0) != 0) return -1;
    snprintf(script, sizeof script, "%s/fixtures.py", dir);
    tu_write_file(script, fixture_py, strlen(fixture_py));
    char out[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' 2>&1", script, dir);
    int rc = tu_run(cmd, out, sizeof out);
    if (rc != 0) print_error("fixture script failed: %s\n", out);
    return rc;
}

/* Checks one array against an expectation line set from Python. */
static void check_array(ms_npz *z, char *arr_line, char *vals_line, int *n_values) {
    char name[128], descr[16];
    int fo, ndim, off = 0;
    assert_int_equal(sscanf(arr_line, "ARR %127s %15s %d %d%n", name, descr, &fo, &ndim, &off), 4);
    uint64_t shape[MS_NPY_MAX_DIMS];
    char *p = arr_line + off;
    for (int d = 0; d < ndim; d++) shape[d] = strtoull(p, &p, 10);
    ms_npy_array a;
    ms_error err;
    assert_true(ms_npz_has(z, name));
    ms_status st = ms_npz_read_array(z, name, &a, &err);
    if (st != MS_OK) print_error("%s: %s\n", name, err.msg);
    assert_int_equal(st, MS_OK);
    assert_string_equal(a.name, name);
    assert_string_equal(a.descr, descr);
    assert_int_equal(a.fortran_order, fo);
    assert_int_equal(a.ndim, ndim);
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        assert_int_equal(a.shape[d], shape[d]);
        count *= shape[d];
    }
    assert_int_equal(a.count, count);
    assert_int_equal(a.nbytes, count * a.dtype.size);
    if (descr[1] == 'f') {
        assert_int_equal(a.dtype.kind, 'f');
        int64_t v;
        uint16_t u[16];
        expect_fail(ms_npy_get_int(&a, 0, &v, &err), &err, "float dtype");
        expect_fail(ms_npy_to_u16(&a, 100, u, &err), &err, "where integers expected");
        assert_non_null(strstr(err.msg, name));
        assert_null(vals_line);
        ms_npy_array_clear(&a);
        return;
    }
    assert_non_null(vals_line);
    p = vals_line + 5;
    assert_int_equal(strtoull(p, &p, 10), count);
    uint16_t *u = malloc(count * 2 + 2);
    assert_non_null(u);
    ms_error uerr;
    st = ms_npy_to_u16(&a, 65536, u, &uerr);
    bool all_u16 = true;
    int64_t first_bad = 0;
    uint64_t first_bad_at = 0, maxv = 0;
    for (uint64_t i = 0; i < count; i++) {
        while (*p == ' ') p++;
        bool neg = *p == '-';
        uint64_t mag = strtoull(neg ? p + 1 : p, &p, 10);
        int64_t got;
        ms_status gs = ms_npy_get_int(&a, i, &got, &err);
        if (!neg && mag > (uint64_t)INT64_MAX) {
            expect_fail(gs, &err, "exceeds int64");
        } else {
            int64_t want = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            assert_int_equal(gs, MS_OK);
            assert_int_equal(got, want);
        }
        bool ok = !neg && mag < 65536;
        if (ok && mag > maxv) maxv = mag;
        if (!ok && all_u16) {
            all_u16 = false;
            first_bad = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            first_bad_at = i;
        }
        if (all_u16) assert_int_equal(u[i], mag); /* filled up to the first bad value at least */
        (*n_values)++;
    }
    int64_t v;
    expect_fail(ms_npy_get_int(&a, count, &v, &err), &err, "out of range");
    if (all_u16) {
        assert_int_equal(st, MS_OK);
        /* the limit is exclusive: max+1 passes, max fails (when there is a value > 0) */
        if (count) assert_int_equal(ms_npy_to_u16(&a, (uint32_t)maxv + 1, u, &err), MS_OK);
        if (count && maxv > 0) {
            expect_fail(ms_npy_to_u16(&a, (uint32_t)maxv, u, &err), &err, "outside [0, ");
            assert_non_null(strstr(err.msg, name));
        }
    } else {
        char want[96];
        expect_fail(st, &uerr, "outside [0, 65536)");
        if (descr[1] == 'u' && descr[2] == '8' && first_bad < 0)
            snprintf(want, sizeof want, "(flat index %" PRIu64 ")", first_bad_at);
        else
            snprintf(want, sizeof want, "value %" PRId64 " at ", first_bad);
        expect_fail(st, &uerr, want);
        snprintf(want, sizeof want, "(flat index %" PRIu64 ")", first_bad_at);
        expect_fail(st, &uerr, want);
        assert_non_null(strstr(uerr.msg, name));
    }
    free(u);
    ms_npy_array_clear(&a);
}

static void test_numpy_fixtures(void **state) {
    (void)state;
    if (!tu_have_numpy()) skip();
    char dir[512], path[1024];
    assert_int_equal(make_fixture_dir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/expect.txt", dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *line = NULL, *next = NULL;
    size_t cap = 0, cap2 = 0;
    ms_npz *z = NULL;
    int n_files = 0, n_arrays = 0, n_values = 0;
    size_t expected_members = 0, seen = 0;
    ssize_t got = getline(&line, &cap, fp);
    while (got > 0) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "FILE ", 5) == 0) {
            if (z) {
                assert_int_equal(seen, expected_members);
                ms_npz_free(z);
            }
            char fname[256];
            assert_int_equal(sscanf(line, "FILE %255s %zu", fname, &expected_members), 2);
            snprintf(path, sizeof path, "%s/%s", dir, fname);
            ms_error err;
            ms_status st = ms_npz_open(path, &z, &err);
            if (st != MS_OK) print_error("%s\n", err.msg);
            assert_int_equal(st, MS_OK);
            assert_int_equal(ms_npz_member_count(z), expected_members);
            struct stat sb;
            assert_int_equal(stat(path, &sb), 0);
            assert_int_equal(ms_npz_size(z), (size_t)sb.st_size);
            assert_null(ms_npz_member_name(z, expected_members));
            seen = 0;
            n_files++;
            got = getline(&line, &cap, fp);
            continue;
        }
        assert_int_equal(strncmp(line, "ARR ", 4), 0);
        ssize_t g2 = getline(&next, &cap2, fp);
        bool has_vals = g2 > 0 && strncmp(next, "VALS ", 5) == 0;
        if (has_vals) next[strcspn(next, "\n")] = '\0';
        check_array(z, line, has_vals ? next : NULL, &n_values);
        seen++;
        n_arrays++;
        if (has_vals) {
            got = getline(&line, &cap, fp);
        } else if (g2 > 0) { /* the line read ahead is the next record */
            char *t = line;
            size_t tc = cap;
            line = next;
            cap = cap2;
            next = t;
            cap2 = tc;
            got = g2;
        } else {
            got = g2;
        }
    }
    assert_non_null(z);
    assert_int_equal(seen, expected_members);
    ms_npz_free(z);
    free(line);
    free(next);
    fclose(fp);
    assert_int_equal(n_files, 6);
    print_message("checked %d files, %d arrays, %d values against numpy\n", n_files, n_arrays,
                  n_values);

    /* Other compression methods are refused by name. */
    const char *fx[2][2] = {{"bzip2.npz", "method 12 (bzip2)"}, {"lzma.npz", "method 14 (lzma)"}};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, fx[i][0]);
        ms_error err;
        assert_int_equal(ms_npz_open(path, &z, &err), MS_OK);
        ms_npy_array a;
        expect_fail(ms_npz_read_array(z, "x", &a, &err), &err, fx[i][1]);
        expect_fail(MS_E_INPUT, &err, "x.npy: unsupported compression");
        ms_npz_free(z);
    }

    /* Every truncation of numpy's files fails cleanly; every byte flip of the
     * small ones is survived. */
    const char *cut_files[] = {"descr.npz", "zip64.npz", "versions.npz", "comp.npz"};
    for (size_t f = 0; f < sizeof cut_files / sizeof *cut_files; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, cut_files[f]);
        size_t len;
        uint8_t *buf = slurp(path, &len);
        ms_error err;
        assert_int_equal(open_read_all(buf, len, &err), MS_OK);
        for (size_t cut = 0; cut < len; cut++) {
            ms_status st = open_read_all(buf, cut, &err);
            if (st == MS_OK) print_error("%s cut at %zu of %zu was accepted\n", cut_files[f], cut, len);
            assert_int_not_equal(st, MS_OK);
        }
        uint8_t *copy = malloc(len);
        assert_non_null(copy);
        for (size_t i = 0; i < len && len < 2000; i++) {
            memcpy(copy, buf, len);
            copy[i] ^= (uint8_t)(1u << (i % 8));
            (void)open_read_all(copy, len, &err);
        }
        free(copy);
        ms_free(buf);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    tu_run(path, NULL, 0);
}

/* ------------------------------------------------------------ writer */

typedef struct warr {
    const char *name, *descr;
    int ndim;
    uint64_t shape[4];
} warr;

static const warr writer_arrays[] = {
    {"routed_experts", "<i4", 3, {37, 5, 3}},
    {"request_id", "<i8", 0, {0}},
    {"prompt_token_ids", "<i4", 1, {5}},
    {"output_token_ids", "<i4", 1, {0}},
    {"big_u2", ">u2", 2, {3, 4}},
    {"flags", "|b1", 1, {6}},
    {"small", "<u1", 1, {3}}, /* normalised to |u1 as numpy writes it */
    {"wide", "<f8", 2, {2, 2}},
    {"empty3", "<i2", 3, {2, 0, 7}},
    {"long", "<i4", 1, {300000}}, /* over the 256 KiB inflate chunk */
};
#define N_WARR (sizeof writer_arrays / sizeof *writer_arrays)

static uint64_t warr_count(const warr *w) {
    uint64_t c = 1;
    for (int d = 0; d < w->ndim; d++) c *= w->shape[d];
    return c;
}

/* Deterministic contents for array k: byte j = (j * 31 + k * 7 + j / 97) & 0xff,
 * except bools (0/1). */
static uint8_t *warr_data(size_t k, size_t *nbytes) {
    const warr *w = &writer_arrays[k];
    ms_npy_dtype dt;
    assert_int_equal(ms_npy_parse_descr(w->descr, &dt, NULL), MS_OK);
    size_t n = warr_count(w) * dt.size;
    uint8_t *d = malloc(n + 1);
    assert_non_null(d);
    for (size_t j = 0; j < n; j++)
        d[j] = dt.kind == 'b' ? (uint8_t)(j % 3 == 0) : (uint8_t)((j * 31 + k * 7 + j / 97) & 0xff);
    *nbytes = n;
    return d;
}

static void write_npz(const char *path, bool compress, bool zip64) {
    ms_npz_writer *w;
    ms_error err;
    assert_int_equal(ms_npz_writer_open(path, compress, &w, &err), MS_OK);
    if (zip64) ms_npz_writer_force_zip64(w, true);
    for (size_t k = 0; k < N_WARR; k++) {
        size_t n;
        uint8_t *d = warr_data(k, &n);
        const warr *a = &writer_arrays[k];
        ms_status st = ms_npz_writer_add(w, a->name, a->descr, a->ndim, a->shape, d, &err);
        if (st != MS_OK) print_error("%s\n", err.msg);
        assert_int_equal(st, MS_OK);
        free(d);
    }
    assert_int_equal(ms_npz_writer_close(w, &err), MS_OK);
}

static void check_written(const char *path) {
    ms_npz *z;
    ms_error err;
    assert_int_equal(ms_npz_open(path, &z, &err), MS_OK);
    assert_int_equal(ms_npz_member_count(z), N_WARR);
    for (size_t k = 0; k < N_WARR; k++) {
        const warr *w = &writer_arrays[k];
        char member[160];
        snprintf(member, sizeof member, "%s.npy", w->name);
        assert_string_equal(ms_npz_member_name(z, k), member);
        ms_npy_array a;
        ms_status st = ms_npz_read_array(z, w->name, &a, &err);
        if (st != MS_OK) print_error("%s\n", err.msg);
        assert_int_equal(st, MS_OK);
        assert_int_equal(a.ndim, w->ndim);
        for (int d = 0; d < w->ndim; d++) assert_int_equal(a.shape[d], w->shape[d]);
        assert_false(a.fortran_order);
        size_t n;
        uint8_t *want = warr_data(k, &n);
        assert_int_equal(a.nbytes, n);
        if (n) assert_memory_equal(a.data, want, n);
        if (a.dtype.size == 1) assert_int_equal(a.descr[0], '|');
        free(want);
        ms_npy_array_clear(&a);
    }
    ms_npz_free(z);
}

static const char *verify_py =
    "import sys, io, zipfile, zlib, numpy as np\n"
    "p = sys.argv[1]\n"
    "zf = zipfile.ZipFile(p)\n"
    "print('testzip', zf.testzip())\n"
    "d = np.load(p)\n"
    "for name in d.files:\n"
    "    a = d[name]\n"
    "    b = io.BytesIO(); np.save(b, a)\n"
    "    same = zf.read(name + '.npy') == b.getvalue()\n"
    "    print(name, a.dtype.str, 'x'.join(map(str, a.shape)) or '-',\n"
    "          '%08x' % zlib.crc32(np.ascontiguousarray(a).tobytes()), 'same' if same else 'DIFF')\n";

static void numpy_check_written(const char *path) {
    char script[600], cmd[2048], out[8192];
    tu_tmp_path("npz-verify", ".py", script, sizeof script);
    tu_write_file(script, verify_py, strlen(verify_py));
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' 2>&1", script, path);
    int rc = tu_run(cmd, out, sizeof out);
    if (rc != 0) print_error("numpy failed: %s\n", out);
    assert_int_equal(rc, 0);
    remove(script);
    char want[8192];
    size_t n = (size_t)snprintf(want, sizeof want, "testzip None\n");
    for (size_t k = 0; k < N_WARR; k++) {
        const warr *w = &writer_arrays[k];
        ms_npy_dtype dt;
        assert_int_equal(ms_npy_parse_descr(w->descr, &dt, NULL), MS_OK);
        char descr[4], shape[64] = "-";
        ms_npy_format_descr(&dt, descr);
        size_t sl = 0;
        for (int d = 0; d < w->ndim; d++)
            sl += (size_t)snprintf(shape + sl, sizeof shape - sl, d ? "x%" PRIu64 : "%" PRIu64, w->shape[d]);
        size_t nb;
        uint8_t *data = warr_data(k, &nb);
        uint32_t crc = (uint32_t)crc32(0, data, (uInt)nb);
        free(data);
        n += (size_t)snprintf(want + n, sizeof want - n, "%s %s %s %08" PRIx32 " same\n", w->name, descr,
                              shape, crc);
    }
    if (strcmp(out, want) != 0) print_error("numpy says:\n%s\nexpected:\n%s\n", out, want);
    assert_string_equal(out, want);
}

static void test_writer_roundtrip(void **state) {
    (void)state;
    bool np = tu_have_numpy();
    for (int mode = 0; mode < 4; mode++) {
        bool compress = mode & 1, zip64 = mode & 2;
        char path[512], path2[512];
        tu_tmp_path("npz-w", ".npz", path, sizeof path);
        tu_tmp_path("npz-w", ".npz", path2, sizeof path2);
        write_npz(path, compress, zip64);
        check_written(path);
        if (np) numpy_check_written(path);
        /* same input, same bytes */
        write_npz(path2, compress, zip64);
        size_t l1, l2;
        uint8_t *b1 = slurp(path, &l1), *b2 = slurp(path2, &l2);
        assert_int_equal(l1, l2);
        assert_memory_equal(b1, b2, l1);
        if (mode == 1) { /* cut the deflated file everywhere: every cut fails cleanly */
            ms_error err;
            for (size_t cut = 0; cut < l1; cut += (cut < 2048 || l1 - cut < 4096) ? 1 : 997)
                assert_int_not_equal(open_read_all(b1, cut, &err), MS_OK);
        }
        ms_free(b1);
        ms_free(b2);
        remove(path);
        remove(path2);
    }
    if (!np) print_message("numpy missing: writer output not checked with numpy\n");
}

static void test_writer_errors(void **state) {
    (void)state;
    char path[512];
    tu_tmp_path("npz-werr", ".npz", path, sizeof path);
    ms_npz_writer *w;
    ms_error err;
    struct stat st;
    uint64_t shape[9] = {2, 2, 1, 1, 1, 1, 1, 1, 1};
    int32_t d[4] = {1, 2, 3, 4};
    assert_int_equal(ms_npz_writer_open(path, true, &w, &err), MS_OK);
    expect_fail(ms_npz_writer_add(w, "a", "<c16", 2, shape, d, &err), &err, "unsupported dtype");
    expect_fail(ms_npz_writer_add(w, "a", "|i4", 2, shape, d, &err), &err, "byte order");
    expect_fail(ms_npz_writer_add(w, "a", "<i4", 9, shape, d, &err), &err, "ndim");
    expect_fail(ms_npz_writer_add(w, "a", "<i4", -1, shape, d, &err), &err, "ndim");
    expect_fail(ms_npz_writer_add(w, "", "<i4", 1, shape, d, &err), &err, "name");
    uint64_t huge[3] = {UINT64_C(1) << 40, UINT64_C(1) << 40, 2};
    expect_fail(ms_npz_writer_add(w, "a", "<i4", 3, huge, d, &err), &err, "overflow");
    assert_int_equal(ms_npz_writer_add(w, "a", "<i4", 2, shape, d, &err), MS_OK);
    expect_fail(ms_npz_writer_add(w, "a", "<i4", 2, shape, d, &err), &err, "twice");
    ms_npz_writer_abort(w);
    assert_int_not_equal(stat(path, &st), 0); /* nothing left behind */
    /* a writer that had bad adds still closes into a valid file */
    assert_int_equal(ms_npz_writer_open(path, false, &w, &err), MS_OK);
    expect_fail(ms_npz_writer_add(w, "a", "<x4", 2, shape, d, &err), &err, "dtype");
    assert_int_equal(ms_npz_writer_add(w, "b", "=i4", 2, shape, d, &err), MS_OK);
    assert_int_equal(ms_npz_writer_close(w, &err), MS_OK);
    ms_npz *z;
    assert_int_equal(ms_npz_open(path, &z, &err), MS_OK);
    ms_npy_array a;
    assert_int_equal(ms_npz_read_array(z, "b", &a, &err), MS_OK);
    assert_string_equal(a.descr, "<i4");
    int64_t v;
    assert_int_equal(ms_npy_get_int(&a, 3, &v, &err), MS_OK);
    assert_int_equal(v, 4);
    ms_npy_array_clear(&a);
    expect_fail(ms_npz_read_array(z, "a", &a, &err), &err, "no array 'a'");
    ms_npz_free(z);
    remove(path);
    /* a directory that does not exist: MS_E_IO */
    assert_int_equal(ms_npz_writer_open("/nonexistent-dir/x.npz", false, &w, &err), MS_E_IO);
    assert_null(w);
}

/* ------------------------------------------------------------ npy by hand */

static void test_npy_header_parsing(void **state) {
    (void)state;
    uint8_t buf[1024];
    int32_t d12[12];
    for (int i = 0; i < 12; i++) d12[i] = i * 10 - 3;
    ms_npy_array a;
    ms_error err;
    /* any key order, double quotes, odd spacing, trailing commas, Python 2 longs */
    const char *good[] = {
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }",
        "{'shape':(3,4),'fortran_order':False,'descr':'<i4'}",
        "{ \"fortran_order\" : False , \"descr\" : \"<i4\" , \"shape\" : ( 3 , 4 , ) , }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3L, 4L)}",
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t n = make_npy(buf, good[i], d12, sizeof d12);
        ms_status st = ms_npy_parse(buf, n, &a, &err);
        if (st != MS_OK) print_error("%s: %s\n", good[i], err.msg);
        assert_int_equal(st, MS_OK);
        assert_int_equal(a.ndim, 2);
        assert_int_equal(a.shape[0], 3);
        assert_int_equal(a.shape[1], 4);
        assert_int_equal(a.count, 12);
        assert_string_equal(a.name, "");
        int64_t v;
        assert_int_equal(ms_npy_get_int(&a, 11, &v, &err), MS_OK);
        assert_int_equal(v, 107);
        ms_npy_array_clear(&a);
        ms_npy_array_clear(&a); /* twice is fine */
    }
    struct {
        const char *dict;
        size_t dlen;
        const char *msg;
    } bad[] = {
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (4, 4), }", 48, "need 64"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 4), }", 48, "need 32"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }", 48,
         "overflow"},
        {"{'descr': '<i1', 'fortran_order': False, 'shape': (18446744073709551615, 2), }", 48,
         "overflow"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (18446744073709551616,), }", 48,
         "too large"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (-3, 4), }", 48, "negative"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,12), }", 48,
         "more than 8"},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (3,), }", 48, "unsupported dtype '<c16'"},
        {"{'descr': '|i4', 'fortran_order': False, 'shape': (12,), }", 48, "byte order"},
        {"{'descr': '<U5', 'fortran_order': False, 'shape': (3,), }", 48, "unsupported dtype"},
        {"{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (12,), }", 48, "structured"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (12,), 'x': 1}", 48, "unexpected key 'x'"},
        {"{'descr': '<i4', 'shape': (12,), }", 48, "missing key 'fortran_order'"},
        {"{'descr': '<i4', 'fortran_order': 0, 'shape': (12,), }", 48, "fortran_order"},
        {"{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (12,)}", 48, "duplicate"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': [12], }", 48, "not a tuple"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (12,), } junk", 48, "junk"},
        {"{'descr': '<i4', 'fortran_order': False, 'shape': (12,), ", 48, "expected a string"},
        {"{'descr' '<i4', 'fortran_order': False, 'shape': (12,), }", 48, "expected ':'"},
        {"{'descr': '<i4, 'fortran_order': False, 'shape': (12,), }", 48, "unsupported dtype"},
        {"['descr', '<i4']", 48, "not a dict"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = make_npy(buf, bad[i].dict, d12, bad[i].dlen);
        expect_fail(ms_npy_parse(buf, n, &a, &err), &err, bad[i].msg);
        assert_null(a.data);
    }
    /* prefix problems */
    size_t n = make_npy(buf, good[0], d12, sizeof d12);
    expect_fail(ms_npy_parse(buf, 0, &a, &err), &err, "truncated");
    expect_fail(ms_npy_parse(buf, 9, &a, &err), &err, "truncated");
    expect_fail(ms_npy_parse(buf, 70, &a, &err), &err, "header truncated");
    for (size_t cut = 0; cut < n; cut++) assert_int_equal(ms_npy_parse(buf, cut, &a, &err), MS_E_INPUT);
    buf[1] = 'n';
    expect_fail(ms_npy_parse(buf, n, &a, &err), &err, "bad magic");
    buf[1] = 'N';
    buf[6] = 4;
    expect_fail(ms_npy_parse(buf, n, &a, &err), &err, "version 4.0");
    buf[6] = 2; /* v2 reads 4 length bytes: now the length is huge */
    expect_fail(ms_npy_parse(buf, n, &a, &err), &err, "too long");
    buf[6] = 1;
    assert_int_equal(ms_npy_parse(buf, n, &a, &err), MS_OK);
    ms_npy_array_clear(&a);
}

static void test_npy_values(void **state) {
    (void)state;
    uint8_t buf[1024];
    ms_npy_array a;
    ms_error err;
    int64_t v;
    uint16_t u[64];
    /* Fortran order (2, 3): storage is column-major, values presented in C order. */
    int16_t f[6] = {0, 3, 1, 4, 2, 5}; /* logical [[0,1,2],[3,4,5]] */
    size_t n = make_npy(buf, "{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }", f, sizeof f);
    assert_int_equal(ms_npy_parse(buf, n, &a, &err), MS_OK);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ms_npy_get_int(&a, (uint64_t)i, &v, &err), MS_OK);
        assert_int_equal(v, i);
    }
    assert_int_equal(ms_npy_to_u16(&a, 6, u, &err), MS_OK);
    for (int i = 0; i < 6; i++) assert_int_equal(u[i], i);
    expect_fail(ms_npy_to_u16(&a, 5, u, &err), &err, "value 5 at [1, 2] (flat index 5) outside [0, 5)");
    ms_npy_array_clear(&a);
    /* big-endian u8 above INT64_MAX; to_u16 names the value and position */
    uint8_t be[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 9};
    n = make_npy(buf, "{'descr': '>u8', 'fortran_order': False, 'shape': (2,), }", be, sizeof be);
    assert_int_equal(ms_npy_parse(buf, n, &a, &err), MS_OK);
    expect_fail(ms_npy_get_int(&a, 0, &v, &err), &err, "18446744073709551614 at index 0 exceeds int64");
    assert_int_equal(ms_npy_get_int(&a, 1, &v, &err), MS_OK);
    assert_int_equal(v, 9);
    expect_fail(ms_npy_to_u16(&a, 65536, u, &err), &err, "value 18446744073709551614 at [0]");
    ms_npy_array_clear(&a);
    /* '<i4' C order: negative values, limits above 65536 act as 65536 */
    int32_t s[5] = {0, 65535, 7, -1, 65536};
    n = make_npy(buf, "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }", s, sizeof s);
    assert_int_equal(ms_npy_parse(buf, n, &a, &err), MS_OK);
    snprintf(a.name, sizeof a.name, "routed_experts");
    expect_fail(ms_npy_to_u16(&a, 100000, u, &err), &err,
                "routed_experts: value -1 at [3] (flat index 3) outside [0, 65536)");
    a.shape[0] = a.count = 3; /* only the valid prefix */
    assert_int_equal(ms_npy_to_u16(&a, 100000, u, &err), MS_OK);
    assert_int_equal(u[1], 65535);
    expect_fail(ms_npy_to_u16(&a, 0, u, &err), &err, "value 0 at [0]");
    ms_npy_array_clear(&a);
    /* scalar and empty arrays */
    int64_t one = -7;
    n = make_npy(buf, "{'descr': '<i8', 'fortran_order': False, 'shape': (), }", &one, 8);
    assert_int_equal(ms_npy_parse(buf, n, &a, &err), MS_OK);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(a.count, 1);
    assert_int_equal(ms_npy_get_int(&a, 0, &v, &err), MS_OK);
    assert_int_equal(v, -7);
    expect_fail(ms_npy_to_u16(&a, 10, u, &err), &err, "value -7 at [] (flat index 0)");
    ms_npy_array_clear(&a);
    n = make_npy(buf, "{'descr': '<u2', 'fortran_order': True, 'shape': (0, 5), }", NULL, 0);
    assert_int_equal(ms_npy_parse(buf, n, &a, &err), MS_OK);
    assert_int_equal(a.count, 0);
    assert_non_null(a.data);
    assert_int_equal(ms_npy_to_u16(&a, 1, u, &err), MS_OK);
    expect_fail(ms_npy_get_int(&a, 0, &v, &err), &err, "out of range");
    ms_npy_array_clear(&a);
    /* A big '<i4' array through the fast path, error in the last block. */
    size_t big = 100003;
    uint8_t *bb = malloc(big * 4 + 256);
    int32_t *vals = malloc(big * 4);
    uint16_t *ub = malloc(big * 2);
    assert_true(bb && vals && ub);
    for (size_t i = 0; i < big; i++) vals[i] = (int32_t)(i % 251);
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '<i4', 'fortran_order': False, 'shape': (%zu,), }", big);
    n = make_npy(bb, dict, vals, big * 4);
    assert_int_equal(ms_npy_parse(bb, n, &a, &err), MS_OK);
    assert_int_equal(ms_npy_to_u16(&a, 251, ub, &err), MS_OK);
    for (size_t i = 0; i < big; i++) assert_int_equal(ub[i], i % 251);
    ((int32_t *)a.data)[big - 2] = 251;
    expect_fail(ms_npy_to_u16(&a, 251, ub, &err), &err, "value 251 at [100001]");
    ms_npy_array_clear(&a);
    free(bb);
    free(vals);
    free(ub);
}

/* ------------------------------------------------------------ npz by hand */

static void test_npz_bad_inputs(void **state) {
    (void)state;
    ms_npz *z;
    ms_error err;
    ms_npy_array a;
    expect_fail(ms_npz_open_mem((const uint8_t *)"", 0, "e.npz", &z, &err), &err, "e.npz: empty");
    assert_null(z);
    const char *text = "this is plainly not a zip archive, just some text of some length.....";
    expect_fail(ms_npz_open_mem((const uint8_t *)text, strlen(text), "t.npz", &z, &err), &err,
                "t.npz: not a zip archive");
    expect_fail(ms_npz_open_mem((const uint8_t *)"PK", 2, NULL, &z, &err), &err, "too short");
    assert_int_equal(ms_npz_open("/nonexistent/x.npz", &z, &err), MS_E_IO);

    int32_t d12[12];
    for (int i = 0; i < 12; i++) d12[i] = i;
    uint8_t npy[512], lie[512], big[4096];
    size_t nn = make_npy(npy, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), }", d12, 48);
    size_t nl = make_npy(lie, "{'descr': '<i4', 'fortran_order': False, 'shape': (30, 4), }", d12, 48);
    zmember m[3] = {{"a.npy", npy, nn, 0}, {"b.npy", npy, nn, 8}, {"lie.npy", lie, nl, 8}};
    zbuilt zb;
    build_zip(&zb, m, 3);
    assert_int_equal(read_one(&zb, "a", &a, &err), MS_OK);
    ms_npy_array_clear(&a);
    assert_int_equal(read_one(&zb, "b.npy", &a, &err), MS_OK); /* exact member names work too */
    assert_string_equal(a.name, "b");
    ms_npy_array_clear(&a);
    expect_fail(read_one(&zb, "lie", &a, &err), &err, "lie.npy: npy data is 48 bytes but dtype <i4");
    expect_fail(read_one(&zb, "nope", &a, &err), &err, "no array 'nope'");

    /* a data byte flipped in a stored member: CRC mismatch */
    zb.buf[zb.data[0] + 100] ^= 1;
    expect_fail(read_one(&zb, "a", &a, &err), &err, "a.npy: CRC mismatch (stored 0x");
    zb.buf[zb.data[0] + 100] ^= 1;
    /* the CRC flipped in both headers of a deflated member */
    zb.buf[zb.local[1] + 14] ^= 0x10;
    zb.buf[zb.central[1] + 16] ^= 0x10;
    expect_fail(read_one(&zb, "b", &a, &err), &err, "b.npy: CRC mismatch");
    /* ... and in one header only: the headers disagree */
    zb.buf[zb.local[1] + 14] ^= 0x10;
    expect_fail(read_one(&zb, "b", &a, &err), &err, "disagrees with the central directory");
    zb.buf[zb.central[1] + 16] ^= 0x10;
    assert_int_equal(read_one(&zb, "b", &a, &err), MS_OK);
    ms_npy_array_clear(&a);
    /* method 12 (bzip2) and encryption are refused by name */
    put16(zb.buf + zb.local[1] + 8, 12);
    put16(zb.buf + zb.central[1] + 10, 12);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "b.npy: unsupported compression method 12 (bzip2)");
    put16(zb.buf + zb.central[1] + 10, 8);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "compression method 12 in the local header");
    put16(zb.buf + zb.local[1] + 8, 8);
    zb.buf[zb.central[1] + 8] |= 1;
    expect_fail(read_one(&zb, "b", &a, &err), &err, "encrypted");
    zb.buf[zb.central[1] + 8] &= (uint8_t)~1u;
    zb.buf[zb.local[1] + 6] |= 1;
    expect_fail(read_one(&zb, "b", &a, &err), &err, "encrypted");
    zb.buf[zb.local[1] + 6] &= (uint8_t)~1u;
    /* a data descriptor flag: local sizes may then be zero */
    zb.buf[zb.local[1] + 6] |= 8;
    put32(zb.buf + zb.local[1] + 14, 0);
    put32(zb.buf + zb.local[1] + 18, 0);
    put32(zb.buf + zb.local[1] + 22, 0);
    assert_int_equal(read_one(&zb, "b", &a, &err), MS_OK);
    ms_npy_array_clear(&a);
    /* declared sizes that lie: larger than deflate can reach, larger and smaller than the data */
    uint32_t csz = (uint32_t)zb.csize[1], usz = (uint32_t)nn;
    put32(zb.buf + zb.central[1] + 24, 2000000000u);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "impossible");
    put32(zb.buf + zb.central[1] + 24, usz + 4);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "npy data is 52 bytes");
    put32(zb.buf + zb.central[1] + 24, usz - 4);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "npy data is 44 bytes");
    put32(zb.buf + zb.central[1] + 24, usz);
    put32(zb.buf + zb.central[1] + 20, csz - 3);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "truncated");
    put32(zb.buf + zb.central[1] + 20, csz + 2);
    expect_fail(read_one(&zb, "b", &a, &err), &err, "before the compressed size");
    put32(zb.buf + zb.central[1] + 20, csz);
    /* stored member whose sizes differ */
    put32(zb.buf + zb.central[0] + 20, (uint32_t)nn - 1);
    put32(zb.buf + zb.local[0] + 18, (uint32_t)nn - 1);
    expect_fail(read_one(&zb, "a", &a, &err), &err, "stored member with compressed size");
    put32(zb.buf + zb.central[0] + 20, (uint32_t)nn);
    put32(zb.buf + zb.local[0] + 18, (uint32_t)nn);
    /* local header offset outside the file, bad signature, name mismatch */
    put32(zb.buf + zb.central[0] + 42, 0x7fffffff);
    expect_fail(read_one(&zb, "a", &a, &err), &err, "outside the file");
    put32(zb.buf + zb.central[0] + 42, 3);
    expect_fail(read_one(&zb, "a", &a, &err), &err, "bad local header signature");
    put32(zb.buf + zb.central[0] + 42, (uint32_t)zb.local[1]);
    expect_fail(read_one(&zb, "a", &a, &err), &err, "local header names 'b.npy'");
    put32(zb.buf + zb.central[0] + 42, (uint32_t)zb.local[0]);
    assert_int_equal(read_one(&zb, "a", &a, &err), MS_OK);
    ms_npy_array_clear(&a);
    /* central directory / end record problems */
    size_t eocd = zb.len - 22;
    put16(zb.buf + eocd + 10, 3000);
    put16(zb.buf + eocd + 8, 3000);
    expect_fail(ms_npz_open_mem(zb.buf, zb.len, "h.npz", &z, &err), &err, "claims 3000 entries");
    put16(zb.buf + eocd + 8, 3);
    expect_fail(ms_npz_open_mem(zb.buf, zb.len, "h.npz", &z, &err), &err, "multi-disk");
    put16(zb.buf + eocd + 10, 3);
    put32(zb.buf + eocd + 16, get32(zb.buf + eocd + 16) + 1);
    expect_fail(ms_npz_open_mem(zb.buf, zb.len, "h.npz", &z, &err), &err, "outside the file");
    put32(zb.buf + eocd + 16, get32(zb.buf + eocd + 16) - 1);
    zb.buf[zb.central[2]] = 'Q';
    expect_fail(ms_npz_open_mem(zb.buf, zb.len, "h.npz", &z, &err), &err, "entry 2 is corrupt");
    zb.buf[zb.central[2]] = 'P';
    /* a corrupt extra field: the last 4 name bytes become an extra field of size 0x7fff */
    put16(zb.buf + zb.central[2] + 30, 4);
    put16(zb.buf + zb.central[2] + 28, 3);
    put16(zb.buf + zb.central[2] + 46 + 3 + 2, 0x7fff);
    expect_fail(ms_npz_open_mem(zb.buf, zb.len, "h.npz", &z, &err), &err, "corrupt extra field");
    free(zb.buf);

    /* a trailing comment after the end record is skipped; garbage before it too */
    build_zip(&zb, m, 2);
    memcpy(big, zb.buf, zb.len);
    put16(big + zb.len - 2, 11);
    memcpy(big + zb.len, "hello world", 11);
    assert_int_equal(ms_npz_open_mem(big, zb.len + 11, NULL, &z, &err), MS_OK);
    assert_int_equal(ms_npz_member_count(z), 2);
    assert_int_equal(ms_npz_size(z), zb.len + 11);
    assert_int_equal(read_all(z, &err), MS_OK);
    ms_npz_free(z);
    /* a comment length that runs past the file: not an end record */
    expect_fail(ms_npz_open_mem(big, zb.len + 10, NULL, &z, &err), &err, "no end of central directory");
    free(zb.buf);

    /* decompresses to more than declared: a member compressed from 4 extra bytes */
    uint8_t more[600];
    memcpy(more, npy, nn);
    memset(more + nn, 0, 4);
    zmember mm = {"m.npy", more, nn + 4, 8};
    build_zip(&zb, &mm, 1);
    put32(zb.buf + zb.local[0] + 22, (uint32_t)nn);
    put32(zb.buf + zb.central[0] + 24, (uint32_t)nn);
    expect_fail(read_one(&zb, "m", &a, &err), &err, "more than the declared");
    /* and fewer */
    put32(zb.buf + zb.local[0] + 22, (uint32_t)nn + 8);
    put32(zb.buf + zb.central[0] + 24, (uint32_t)nn + 8);
    expect_fail(read_one(&zb, "m", &a, &err), &err, "npy data is 56 bytes");
    free(zb.buf);
    /* a bomb: 4 MB of zeros declared honestly is fine, declared 1000x larger is refused */
    size_t zn = 4u << 20;
    uint8_t *zeros = calloc(1, zn + 128);
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (%zu,), }", zn);
    size_t zl = make_npy(zeros, dict, NULL, 0) + zn;
    zmember zm = {"z.npy", zeros, zl, 8};
    build_zip(&zb, &zm, 1);
    assert_int_equal(read_one(&zb, "z", &a, &err), MS_OK);
    assert_int_equal(a.count, zn);
    ms_npy_array_clear(&a);
    put32(zb.buf + zb.local[0] + 22, 0xfffffff0u);
    put32(zb.buf + zb.central[0] + 24, 0xfffffff0u);
    expect_fail(read_one(&zb, "z", &a, &err), &err, "decompression bomb");
    free(zb.buf);
    free(zeros);

    /* a float member reads, and is refused as integers */
    double fd[3] = {1.5, 2, 3};
    nn = make_npy(npy, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", fd, sizeof fd);
    zmember fm = {"f.npy", npy, nn, 0};
    build_zip(&zb, &fm, 1);
    assert_int_equal(read_one(&zb, "f", &a, &err), MS_OK);
    uint16_t u[3];
    expect_fail(ms_npy_to_u16(&a, 10, u, &err), &err, "f: float dtype '<f8' where integers expected");
    ms_npy_array_clear(&a);
    free(zb.buf);

    /* npy header lengths of 0 and 1 (found by the fuzzer: the prefix must not
     * swallow data bytes), and members shorter than an npy prefix */
    for (int hl = 0; hl < 2; hl++) {
        uint8_t tiny[32] = "\x93NUMPY\x01\x00";
        tiny[8] = (uint8_t)hl;
        memset(tiny + 10, '{', 12);
        for (int method = 0; method <= 8; method += 8) {
            zmember tm = {"t.npy", tiny, 22, method};
            build_zip(&zb, &tm, 1);
            expect_fail(read_one(&zb, "t", &a, &err), &err, hl ? "expected a string" : "not a dict");
            free(zb.buf);
            tm.len = 9;
            build_zip(&zb, &tm, 1);
            expect_fail(read_one(&zb, "t", &a, &err), &err, "t.npy: npy image truncated");
            free(zb.buf);
        }
    }

    /* an empty archive (just an end record) opens with no members */
    uint8_t empty[22] = {0x50, 0x4b, 5, 6};
    assert_int_equal(ms_npz_open_mem(empty, 22, NULL, &z, &err), MS_OK);
    assert_int_equal(ms_npz_member_count(z), 0);
    assert_false(ms_npz_has(z, "x"));
    ms_npz_free(z);
}

/* Truncate and flip writer output (no numpy needed). */
static void test_npz_cut_and_flip(void **state) {
    (void)state;
    for (int compress = 0; compress < 2; compress++) {
        char path[512];
        tu_tmp_path("npz-cut", ".npz", path, sizeof path);
        ms_npz_writer *w;
        ms_error err;
        assert_int_equal(ms_npz_writer_open(path, compress, &w, &err), MS_OK);
        int32_t re[4 * 3 * 2];
        for (int i = 0; i < 24; i++) re[i] = i % 7;
        uint64_t s3[3] = {4, 3, 2}, s1[1] = {4};
        int64_t id = 17;
        assert_int_equal(ms_npz_writer_add(w, "request_id", "<i8", 0, NULL, &id, &err), MS_OK);
        assert_int_equal(ms_npz_writer_add(w, "prompt_token_ids", "<i4", 1, s1, re, &err), MS_OK);
        assert_int_equal(ms_npz_writer_add(w, "routed_experts", "<i4", 3, s3, re, &err), MS_OK);
        assert_int_equal(ms_npz_writer_close(w, &err), MS_OK);
        size_t len;
        uint8_t *buf = slurp(path, &len);
        remove(path);
        assert_int_equal(open_read_all(buf, len, &err), MS_OK);
        for (size_t cut = 0; cut < len; cut++) {
            ms_status st = open_read_all(buf, cut, &err);
            if (st == MS_OK) print_error("cut at %zu of %zu accepted\n", cut, len);
            assert_int_not_equal(st, MS_OK);
            assert_true(strlen(err.msg) > 0);
        }
        uint8_t *copy = malloc(len);
        assert_non_null(copy);
        int failures = 0;
        for (size_t i = 0; i < len; i++) {
            for (int bit = 0; bit < 8; bit += 3) {
                memcpy(copy, buf, len);
                copy[i] ^= (uint8_t)(1u << bit);
                failures += open_read_all(copy, len, &err) != MS_OK;
            }
        }
        assert_true(failures > 0);
        free(copy);
        ms_free(buf);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_header_parsing),
        cmocka_unit_test(test_npy_values),
        cmocka_unit_test(test_npz_bad_inputs),
        cmocka_unit_test(test_npz_cut_and_flip),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_numpy_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
