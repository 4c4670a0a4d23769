/* test-power.c - the power model: every part on hand-computed cases, parts
 * summing to the total, imbalance never lowering energy, the simulator
 * converter, the energy presets and the phases reader. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include "moesim/power.h"
#include "moesim/sim.h"

#define NEAR(a, b) assert_true(fabs((double)(a) - (double)(b)) <= 1e-9 * fmax(1.0, fabs((double)(b))))

/* round numbers: 0.5 pJ/FLOP (bf16), HBM 4, NVLink 8, NIC 10, switch 20,
 * optics 5, 2 hops (network = 2*10 + 2*20 + 3*5 = 75 pJ/bit), idle 100 W */
static ms_energy_coeffs coeffs(void) {
    ms_energy_coeffs c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "test");
    c.pj_per_flop[MS_PREC_FP32] = 1.0;
    c.pj_per_flop[MS_PREC_BF16] = 0.5;
    c.pj_per_flop[MS_PREC_FP8] = 0.25;
    c.hbm_pj_per_bit = 4;
    c.nvlink_pj_per_bit = 8;
    c.nic_pj_per_bit = 10;
    c.switch_pj_per_bit = 20;
    c.optics_pj_per_bit = 5;
    c.switch_hops = 2;
    c.freq_exponent = 2;
    c.min_clock = 0.25;
    c.idle_w = 100;
    c.tdp_w = 700;
    c.node_overhead_w = 0;
    c.pue = 1;
    return c;
}

static void test_net_formula(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    NEAR(ms_energy_net_pj_per_bit(&c), 75.0);
    /* 1e12 FLOPs bf16 = 0.5 J; 1e9 HBM bytes = 0.032 J; 1e9 NVLink = 0.064; 1e6 network = 6e-4 */
    NEAR(ms_energy_dynamic_j(&c, MS_PREC_BF16, 1e12, 0, 0, 0), 0.5);
    NEAR(ms_energy_dynamic_j(&c, MS_PREC_FP8, 1e12, 0, 0, 0), 0.25);
    NEAR(ms_energy_dynamic_j(&c, MS_PREC_BF16, 0, 1e9, 0, 0), 0.032);
    NEAR(ms_energy_dynamic_j(&c, MS_PREC_BF16, 0, 0, 1e9, 0), 0.064);
    NEAR(ms_energy_dynamic_j(&c, MS_PREC_BF16, 0, 0, 0, 1e6), 6e-4);
}

/* one device, one phase of 1 s: compute 0.5 s, comm 0.25 s */
static void test_one_device_by_hand(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    ms_power_phases *p;
    ms_error err = {0};
    assert_int_equal(ms_power_phases_new(1, 1, &p, &err), MS_OK);
    double cs = 0.5, cm = 0.25, fl = 1e12, hb = 1e9, nv = 1e9, nt = 1e6;
    ms_power_phase ph = {3, 7, 1.0, &cs, &cm, &fl, &hb, &nv, &nt, NULL};
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
    p->tokens = 10;
    ms_power_result *r;
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
    NEAR(r->energy_j[MS_PART_COMPUTE], 0.5);
    NEAR(r->energy_j[MS_PART_MEMORY], 0.032);
    NEAR(r->energy_j[MS_PART_NVLINK], 0.064);
    NEAR(r->energy_j[MS_PART_NETWORK], 6e-4);
    NEAR(r->energy_j[MS_PART_STATIC], 75.0); /* 100 W x 0.75 s active */
    NEAR(r->energy_j[MS_PART_WAIT], 25.0);   /* 100 W x 0.25 s waiting */
    double total = 0.5 + 0.032 + 0.064 + 6e-4 + 100.0;
    NEAR(r->total_j, total);
    NEAR(r->energy_per_token_j, total / 10);
    NEAR(r->avg_w, total / 1.0);
    /* busiest activity: compute (0.532 J / 0.5 s = 1.064 W) vs transfer (0.0646 J / 0.25 s) */
    NEAR(r->peak_w, 100 + 1.064);
    NEAR(r->max_device_w, 100 + 1.064);
    NEAR(r->dev_active_s[0], 0.75);
    NEAR(r->dev_wait_s[0], 0.25);
    assert_int_equal(r->over_tdp, 0);
    double as, aw, dj;
    ms_power_device_phase(p, &c, 0, 0, &as, &aw, &dj);
    NEAR(as, 0.75);
    NEAR(dj, 0.5966);
    NEAR(aw, 100 + 0.5966 / 0.75);
    ms_power_result_free(r);
    /* overlapped (compute + comm > wall): both powers at once */
    cm = 0.75;
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
    NEAR(r->peak_w, 100 + 1.064 + 0.0646 / 0.75);
    NEAR(r->energy_j[MS_PART_WAIT], 0.0);
    NEAR(r->energy_j[MS_PART_STATIC], 100.0);
    ms_power_result_free(r);
    ms_power_phases_free(p);
}

