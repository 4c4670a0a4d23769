/* test-placement.c - the placement object (cluster check, index, check,
 * clone, max device load), its files (moesim JSON, SGLang, the peer's
 * placement.json incl. the reference file), the dispatcher (shared expert
 * reservation, effective loads, bounds, errors) and the basic algorithms on
 * hand-computed cases, brute force and random properties. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "moesim/place.h"

/* A placement from a literal phy2log (n_layers rows of n_phys ids). */
static ms_placement *make(uint32_t layers, ms_cluster c, uint32_t routed, bool shared, const int32_t *ids) {
    ms_placement *p;
    ms_error err = {0};
    assert_int_equal(ms_placement_new(layers, &c, routed, shared, &p, &err), MS_OK);
    memcpy(p->phy2log, ids, (size_t)layers * p->n_phys * sizeof *ids);
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    return p;
}

static ms_placement *place(const ms_loads *ld, const char *algo, ms_cluster c, ms_status want, ms_error *err,
                           void (*tweak)(ms_place_opts *)) {
    ms_place_input in = {ld, NULL, 0};
    ms_place_opts o;
    ms_place_opts_default(&o);
    o.algo = algo;
    o.cluster = c;
    o.lp_bound = false;
    if (tweak) tweak(&o);
    ms_placement *p = NULL;
    ms_status st = ms_place_run(&in, &o, &p, err);
    if (st != want) fprintf(stderr, "%s: %s\n", algo, err->msg);
    assert_int_equal(st, want);
    return p;
}

static bool contains(const char *s, const char *sub) {
    if (!strstr(s, sub)) fprintf(stderr, "message '%s' lacks '%s'\n", s, sub);
    return strstr(s, sub) != NULL;
}

/* ---------------------------------------------------------- the object */

static void test_cluster_check(void **state) {
    (void)state;
    ms_error err = {0};
    ms_cluster ok = {2, 4, 3}, zero = {0, 4, 3}, big = {4096, 4096, 2};
    assert_int_equal(ms_cluster_check(&ok, &err), MS_OK);
    assert_int_equal(ms_cluster_check(&zero, &err), MS_E_INPUT);
    assert_int_equal(ms_cluster_check(&big, &err), MS_E_INPUT);
    assert_int_equal(ms_cluster_slots(&ok), 24);
    ms_placement *p;
    assert_int_equal(ms_placement_new(0, &ok, 4, false, &p, &err), MS_E_INPUT);
    assert_int_equal(ms_placement_new(1, &ok, 0, false, &p, &err), MS_E_INPUT);
    assert_int_equal(ms_placement_new(1, &zero, 4, false, &p, &err), MS_E_INPUT);
}

static void test_index_check_clone(void **state) {
    (void)state;
    /* 1x2 devices x 3 slots, 4 experts: expert 0 twice, slot 5 empty */
    static const int32_t ids[6] = {0, 1, 2, 0, 3, -1};
    ms_placement *p = make(1, (ms_cluster){1, 2, 3}, 4, false, ids);
    ms_error err = {0};
    assert_int_equal(p->max_replicas, 2);
    static const int32_t l2p[8] = {0, 3, 1, -1, 2, -1, 4, -1};
    static const uint32_t cnt[4] = {2, 1, 1, 1};
    assert_memory_equal(p->log2phy, l2p, sizeof l2p);
    assert_memory_equal(p->logcnt, cnt, sizeof cnt);
    assert_int_equal(ms_placement_check(p, &err), MS_OK);

    ms_placement *q;
    assert_int_equal(ms_placement_clone(p, &q, &err), MS_OK);
    assert_memory_equal(q->log2phy, p->log2phy, sizeof l2p);
    q->phy2log[0] = 1; /* independent copy */
    assert_int_equal(p->phy2log[0], 0);
    ms_placement_free(q);

    /* log2phy in another order is fine (EPLB's rank order, the peer's order) */
    p->log2phy[0] = 3;
    p->log2phy[1] = 0;
    assert_int_equal(ms_placement_check(p, &err), MS_OK);
    /* the same slot twice */
    p->log2phy[1] = 3;
    assert_int_equal(ms_placement_check(p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "listed twice"));
    p->log2phy[1] = 0;
    /* a slot that holds another expert */
    p->log2phy[2] = 2;
    assert_int_equal(ms_placement_check(p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "does not hold"));
    p->log2phy[2] = 1;
    /* padding must be -1 */
    p->log2phy[3] = 5;
    assert_int_equal(ms_placement_check(p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "expected -1"));
    p->log2phy[3] = -1;
    /* logcnt must match */
    p->logcnt[1] = 2;
    assert_int_equal(ms_placement_check(p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "logcnt"));
    p->logcnt[1] = 1;
    /* an expert without a slot */
    p->phy2log[4] = -1;
    assert_int_equal(ms_placement_check(p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "expert 3 has no slot"));
    /* an id out of range */
    p->phy2log[4] = 4;
    assert_int_equal(ms_placement_check(p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "slot 4"));
    ms_placement_free(p);
}

