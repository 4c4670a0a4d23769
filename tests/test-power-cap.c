/* test-power-cap.c - the clock model of power caps (moesim/power.h, "power
 * caps"): hand-computed clocks, the closed form without HBM power, the
 * Newton root against the definition, the clock floor, row and cluster
 * budgets on a two-device case worked by hand, and limit checks. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include "moesim/power.h"

#define NEAR(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol) * fmax(1.0, fabs((double)(b))))

static ms_energy_coeffs coeffs(double alpha) {
    ms_energy_coeffs c;
    memset(&c, 0, sizeof c);
    c.freq_exponent = alpha;
    c.min_clock = 0.25;
    c.idle_w = 100;
    c.tdp_w = 700;
    c.pue = 1;
    return c;
}

static void test_power_at_clock(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs(2);
    NEAR(ms_power_at_clock(&c, 400, 200, 1.0), 700, 1e-15);
    /* 100 + 400 * 0.25 + 200 * 0.5 */
    NEAR(ms_power_at_clock(&c, 400, 200, 0.5), 300, 1e-15);
}

static void test_single_cap(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs(2);
    /* under the cap: full clock */
    assert_true(ms_power_cap_clock(&c, 700, 400, 200) == 1.0);
    assert_true(ms_power_cap_clock(&c, 1e9, 400, 200) == 1.0);
    /* no HBM power: 100 + 400 f^2 = 500 -> f = 1 */
    NEAR(ms_power_cap_clock(&c, 500, 400, 0), 1.0, 1e-12);
    /* 100 + 400 f^2 = 300 -> f = sqrt(0.5) */
    NEAR(ms_power_cap_clock(&c, 300, 400, 0), sqrt(0.5), 1e-12);
    /* alpha 3: 100 + 800 f^3 = 200 -> f = 0.5 */
    ms_energy_coeffs c3 = coeffs(3);
    NEAR(ms_power_cap_clock(&c3, 200, 800, 0), 0.5, 1e-12);
    /* with HBM power: 100 + 400 f^2 + 200 f = 400 -> f = (-200 + sqrt(40000 + 480000)) / 800 */
    NEAR(ms_power_cap_clock(&c, 400, 400, 200), (-200 + sqrt(520000.0)) / 800, 1e-12);
    /* alpha 2.4: the root satisfies the definition */
    ms_energy_coeffs c24 = coeffs(2.4);
    double f = ms_power_cap_clock(&c24, 450, 500, 150);
    assert_true(f > 0.25 && f < 1);
    NEAR(ms_power_at_clock(&c24, 500, 150, f), 450, 1e-10);
    /* the floor: 100 + 400 * 0.0625 = 125 > 110 -> min_clock */
    assert_true(ms_power_cap_clock(&c, 110, 400, 0) == 0.25);
}

/* two devices in one row, alpha 2, no HBM power: device 0 computes at 400 W
 * dynamic, device 1 at 100 W; idle 100 W each */
static void test_two_devices_by_hand(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs(2);
    const double comp[2] = {400, 100}, mem[2] = {0, 0};
    double clk[2];
    ms_power_cap cap;
    ms_power_cap_none(&cap);
    assert_false(ms_power_cap_active(&cap));
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk), 0);
    assert_true(clk[0] == 1.0 && clk[1] == 1.0);
    /* per-GPU cap 300 W: device 0 -> sqrt(0.5), device 1 (200 W) untouched */
    cap.gpu_w = 300;
    assert_true(ms_power_cap_active(&cap));
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk), 0);
    NEAR(clk[0], sqrt(0.5), 1e-12);
    assert_true(clk[1] == 1.0);
    /* cluster budget 500 W alone: 200 + 500 g^2 = 500 -> g = sqrt(0.6) for both */
    ms_power_cap_none(&cap);
    cap.cluster_w = 500;
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk), 0);
    NEAR(clk[0], sqrt(0.6), 1e-12);
    NEAR(clk[1], sqrt(0.6), 1e-12);
    /* the same as a row budget */
    ms_power_cap_none(&cap);
    cap.row_w = 500;
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk), 0);
    NEAR(clk[0], sqrt(0.6), 1e-12);
    /* per-GPU 300 W, then budget 450 W: device 0 at sqrt(0.5) draws 300, device
     * 1 200: 500 > 450; ceiling g < sqrt(0.5): 200 + 500 g^2 = 450 -> g = sqrt(0.5)
     * exactly at the boundary; budget 400: g = sqrt(0.4) for both */
    ms_power_cap_none(&cap);
    cap.gpu_w = 300;
    cap.cluster_w = 400;
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk), 0);
    NEAR(clk[0], sqrt(0.4), 1e-12);
    NEAR(clk[1], sqrt(0.4), 1e-12);
    /* a budget that min_clock cannot meet: 200 + 500/16 = 231.25 > 220 */
    ms_power_cap_none(&cap);
    cap.cluster_w = 220;
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 2, comp, mem, clk), 2);
    assert_true(clk[0] == 0.25 && clk[1] == 0.25);
    /* two rows of one device each, row budget 300: device 0 -> sqrt(0.5), device 1 untouched */
    ms_power_cap_none(&cap);
    cap.row_w = 300;
    assert_int_equal(ms_power_cap_clocks(&c, &cap, 2, 1, comp, mem, clk), 0);
    NEAR(clk[0], sqrt(0.5), 1e-12);
    assert_true(clk[1] == 1.0);
}