/* two devices, two phases: the slower one sets the wall; timeline by hand */
static void test_timeline_and_wait(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    ms_power_phases *p;
    ms_error err = {0};
    assert_int_equal(ms_power_phases_new(2, 2, &p, &err), MS_OK);
    double cs0[2] = {1.0, 0.25}, zero[2] = {0, 0}, fl0[2] = {4e12, 1e12};
    double cs1[2] = {0.5, 0.5}, fl1[2] = {2e12, 2e12};
    ms_power_phase a = {0, 0, 1.0, cs0, NULL, fl0, zero, zero, zero, NULL};
    ms_power_phase b = {0, 1, 0.5, cs1, NULL, fl1, zero, zero, zero, NULL};
    assert_int_equal(ms_power_phases_set(p, 0, &a, &err), MS_OK);
    assert_int_equal(ms_power_phases_set(p, 1, &b, &err), MS_OK);
    ms_power_result *r;
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
    NEAR(r->wall_s, 1.5);
    NEAR(r->phase_start_s[0], 0);
    NEAR(r->phase_start_s[1], 1.0);
    /* phase 0: dynamic 2 + 0.5 J, static 100 x (1 + 0.25), wait 100 x 0.75 */
    NEAR(r->phase_energy_j[0], 2.5 + 200);
    NEAR(r->phase_avg_w[0], 202.5);
    NEAR(r->phase_peak_w[0], (100 + 2.0) + (100 + 2.0)); /* 2 J / 1 s and 0.5 J / 0.25 s */
    NEAR(r->energy_j[MS_PART_WAIT], 75.0);
    NEAR(r->phase_energy_j[1], 2.0 + 100);
    NEAR(r->phase_avg_w[1], 204);
    NEAR(r->dev_energy_j[0], 2 + 100 + 1 + 50);
    NEAR(r->dev_energy_j[1], 0.5 + 25 + 75 + 1 + 50);
    NEAR(r->dev_wait_s[1], 0.75);
    NEAR(r->total_j, r->phase_energy_j[0] + r->phase_energy_j[1]);
    NEAR(r->peak_w, 204);
    assert_int_equal(r->peak_phase, 0);
    ms_power_result_free(r);
    ms_power_phases_free(p);
}

static double uni(ms_rng *g) { return ms_rng_uniform(g); }