static void test_max_device_load(void **state) {
    (void)state;
    static const int32_t ids[6] = {0, 1, 2, 0, 3, 4}; /* expert 4 = shared */
    ms_placement *p = make(1, (ms_cluster){1, 2, 3}, 4, true, ids);
    ms_error err = {0};
    assert_int_equal(ms_placement_check(p, &err), MS_OK);
    static const double w4[4] = {10, 3, 4, 5}, w5[5] = {10, 3, 4, 5, 8};
    ms_loads *a = tu_loads(1, 4, w4), *b = tu_loads(1, 5, w5);
    /* device 0: 10/2 + 3 + 4 = 12; device 1: 5 + 5 (+ 8 shared) */
    assert_true(ms_placement_max_device_load(p, a, 0) == 12);
    assert_true(ms_placement_max_device_load(p, b, 0) == 18);
    assert_true(isnan(ms_placement_max_device_load(p, a, 1)));
    ms_loads_free(a);
    ms_loads_free(b);
    ms_placement_free(p);
}

/* ------------------------------------------------------------ the files */

static void test_json_round_trip(void **state) {
    (void)state;
    static const int32_t ids[12] = {0, 1, 2, 0, 3, -1, 3, 2, 1, 0, 0, 1};
    ms_placement *p = make(2, (ms_cluster){2, 1, 3}, 4, false, ids);
    ms_error err = {0};
    /* a replica order other than ascending slots must survive */
    p->log2phy[0] = 3;
    p->log2phy[1] = 0;
    snprintf(p->algorithm, sizeof p->algorithm, "test \"quoted\"");
    snprintf(p->params, sizeof p->params, "{\"rows\":2}");
    p->objective = 1.5;
    p->lower_bound = NAN;
    p->runtime_s = 0.25;
    p->trace_digest = 0x0123456789abcdefULL;
    char path[512], path2[512];
    tu_tmp_path("placement", ".json", path, sizeof path);
    assert_int_equal(ms_placement_write_json(p, path, &err), MS_OK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                              "assert d[\"phy2log\"][1]==[3,2,1,0,0,1] and d[\"logcnt\"][0]==[2,1,1,1]' %s", path);
    assert_int_equal(tu_run(cmd, NULL, 0), 0);
    ms_placement *q;
    assert_int_equal(ms_placement_read_json(path, NULL, 0, &q, &err), MS_OK);
    assert_int_equal(q->n_layers, 2);
    assert_int_equal(q->cluster.rows, 2);
    assert_int_equal(q->cluster.slots_per_device, 3);
    assert_memory_equal(q->phy2log, p->phy2log, sizeof ids);
    assert_int_equal(q->max_replicas, p->max_replicas);
    assert_memory_equal(q->log2phy, p->log2phy, 2 * 4 * p->max_replicas * sizeof(int32_t));
    assert_string_equal(q->algorithm, p->algorithm);
    assert_string_equal(q->params, p->params);
    assert_true(q->objective == 1.5 && isnan(q->lower_bound) && q->runtime_s == 0.25);
    assert_true(q->trace_digest == p->trace_digest);
    /* same placement, same bytes */
    tu_tmp_path("placement", ".json", path2, sizeof path2);
    assert_int_equal(ms_placement_write_json(q, path2, &err), MS_OK);
    tu_assert_files_equal(path, path2);
    /* a cluster the caller expects that the file does not match */
    ms_cluster other = {1, 2, 3};
    ms_placement *r = NULL;
    assert_int_equal(ms_placement_read_json(path, &other, 0, &r, &err), MS_E_INPUT);
    assert_null(r);
    remove(path);
    remove(path2);
    ms_placement_free(q);
    ms_placement_free(p);
}

static void read_bad(const char *text, const ms_cluster *c, uint32_t routed, const char *expect) {
    char path[512];
    tu_tmp_path("bad", ".json", path, sizeof path);
    tu_write_file(path, text, strlen(text));
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_read_json(path, c, routed, &p, &err), MS_E_INPUT);
    assert_null(p);
    assert_true(contains(err.msg, expect));
    assert_true(contains(err.msg, path));
    remove(path);
}