/* a tighter limit never raises a clock */
static void test_monotone(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs(2.4);
    ms_rng rng;
    ms_rng_seed(&rng, 3);
    double comp[16], mem[16], a[16], b[16];
    for (int trial = 0; trial < 200; trial++) {
        for (int d = 0; d < 16; d++) {
            comp[d] = 600 * ms_rng_uniform(&rng);
            mem[d] = 150 * ms_rng_uniform(&rng);
        }
        ms_power_cap hi, lo;
        ms_power_cap_none(&hi);
        hi.gpu_w = 200 + 500 * ms_rng_uniform(&rng);
        hi.cluster_w = 16 * (120 + 500 * ms_rng_uniform(&rng));
        lo = hi;
        lo.gpu_w *= 0.9;
        lo.cluster_w *= 0.9;
        ms_power_cap_clocks(&c, &hi, 16, 4, comp, mem, a);
        ms_power_cap_clocks(&c, &lo, 16, 4, comp, mem, b);
        double sum = 0;
        for (int d = 0; d < 16; d++) {
            assert_true(b[d] <= a[d] + 1e-12);
            assert_true(b[d] >= c.min_clock && a[d] <= 1);
            sum += ms_power_at_clock(&c, comp[d], mem[d], b[d]);
        }
        if (sum > lo.cluster_w) /* only when even min_clock cannot meet it */
            for (int d = 0; d < 16; d++) assert_true(b[d] == c.min_clock);
    }
}

static void test_checks(void **state) {
    (void)state;
    ms_energy_coeffs c = coeffs(2);
    ms_power_cap cap;
    ms_error err = {0};
    ms_power_cap_none(&cap);
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_OK);
    cap.gpu_w = 90;
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "per-GPU cap"));
    cap.gpu_w = -1;
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_E_INPUT);
    cap.gpu_w = NAN;
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_E_INPUT);
    ms_power_cap_none(&cap);
    cap.row_w = 400; /* 4 x 100 W idle */
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_E_INPUT);
    assert_non_null(strstr(err.msg, "row budget"));
    ms_power_cap_none(&cap);
    cap.cluster_w = 801;
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_OK);
    cap.cluster_w = 800;
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 4, &err), MS_E_INPUT);
    assert_int_equal(ms_power_cap_check(&cap, &c, 8, 3, &err), MS_E_INPUT);
    /* the coefficients themselves */
    ms_energy_coeffs bad = c;
    assert_int_equal(ms_energy_set(&bad, "freq_exponent", 0.5, &err), MS_E_INPUT);
    assert_int_equal(ms_energy_set(&bad, "min_clock", 0, &err), MS_E_INPUT);
    assert_int_equal(ms_energy_set(&bad, "min_clock", 1.5, &err), MS_E_INPUT);
    assert_int_equal(ms_energy_set(&bad, "freq_exponent", 3, &err), MS_OK);
    assert_true(bad.freq_exponent == 3);
    /* every preset carries both, sourced */
    ms_energy_coeffs h;
    assert_int_equal(ms_energy_load("h100-sxm", &h, &err), MS_OK);
    assert_true(h.freq_exponent >= 2 && h.freq_exponent <= 3);
    assert_true(h.min_clock > 0 && h.min_clock < 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_at_clock),
        cmocka_unit_test(test_single_cap),
        cmocka_unit_test(test_two_devices_by_hand),
        cmocka_unit_test(test_monotone),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