/* random phases: the parts sum to the total, per device and per phase too */
static void test_parts_sum(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    ms_rng g;
    ms_rng_seed(&g, 42);
    for (int trial = 0; trial < 20; trial++) {
        uint32_t D = 1 + (uint32_t)ms_rng_below(&g, 9);
        uint64_t P = 1 + ms_rng_below(&g, 6);
        ms_power_phases *p;
        ms_error err = {0};
        assert_int_equal(ms_power_phases_new(D, P, &p, &err), MS_OK);
        p->precision = (ms_precision)ms_rng_below(&g, 3);
        for (uint64_t i = 0; i < P; i++) {
            double cs[9], cm[9], fl[9], hb[9], nv[9], nt[9], wall = 0;
            for (uint32_t d = 0; d < D; d++) {
                cs[d] = uni(&g);
                cm[d] = uni(&g) * 0.5;
                fl[d] = uni(&g) * 1e13;
                hb[d] = uni(&g) * 1e10;
                nv[d] = uni(&g) * 1e9;
                nt[d] = uni(&g) * 1e8;
                if (cs[d] + cm[d] > wall) wall = cs[d] + cm[d];
            }
            /* sometimes shorter than compute + comm (overlap), never shorter than compute */
            ms_power_phase ph = {i, 0, wall * (0.8 + 0.4 * uni(&g)), cs, cm, fl, hb, nv, nt, NULL};
            for (uint32_t d = 0; d < D; d++)
                if (cs[d] > ph.wall_s) cs[d] = ph.wall_s;
            assert_int_equal(ms_power_phases_set(p, i, &ph, &err), MS_OK);
        }
        p->tokens = 100;
        ms_power_result *r;
        assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
        double parts = 0, dev = 0, ph = 0, walls = 0;
        for (int k = 0; k < MS_PART_COUNT; k++) parts += r->energy_j[k];
        for (uint32_t d = 0; d < D; d++) dev += r->dev_energy_j[d];
        for (uint64_t i = 0; i < P; i++) {
            ph += r->phase_energy_j[i];
            walls += p->wall_s[i];
        }
        NEAR(parts, r->total_j);
        NEAR(dev, r->total_j);
        NEAR(ph, r->total_j);
        /* the static + wait parts are idle W x devices x wall time */
        NEAR(r->energy_j[MS_PART_STATIC] + r->energy_j[MS_PART_WAIT], c.idle_w * D * walls);
        assert_true(r->peak_w >= r->peak_phase_avg_w * (1 - 1e-12));
        ms_power_result_free(r);
        ms_power_phases_free(p);
    }
}

/* the same work, spread ever more unevenly: energy and waiting never fall */
static void test_imbalance_never_lowers_energy(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    ms_rng g;
    ms_rng_seed(&g, 7);
    for (int trial = 0; trial < 20; trial++) {
        const uint32_t D = 8;
        double load[8], sum = 0;
        for (uint32_t d = 0; d < D; d++) sum += load[d] = 1 + uni(&g);
        double prev_e = 0, prev_w = 0;
        for (int step = 0; step < 10; step++) {
            /* move a share of every other device's load onto device 0 */
            if (step > 0)
                for (uint32_t d = 1; d < D; d++) {
                    double mv = load[d] * 0.2;
                    load[d] -= mv;
                    load[0] += mv;
                }
            ms_power_phases *p;
            ms_error err = {0};
            assert_int_equal(ms_power_phases_new(D, 1, &p, &err), MS_OK);
            double cs[8], fl[8], hb[8], z[8] = {0}, wall = 0;
            for (uint32_t d = 0; d < D; d++) {
                cs[d] = load[d] * 1e-3;
                fl[d] = load[d] * 1e11;
                hb[d] = load[d] * 1e8;
                if (cs[d] > wall) wall = cs[d];
            }
            ms_power_phase ph = {0, 0, wall, cs, NULL, fl, hb, z, z, NULL};
            assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
            ms_power_result *r;
            assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
            if (step > 0) {
                assert_true(r->total_j >= prev_e * (1 - 1e-12));
                assert_true(r->energy_j[MS_PART_WAIT] >= prev_w * (1 - 1e-12));
            }
            prev_e = r->total_j;
            prev_w = r->energy_j[MS_PART_WAIT];
            ms_power_result_free(r);
            ms_power_phases_free(p);
        }
    }
}