static void test_read_errors(void **state) {
    (void)state;
    read_bad("{\"phy2log\": [[0,1]", NULL, 0, "invalid JSON");
    read_bad("[1,2]", NULL, 0, "JSON object");
    read_bad("{\"foo\": 1}", NULL, 0, "not a placement");
    read_bad("{\"rows\":1,\"cols\":1,\"slots_per_device\":2,\"layers\":1,\"routed_experts\":2,\"phy2log\":[[0,2]]}", NULL, 0,
             "entry 1");
    read_bad("{\"rows\":1,\"cols\":1,\"slots_per_device\":2,\"layers\":1,\"routed_experts\":2,\"phy2log\":[[0,0]]}", NULL, 0,
             "expert 1 has no slot");
    read_bad("{\"rows\":1,\"cols\":1,\"slots_per_device\":2,\"layers\":1,\"routed_experts\":2,\"phy2log\":[[0,1,1]]}", NULL,
             0, "array of 2");
    read_bad("{\"rows\":0,\"cols\":1,\"slots_per_device\":2,\"layers\":1,\"routed_experts\":2,\"phy2log\":[[0,1]]}", NULL, 0,
             "rows");
    read_bad("{\"physical_to_logical_map\": [[0,1,2],[0,1]]}", NULL, 0, "layer 1");
    ms_cluster c = {1, 2, 2};
    read_bad("{\"physical_to_logical_map\": [[0,1,2]]}", &c, 0, "cluster");
    read_bad("{\"physical_to_logical_map\": [[0,1,5]]}", NULL, 3, "out of range");
    read_bad("{\"0\": [{\"device\":0,\"row\":0,\"col\":0,\"slot\":0}], \"1\": [{\"device\":0,\"row\":0,\"col\":0,\"slot\":0}],"
             " \"2\": [{\"device\":0,\"row\":0,\"col\":0,\"slot\":2}]}",
             NULL, 0, "holds both");
    read_bad("{\"0\": [{\"device\":0,\"row\":0,\"col\":0,\"slot\":0}], \"1\": [{\"device\":0,\"row\":0,\"col\":0,\"slot\":0}]}",
             NULL, 0, "cannot each have a slot");
    read_bad("{\"physical_to_logical_map\": [[16777215]]}", NULL, 0, "cannot each have a slot");
    read_bad("{\"0\": [{\"device\":1,\"row\":0,\"col\":0,\"slot\":0}], \"1\": [{\"device\":1,\"row\":0,\"col\":1,\"slot\":0}]}",
             NULL, 0, "row * cols + col");
    read_bad("{\"0\": [{\"device\":0,\"row\":0,\"col\":0}]}", NULL, 0, "slot");
    read_bad("{\"1\": [{\"device\":0,\"row\":0,\"col\":0,\"slot\":0}, {\"device\":0,\"row\":0,\"col\":0,\"slot\":1}]}",
             NULL, 0, "expert 0 has no slot");
    ms_placement *p = NULL;
    ms_error err = {0};
    assert_int_equal(ms_placement_read_json("/nonexistent/x.json", NULL, 0, &p, &err), MS_E_IO);
}

/* A growing text buffer for generated placement files. */
typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;

static void tb_put(text_buf *t, const char *s) {
    size_t l = strlen(s);
    if (t->n + l + 1 > t->cap) {
        t->cap = (t->n + l + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->n, s, l + 1);
    t->n += l;
}

static ms_status parse_text(const text_buf *t, const ms_cluster *c, uint32_t routed, ms_error *err) {
    ms_placement *p = NULL;
    ms_status st = ms_placement_parse_json(t->p, t->n, "gen.json", c, routed, &p, err);
    if (st == MS_OK) assert_int_equal(ms_placement_check(p, err), MS_OK);
    else assert_null(p);
    ms_placement_free(p);
    return st;
}

/* ms_placement_parse_json reads exactly len bytes and names the label; the
 * rest are regressions found by fuzz/fuzz-placement.c: small files that made
 * the reader allocate far more than they hold. */
static void test_parse_text_and_limits(void **state) {
    (void)state;
    ms_error err = {0};
    ms_placement *p = NULL;
    /* len excludes trailing garbage (no NUL needed) */
    static const char sg[] = "{\"physical_to_logical_map\": [[0, 1, 1, 2]]}garbage";
    assert_int_equal(ms_placement_parse_json(sg, strlen(sg) - 7, "mem.json", NULL, 0, &p, &err), MS_OK);
    assert_int_equal(p->n_routed, 3);
    assert_int_equal(p->n_phys, 4);
    assert_int_equal(p->logcnt[1], 2);
    ms_placement_free(p);
    assert_int_equal(ms_placement_parse_json(sg, strlen(sg), "mem.json", NULL, 0, &p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "mem.json"));
    assert_null(p);

    /* SGLang: a long layer 0 followed by 2^18 empty layers used to allocate
     * layers x slots(0) ints (2^18 x 2^18 x 4 = 256 GiB) before looking at
     * layer 1: now an input error naming it */
    text_buf t = {0};
    tb_put(&t, "{\"physical_to_logical_map\": [[0");
    for (int i = 1; i < (1 << 18); i++) tb_put(&t, ",0");
    tb_put(&t, "]");
    for (int i = 1; i < (1 << 18); i++) tb_put(&t, ",[]");
    tb_put(&t, "]}");
    assert_int_equal(parse_text(&t, NULL, 0, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "layer 1 must be an array"));

    /* one expert replicated on 15001 of 20000 slots among 5000 experts: a valid
     * placement whose padded log2phy (5000 x 15001 entries, 300 MB) dwarfs the
     * ~100 KB file; SGLang and moesim JSON without log2phy are refused */
    t.n = 0;
    tb_put(&t, "{\"physical_to_logical_map\": [[0");
    char num[32];
    for (int i = 1; i < 20000; i++) {
        snprintf(num, sizeof num, ",%d", i < 5000 ? i : 0);
        tb_put(&t, num);
    }
    tb_put(&t, "]]}");
    assert_int_equal(parse_text(&t, NULL, 0, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "too large"));
    t.n = 0;
    tb_put(&t, "{\"rows\": 1, \"cols\": 20000, \"slots_per_device\": 1, \"layers\": 1, \"routed_experts\": 5000, "
               "\"phy2log\": [[0");
    for (int i = 1; i < 20000; i++) {
        snprintf(num, sizeof num, ",%d", i < 5000 ? i : 0);
        tb_put(&t, num);
    }
    tb_put(&t, "]]}");
    assert_int_equal(parse_text(&t, NULL, 0, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "too large"));
    /* the same skew at a modest size still reads: 50 experts, 150 slots */
    t.n = 0;
    tb_put(&t, "{\"physical_to_logical_map\": [[0");
    for (int i = 1; i < 150; i++) {
        snprintf(num, sizeof num, ",%d", i < 50 ? i : 0);
        tb_put(&t, num);
    }
    tb_put(&t, "]]}");
    assert_int_equal(ms_placement_parse_json(t.p, t.n, "gen.json", NULL, 0, &p, &err), MS_OK);
    assert_int_equal(p->max_replicas, 101);
    ms_placement_free(p);

    /* peer: one replica at row 4095, col 4095 made a 58-byte file infer a
     * 4096 x 4096 grid (2^24 slots, several 64 MB tables); an inferred grid
     * must now be backed by the file, a given cluster is taken as is */
    t.n = 0;
    tb_put(&t, "{\"0\": [{\"device\": 16777215, \"row\": 4095, \"col\": 4095, \"slot\": 0}]}");
    assert_int_equal(parse_text(&t, NULL, 0, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "cluster explicitly"));
    t.n = 0;
    tb_put(&t, "{\"0\": [{\"device\": 255, \"row\": 15, \"col\": 15, \"slot\": 0}]}");
    assert_int_equal(ms_placement_parse_json(t.p, t.n, "gen.json", NULL, 0, &p, &err), MS_OK);
    assert_int_equal(p->n_phys, 256);
    assert_int_equal(p->phy2log[255], 0);
    ms_placement_free(p);
    free(t.p);
}

static void test_sglang(void **state) {
    (void)state;
    static const int32_t ids[8] = {0, 1, 2, 0, 2, 2, 1, 0};
    ms_placement *p = make(2, (ms_cluster){1, 2, 2}, 3, false, ids);
    ms_error err = {0};
    char path[512];
    tu_tmp_path("sglang", ".json", path, sizeof path);
    assert_int_equal(ms_placement_write_sglang(p, path, &err), MS_OK);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                              "assert d == {\"physical_to_logical_map\": [[0,1,2,0],[2,2,1,0]]}' %s", path);
    assert_int_equal(tu_run(cmd, NULL, 0), 0);
    ms_cluster c = {1, 2, 2};
    ms_placement *q;
    assert_int_equal(ms_placement_read_json(path, &c, 0, &q, &err), MS_OK);
    assert_int_equal(q->n_routed, 3);
    assert_false(q->has_shared);
    assert_memory_equal(q->phy2log, ids, sizeof ids);
    ms_placement_free(q);
    /* inferred cluster: 1 x 4 x 1; with n_routed = 2, id 2 is the shared expert */
    assert_int_equal(ms_placement_read_json(path, NULL, 2, &q, &err), MS_OK);
    assert_int_equal(q->cluster.cols, 4);
    assert_true(q->has_shared);
    ms_placement_free(q);
    /* an empty slot cannot be written for SGLang */
    p->phy2log[3] = -1;
    assert_int_equal(ms_placement_index(p, &err), MS_OK);
    assert_int_equal(ms_placement_write_sglang(p, path, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "empty"));
    remove(path);
    ms_placement_free(p);
}