/* the synthetic hot-expert scenario: a hotter few never lower the energy */
static void test_synthetic_hot(void **state) {
    (void)state;
    ms_hw_preset hw;
    ms_model_preset m;
    ms_error err = {0};
    assert_int_equal(ms_hw_preset_load("h100-sxm", &hw, &err), MS_OK);
    assert_int_equal(ms_model_preset_load("deepseek-v3", &m, &err), MS_OK);
    ms_energy_coeffs c;
    assert_int_equal(ms_energy_load("h100-sxm", &c, &err), MS_OK);
    double prev = 0, compute0 = 0;
    for (double hf = 1; hf <= 8; hf += 1) {
        ms_power_synth s = {2, 8, 3, 4096, 2, hf};
        ms_power_phases *p;
        assert_int_equal(ms_power_synthetic(&s, &hw, &m, MS_PREC_FP8, &p, &err), MS_OK);
        ms_power_result *r;
        assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
        assert_true(r->total_j >= prev * (1 - 1e-12));
        if (hf == 1) {
            NEAR(r->energy_j[MS_PART_WAIT], 0.0); /* balanced: nobody waits */
            compute0 = r->energy_j[MS_PART_COMPUTE];
        }
        /* the work is the same however it is spread: the compute part is constant */
        NEAR(r->energy_j[MS_PART_COMPUTE], compute0);
        prev = r->total_j;
        ms_power_result_free(r);
        ms_power_phases_free(p);
    }
    ms_power_synth bad = {2, 8, 3, 4096, 2, 9}; /* 2 x 9 > 16 devices' worth */
    ms_power_phases *p = NULL;
    assert_int_equal(ms_power_synthetic(&bad, &hw, &m, MS_PREC_FP8, &p, &err), MS_E_INPUT);
    assert_null(p);
}

static void test_bad_phases(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    ms_power_phases *p;
    ms_error err = {0};
    assert_int_equal(ms_power_phases_new(0, 1, &p, &err), MS_E_INPUT);
    assert_int_equal(ms_power_phases_new(2, 1, &p, &err), MS_OK);
    double cs[2] = {2.0, 0}, z[2] = {0, 0}, neg[2] = {-1, 0}, one[2] = {1e9, 0};
    ms_power_phase ph = {0, 0, 1.0, cs, NULL, z, z, z, z, NULL};
    ms_power_result *r = NULL;
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_E_INPUT); /* computes longer than the wall */
    assert_non_null(strstr(err.msg, "longer"));
    cs[0] = 0.5;
    ph.flops = neg;
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "flops"));
    ph.flops = one;
    ph.wall_s = 0;
    cs[0] = 0;
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_E_INPUT); /* energy without time */
    assert_int_equal(ms_power_phases_set(p, 5, &ph, &err), MS_E_INPUT);
    ph.flops = NULL;
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_E_INPUT);
    ms_energy_coeffs bad = coeffs();
    bad.idle_w = 800;
    ph.flops = z;
    ph.wall_s = 1;
    assert_int_equal(ms_power_phases_set(p, 0, &ph, &err), MS_OK);
    assert_int_equal(ms_power_compute(p, &bad, &r, &err), MS_E_INPUT);
    assert_null(r);
    ms_power_phases_free(p);
}