static void test_peer_reference_file(void **state) {
    (void)state;
    char dir[1024], path[1200], out[512];
    if (!tu_ref_dir("moe-balance", dir, sizeof dir)) skip();
    snprintf(path, sizeof path, "%s/balance_dsv2lite_l10_2x8.placement.json", dir);
    ms_placement *p;
    ms_error err = {0};
    assert_int_equal(ms_placement_read_json(path, NULL, 0, &p, &err), MS_OK);
    assert_int_equal(p->n_layers, 1);
    assert_int_equal(p->cluster.rows, 2);
    assert_int_equal(p->cluster.cols, 8);
    assert_int_equal(p->cluster.slots_per_device, 6);
    assert_int_equal(p->n_routed, 64);
    assert_int_equal(p->n_phys, 96);
    uint32_t total = 0;
    for (uint32_t e = 0; e < 64; e++) total += p->logcnt[e];
    assert_int_equal(total, 96);
    /* listed order kept: expert 0 is on device 7 slot 0, then device 11 slot 0 */
    assert_int_equal(p->log2phy[0], 7 * 6 + 0);
    assert_int_equal(p->log2phy[1], 11 * 6 + 0);
    assert_int_equal(p->logcnt[0], 2);
    /* written back byte for byte */
    tu_tmp_path("peer", ".json", out, sizeof out);
    assert_int_equal(ms_placement_write_peer(p, 0, out, &err), MS_OK);
    tu_assert_files_equal(path, out);
    /* the caller's cluster is checked against the replicas */
    ms_cluster small = {2, 4, 6};
    ms_placement *q = NULL;
    assert_int_equal(ms_placement_read_json(path, &small, 0, &q, &err), MS_E_INPUT);
    assert_int_equal(ms_placement_write_peer(p, 1, out, &err), MS_E_INPUT);
    remove(out);
    ms_placement_free(p);
}

static void test_peer_round_trip(void **state) {
    (void)state;
    static const int32_t ids[2][8] = {{2, 0, 1, -1, 0, 3, 4, 1}, {0, 1, 2, 3, 4, 0, 1, 2}};
    ms_placement *p = make(2, (ms_cluster){2, 2, 2}, 4, true, &ids[0][0]);
    ms_error err = {0};
    char path[512];
    tu_tmp_path("peer", ".json", path, sizeof path);
    assert_int_equal(ms_placement_write_peer(p, 0, path, &err), MS_OK);
    ms_cluster c = {2, 2, 2};
    ms_placement *q;
    assert_int_equal(ms_placement_read_json(path, &c, 4, &q, &err), MS_OK);
    assert_int_equal(q->n_layers, 1);
    assert_true(q->has_shared);
    assert_memory_equal(q->phy2log, ids[0], sizeof ids[0]);
    assert_memory_equal(q->logcnt, p->logcnt, 5 * sizeof(uint32_t));
    ms_placement_free(q);
    /* python parses it and sees expert 0 at devices 0 and 2 */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                              "assert [r[\"device\"] for r in d[\"0\"]]==[0,2] and d[\"4\"][0]==dict(device=3,row=1,col=1,slot=0)' %s",
             path);
    assert_int_equal(tu_run(cmd, NULL, 0), 0);
    remove(path);
    ms_placement_free(p);
}

/* ------------------------------------------------- dispatcher, algorithms */

static void shared4(ms_place_opts *o) {
    o->shared_expert = true;
    o->shared_replicas = 4;
    o->shared_load = 40;
}

static void test_shared_reservation_and_loads(void **state) {
    (void)state;
    double w[12];
    for (int i = 0; i < 12; i++) w[i] = 10 + i;
    ms_loads *ld = tu_loads(1, 12, w);
    ms_error err = {0};
    ms_placement *p = place(ld, "round-robin", (ms_cluster){2, 4, 2}, MS_OK, &err, shared4);
    /* replicas at (row i mod 2, col i mod 4): devices 0, 5, 2, 7, slot 0 */
    const int32_t *row = p->phy2log;
    assert_int_equal(row[0], 12);
    assert_int_equal(row[10], 12);
    assert_int_equal(row[4], 12);
    assert_int_equal(row[14], 12);
    assert_int_equal(p->logcnt[12], 4);
    ms_placement_free(p);

    ms_place_input in = {ld, NULL, 0};
    ms_place_opts o;
    ms_place_opts_default(&o);
    o.algo = "round-robin";
    o.cluster = (ms_cluster){2, 8, 2};
    o.shared_expert = true;
    o.shared_replicas = 21;
    o.lp_bound = false;
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_E_INPUT);
    assert_true(contains(err.msg, "slot budget"));
    o.cluster = (ms_cluster){2, 8, 1};
    o.shared_replicas = 4; /* fits: devices 0, 9, 2, 11 */
    assert_int_equal(ms_place_run(&in, &o, &p, &err), MS_OK);
    ms_placement_free(p);
    {
        /* on 2x2 with one slot, replica 2 lands on (0,0) again: no room */
        double one = 5;
        ms_loads *l1 = tu_loads(1, 1, &one);
        ms_place_input in1 = {l1, NULL, 0};
        ms_place_opts o1 = o;
        o1.cluster = (ms_cluster){2, 2, 1};
        o1.shared_replicas = 3;
        assert_int_equal(ms_place_run(&in1, &o1, &p, &err), MS_E_INPUT);
        assert_true(contains(err.msg, "do not fit"));
        ms_loads_free(l1);
    }

    /* the shared expert's load: --shared-load, row sum / top_k, max load */
    ms_loads *eff;
    o.shared_load = 7;
    assert_int_equal(ms_place_effective_loads(&in, &o, &eff, &err), MS_OK);
    assert_int_equal(eff->n_experts, 13);
    assert_true(eff->w[12] == 7 && eff->w[11] == 21);
    ms_loads_free(eff);
    o.shared_load = -1;
    o.top_k = 2;
    assert_int_equal(ms_place_effective_loads(&in, &o, &eff, &err), MS_OK);
    assert_true(eff->w[12] == (10 + 21) * 12 / 2.0 / 2);
    ms_loads_free(eff);
    o.top_k = 0;
    assert_int_equal(ms_place_effective_loads(&in, &o, &eff, &err), MS_OK);
    assert_true(eff->w[12] == 21);
    ms_loads_free(eff);
    ms_loads_free(ld);
}

static void test_dispatch_errors(void **state) {
    (void)state;
    double w[6] = {1, 2, 3, 4, 5, 6};
    ms_loads *ld = tu_loads(1, 6, w);
    ms_error err = {0};
    assert_null(place(ld, "nope", (ms_cluster){1, 2, 3}, MS_E_INPUT, &err, NULL));
    assert_true(contains(err.msg, "unknown placement algorithm 'nope'"));
    assert_null(place(ld, "pair", (ms_cluster){1, 2, 2}, MS_E_INPUT, &err, NULL));
    assert_true(contains(err.msg, "slot budget too small"));
    assert_null(place(ld, "pair", (ms_cluster){0, 2, 2}, MS_E_INPUT, &err, NULL));
    ld->w[2] = -1;
    assert_null(place(ld, "pair", (ms_cluster){1, 2, 3}, MS_E_INPUT, &err, NULL));
    assert_true(contains(err.msg, "expert 2"));
    ms_loads_free(ld);
    size_t n = 0;
    for (const char *const *a = ms_place_algorithms(); *a; a++) n++;
    assert_int_equal(n, 13);
}

static void test_contiguous_round_robin(void **state) {
    (void)state;
    double w[12] = {0};
    ms_loads *ld = tu_loads(1, 12, w);
    ms_error err = {0};
    ms_placement *p = place(ld, "contiguous", (ms_cluster){2, 4, 2}, MS_OK, &err, NULL);
    static const int32_t contig[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -1, -1, -1, -1};
    assert_memory_equal(p->phy2log, contig, sizeof contig);
    ms_placement_free(p);
    p = place(ld, "round-robin", (ms_cluster){2, 4, 2}, MS_OK, &err, NULL);
    static const int32_t rr[16] = {0, 8, 1, 9, 2, 10, 3, 11, 4, -1, 5, -1, 6, -1, 7, -1};
    assert_memory_equal(p->phy2log, rr, sizeof rr);
    ms_placement_free(p);
    /* 12 experts on 8 devices x 3 slots: stride ceil(12/8) = 2 */
    p = place(ld, "contiguous", (ms_cluster){1, 8, 3}, MS_OK, &err, NULL);
    for (uint32_t e = 0; e < 12; e++) assert_int_equal(p->log2phy[e * p->max_replicas] / 3, e / 2);
    ms_placement_free(p);
    ms_loads_free(ld);
}