/* the simulator's per-device step, converted by hand */
static void test_sim_converter(void **state) {
    (void)state;
    ms_sim_record rec;
    memset(&rec, 0, sizeof rec);
    rec.batch = 2;
    rec.layer = 1;
    rec.layer_us = 100;
    double load[2] = {3, 1}, otok[2] = {2, 2}, dense[2] = {10, 10}, comp[2] = {60, 20}, disp[2] = {15, 15},
           comb[2] = {15, 15}, busy[2] = {70, 30}, idle[2] = {30, 70}, fl[2] = {1e9, 2e9}, hb[2] = {3e6, 4e6},
           si[2] = {100, 200}, se[2] = {300, 400}, ri[2] = {0, 0}, re[2] = {0, 0};
    ms_sim_step st = {&rec, 2, load, otok, dense, comp, disp, comb, busy, idle, fl, hb, si, se, ri, re, NULL};
    ms_power_phases *p;
    ms_error err = {0};
    assert_int_equal(ms_power_phases_new(2, 6, &p, &err), MS_OK);
    assert_int_equal(ms_power_phases_set_sim(p, 5, &st, &err), MS_OK);
    ms_power_phase v;
    ms_power_phases_get(p, 5, &v);
    assert_int_equal(v.batch, 2);
    assert_int_equal(v.layer, 1);
    NEAR(v.wall_s, 100e-6);
    NEAR(v.compute_s[0], 70e-6);
    NEAR(v.compute_s[1], 30e-6);
    NEAR(v.comm_s[0], 30e-6);
    NEAR(v.flops[1], 2e9);
    NEAR(v.hbm_bytes[0], 3e6);
    NEAR(v.nvlink_bytes[1], 200);
    NEAR(v.net_bytes[0], 300);
    st.flops = NULL; /* the mesh cost model carries no FLOPs */
    assert_int_equal(ms_power_phases_set_sim(p, 5, &st, &err), MS_E_INPUT);
    st.flops = fl;
    st.n_devices = 3;
    assert_int_equal(ms_power_phases_set_sim(p, 5, &st, &err), MS_E_INPUT);
    ms_power_phases_free(p);
}

/* every energy preset loads, has a source for every figure, and is coherent */
static void test_presets(void **state) {
    (void)state;
    static const char *gpus[] = {"a100", "b200", "h100-sxm", "h200", "h800", "seed-h100"};
    for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++) {
        ms_energy_coeffs c;
        ms_error err = {0};
        assert_int_equal(ms_energy_load(gpus[i], &c, &err), MS_OK);
        assert_string_equal(c.name, gpus[i]);
        assert_true(c.pj_per_flop[MS_PREC_FP8] <= c.pj_per_flop[MS_PREC_BF16]);
        assert_true(c.pj_per_flop[MS_PREC_BF16] < c.pj_per_flop[MS_PREC_FP32]);
        assert_true(c.idle_w < c.tdp_w && c.pue >= 1);
        /* the matching hardware preset exists: same GPU names */
        ms_hw_preset hw;
        assert_int_equal(ms_hw_preset_load(gpus[i], &hw, &err), MS_OK);
        /* derivation: (TDP - idle - HBM at full bandwidth) / dense BF16 peak */
        if (strcmp(gpus[i], "seed-h100") != 0) {
            double hbm_w = hw.hbm_tb_s * 1e12 * 8 * c.hbm_pj_per_bit * 1e-12;
            double want = (c.tdp_w - c.idle_w - hbm_w) / (hw.peak_tflops_bf16 * 1e12) * 1e12;
            assert_true(fabs(c.pj_per_flop[MS_PREC_BF16] - want) < 1e-3);
        }
    }
    ms_energy_coeffs c;
    ms_error err = {0};
    assert_int_equal(ms_energy_load("no-such-gpu", &c, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "energy-no-such-gpu.json"));
    assert_int_equal(ms_energy_load("bad/name?", &c, &err), MS_E_IO);
    /* a file with a coefficient lacking its source */
    char path[512];
    tu_tmp_path("energy", ".json", path, sizeof path);
    const char *txt = "{\"pj_per_flop_fp32\": {\"value\": 1, \"source\": \"\"}}";
    tu_write_file(path, txt, strlen(txt));
    assert_int_equal(ms_energy_load(path, &c, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "no source"));
    remove(path);
}