static void test_pair_hand(void **state) {
    (void)state;
    /* 4 experts on 2 devices x 2 slots: 10 -> d0, 7 -> d1, 4 -> d1 (7 < 10),
     * 1 -> d0: hottest with coldest, both devices at 11 */
    double w[4] = {10, 1, 7, 4};
    ms_loads *ld = tu_loads(1, 4, w);
    ms_error err = {0};
    ms_placement *p = place(ld, "pair", (ms_cluster){1, 2, 2}, MS_OK, &err, NULL);
    static const int32_t want[4] = {0, 1, 2, 3};
    assert_memory_equal(p->phy2log, want, sizeof want);
    assert_true(p->objective == 11);
    assert_true(ms_placement_max_device_load(p, ld, 0) == 11);
    ms_placement_free(p);
    ms_loads_free(ld);
}

static void test_replicate_hand(void **state) {
    (void)state;
    /* 4 experts, 2 devices x 3 slots, 2 extra replicas. Expert 0 (100) gets
     * a second replica (50 each); a third would put two on one device of
     * two, so the next goes to expert 1 (10 -> 5 each; ties with 2 and 3
     * go to the lower id). Packing: 50 -> d0, 50 -> d1, 10 (e2) -> d0,
     * 10 (e3) -> d1, 5 (e1) -> d0, 5 (e1) -> d1: both at 65. */
    double w[4] = {100, 10, 10, 10};
    ms_loads *ld = tu_loads(1, 4, w);
    ms_error err = {0};
    ms_placement *p = place(ld, "replicate", (ms_cluster){1, 2, 3}, MS_OK, &err, NULL);
    static const int32_t want[6] = {0, 2, 1, 0, 3, 1};
    assert_memory_equal(p->phy2log, want, sizeof want);
    assert_true(ms_placement_max_device_load(p, ld, 0) == 65);
    ms_placement_free(p);
    ms_loads_free(ld);
}

static void redundant1(ms_place_opts *o) { o->redundant = 1; }

static void test_redundant_option(void **state) {
    (void)state;
    double w[4] = {100, 10, 10, 10};
    ms_loads *ld = tu_loads(1, 4, w);
    ms_error err = {0};
    ms_placement *p = place(ld, "replicate", (ms_cluster){1, 2, 4}, MS_OK, &err, redundant1);
    assert_int_equal(p->logcnt[0], 2);
    uint32_t used = 0;
    for (uint32_t s = 0; s < 8; s++) used += p->phy2log[s] >= 0;
    assert_int_equal(used, 5);
    ms_placement_free(p);
    assert_null(place(ld, "pair", (ms_cluster){1, 2, 4}, MS_E_INPUT, &err, redundant1));
    assert_true(contains(err.msg, "redundant"));
    ms_loads_free(ld);
}

/* Brute force: the smallest max device load over every placement of 3
 * experts in 2 devices x 2 slots (each expert at least once, even splits)
 * is at least the reported bound, and no algorithm beats it. */
static void test_bound_brute_force(void **state) {
    (void)state;
    ms_rng r;
    ms_rng_seed(&r, 99);
    const char *algos[] = {"contiguous", "round-robin", "pair", "replicate", "eplb"};
    for (int it = 0; it < 30; it++) {
        double w[3];
        for (int e = 0; e < 3; e++) w[e] = (double)(1 + ms_rng_below(&r, 50));
        ms_loads *ld = tu_loads(1, 3, w);
        double best = INFINITY;
        for (int code = 0; code < 256; code++) { /* 4 slots, values -1..2 */
            int ids[4], cnt[3] = {0, 0, 0};
            for (int s = 0; s < 4; s++) {
                ids[s] = ((code >> (2 * s)) & 3) - 1;
                if (ids[s] >= 0) cnt[ids[s]]++;
            }
            if (!cnt[0] || !cnt[1] || !cnt[2]) continue;
            double d0 = 0, d1 = 0;
            for (int s = 0; s < 4; s++)
                if (ids[s] >= 0) *(s < 2 ? &d0 : &d1) += w[ids[s]] / cnt[ids[s]];
            double m = d0 > d1 ? d0 : d1;
            if (m < best) best = m;
        }
        for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
            ms_error err = {0};
            ms_placement *p = place(ld, algos[a], (ms_cluster){1, 2, 2}, MS_OK, &err, NULL);
            assert_true(p->layer_bound[0] <= best + 1e-9);
            assert_true(ms_placement_max_device_load(p, ld, 0) >= best - 1e-9);
            ms_placement_free(p);
        }
        ms_loads_free(ld);
    }
}