static void test_set(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs();
    ms_error err = {0};
    assert_int_equal(ms_energy_set_str(&c, "idle_w=55.5", &err), MS_OK);
    NEAR(c.idle_w, 55.5);
    assert_int_equal(ms_energy_set_str(&c, "pj_per_flop_fp8=0.1", &err), MS_OK);
    NEAR(c.pj_per_flop[MS_PREC_FP8], 0.1);
    assert_int_equal(ms_energy_set_str(&c, "switch_hops=1", &err), MS_OK);
    NEAR(ms_energy_net_pj_per_bit(&c), 2 * 10 + 20 + 2 * 5);
    assert_int_equal(ms_energy_set_str(&c, "nope=1", &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "hbm_pj_per_bit"));
    assert_int_equal(ms_energy_set_str(&c, "idle_w=-1", &err), MS_E_INPUT);
    assert_int_equal(ms_energy_set_str(&c, "idle_w=abc", &err), MS_E_INPUT);
    assert_int_equal(ms_energy_set_str(&c, "idle_w", &err), MS_E_INPUT);
    assert_int_equal(ms_energy_set_str(&c, "pue=0.5", &err), MS_E_INPUT);
    ms_precision pr;
    assert_int_equal(ms_precision_parse("fp16", &pr, &err), MS_OK);
    assert_int_equal(pr, MS_PREC_BF16);
    assert_int_equal(ms_precision_parse("int4", &pr, &err), MS_E_INPUT);
    NEAR(ms_precision_bytes(MS_PREC_FP8), 1);
}

static void test_read_json(void **state) {
    (void)state;
    char path[512];
    tu_tmp_path("phases", ".json", path, sizeof path);
    const char *good = "{\"devices\": 2, \"precision\": \"fp8\", \"tokens\": 4, \"phases\": ["
                       "{\"batch\": 0, \"layer\": 3, \"wall_s\": 1, \"compute_s\": [1, 0.5], \"flops\": [4e12, 0],"
                       " \"hbm_bytes\": [0, 0], \"nvlink_bytes\": [0, 0], \"net_bytes\": [0, 0]}]}";
    tu_write_file(path, good, strlen(good));
    ms_power_phases *p;
    ms_error err = {0};
    assert_int_equal(ms_power_phases_read_json(path, &p, &err), MS_OK);
    assert_int_equal(p->n_devices, 2);
    assert_int_equal(p->precision, MS_PREC_FP8);
    assert_int_equal(p->layer[0], 3);
    ms_energy_coeffs c = coeffs();
    ms_power_result *r;
    assert_int_equal(ms_power_compute(p, &c, &r, &err), MS_OK);
    NEAR(r->energy_j[MS_PART_COMPUTE], 1.0); /* 4e12 x 0.25 pJ */
    NEAR(r->energy_per_token_j, (1.0 + 200) / 4);
    ms_power_result_free(r);
    ms_power_phases_free(p);
    const char *bad = "{\"devices\": 2, \"phases\": [{\"wall_s\": 1, \"compute_s\": [1], \"flops\": [0, 0],"
                      " \"hbm_bytes\": [0, 0], \"nvlink_bytes\": [0, 0], \"net_bytes\": [0, 0]}]}";
    tu_write_file(path, bad, strlen(bad));
    assert_int_equal(ms_power_phases_read_json(path, &p, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "compute_s"));
    assert_non_null(strstr(err.msg, path));
    tu_write_file(path, "{", 1);
    assert_int_equal(ms_power_phases_read_json(path, &p, &err), MS_E_INPUT);
    remove(path);
    assert_int_equal(ms_power_phases_read_json(path, &p, &err), MS_E_IO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_formula),       cmocka_unit_test(test_one_device_by_hand),
        cmocka_unit_test(test_timeline_and_wait), cmocka_unit_test(test_parts_sum),
        cmocka_unit_test(test_imbalance_never_lowers_energy),
        cmocka_unit_test(test_synthetic_hot),     cmocka_unit_test(test_bad_phases),
        cmocka_unit_test(test_sim_converter),     cmocka_unit_test(test_presets),
        cmocka_unit_test(test_set),               cmocka_unit_test(test_read_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