static void test_properties_random(void **state) {
    (void)state;
    ms_rng r;
    ms_rng_seed(&r, 5);
    const char *algos[] = {"contiguous", "round-robin", "pair", "replicate", "eplb"};
    for (int it = 0; it < 80; it++) {
        ms_cluster c = {1 + (uint32_t)ms_rng_below(&r, 3), 1 + (uint32_t)ms_rng_below(&r, 4),
                        1 + (uint32_t)ms_rng_below(&r, 4)};
        uint32_t slots = ms_cluster_slots(&c), E = 1 + (uint32_t)ms_rng_below(&r, slots);
        bool shared = ms_rng_below(&r, 3) == 0 && E + c.rows <= slots;
        uint32_t L = 2;
        ms_loads *ld;
        ms_error err = {0};
        assert_int_equal(ms_loads_new(L, E, &ld, &err), MS_OK);
        for (uint32_t i = 0; i < L * E; i++) ld->w[i] = floor(ms_rng_uniform(&r) * 1000);
        for (size_t a = 0; a < sizeof algos / sizeof algos[0]; a++) {
            ms_place_input in = {ld, NULL, 0};
            ms_place_opts o;
            ms_place_opts_default(&o);
            o.algo = algos[a];
            o.cluster = c;
            o.shared_expert = shared;
            o.lp_bound = false;
            ms_placement *p = NULL, *q = NULL;
            ms_status st = ms_place_run(&in, &o, &p, &err);
            if (st != MS_OK) fprintf(stderr, "%s on %ux%ux%u E=%u shared=%d: %s\n", algos[a], c.rows, c.cols,
                                     c.slots_per_device, E, shared, err.msg);
            assert_int_equal(st, MS_OK);
            assert_int_equal(ms_placement_check(p, &err), MS_OK);
            assert_int_equal(ms_place_run(&in, &o, &q, &err), MS_OK);
            assert_memory_equal(p->phy2log, q->phy2log, (size_t)L * p->n_phys * sizeof(int32_t));
            ms_loads *eff;
            assert_int_equal(ms_place_effective_loads(&in, &o, &eff, &err), MS_OK);
            uint32_t devs = ms_cluster_devices(&c), spd = c.slots_per_device;
            for (uint32_t l = 0; l < L; l++) {
                assert_true(ms_placement_max_device_load(p, eff, l) >= p->layer_bound[l] * (1 - 1e-12));
                const int32_t *row = p->phy2log + (size_t)l * p->n_phys;
                uint32_t routed = 0;
                for (uint32_t e = 0; e < E; e++) routed += p->logcnt[(size_t)l * p->n_logical + e];
                bool replicates = strcmp(algos[a], "replicate") == 0 || strcmp(algos[a], "eplb") == 0;
                uint32_t free_slots = slots - (shared ? c.rows : 0);
                assert_int_equal(routed, replicates ? free_slots : E);
                if (shared) /* replica i at row i, column i mod cols, slot 0 */
                    for (uint32_t i = 0; i < c.rows; i++) {
                        assert_int_equal(row[((i % c.rows) * c.cols + i % c.cols) * spd], (int32_t)E);
                        assert_true(devs >= c.rows);
                    }
            }
            ms_loads_free(eff);
            ms_placement_free(p);
            ms_placement_free(q);
        }
        ms_loads_free(ld);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster_check),
        cmocka_unit_test(test_index_check_clone),
        cmocka_unit_test(test_max_device_load),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_parse_text_and_limits),
        cmocka_unit_test(test_sglang),
        cmocka_unit_test(test_peer_reference_file),
        cmocka_unit_test(test_peer_round_trip),
        cmocka_unit_test(test_shared_reservation_and_loads),
        cmocka_unit_test(test_dispatch_errors),
        cmocka_unit_test(test_contiguous_round_robin),
        cmocka_unit_test(test_pair_hand),
        cmocka_unit_test(test_replicate_hand),
        cmocka_unit_test(test_redundant_option),
        cmocka_unit_test(test_bound_brute_force),
        cmocka_unit_test(test_properties_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
