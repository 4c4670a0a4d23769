/* mesh_fit.c - the coefficients (A, B, C, D) of moe-balance's mesh cost model:
 * a minimum-norm least-squares fit (one-sided Jacobi SVD) to its measured
 * dispatch table. */
#include "moesim/sim.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* moe-balance's measured dispatch times (us) for E_col = 1..8. The best-case
 * value at E_col = 2 (96.183) repeats the worst-case one and looks like a
 * copying slip; it is kept here for equivalence (MS_MESH_TABLE_CORRECTED
 * replaces it). */
const double ms_mesh_table_best[8] = {26.868, 96.183, 33.005, 36.073, 39.141, 42.209, 45.277, 48.345};
const double ms_mesh_table_avg[8] = {55.258, 66.713, 78.169, 89.624, 101.079, 112.535, 123.990, 135.445};
const double ms_mesh_table_worst[8] = {88.238, 96.183, 104.129, 112.074, 120.020, 127.965, 135.911, 143.856};

#define LSQ_MAX_N 16
#define LSQ_MAX_M 256

int ms_lstsq_min_norm(const double *a, const double *b, size_t m, size_t n, double rcond, double *x) {
    if (n == 0 || n > LSQ_MAX_N || m == 0 || m > LSQ_MAX_M) return -1;
    /* One-sided Jacobi (Hestenes): rotate column pairs of U = A until they are
     * orthogonal; then A = U V^T with U's columns = sigma_j u_j. */
    double u[LSQ_MAX_M * LSQ_MAX_N];
    double v[LSQ_MAX_N * LSQ_MAX_N];
    memcpy(u, a, m * n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) v[i * n + j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0;
        for (size_t p = 0; p + 1 < n; p++) {
            for (size_t q = p + 1; q < n; q++) {
                double alpha = 0, beta = 0, gamma = 0;
                for (size_t i = 0; i < m; i++) {
                    double up = u[i * n + p], uq = u[i * n + q];
                    alpha += up * up;
                    beta += uq * uq;
                    gamma += up * uq;
                }
                if (gamma == 0 || fabs(gamma) <= DBL_EPSILON * sqrt(alpha * beta)) continue;
                double c_ = fabs(gamma) / sqrt(alpha * beta);
                if (c_ > off) off = c_;
                double zeta = (beta - alpha) / (2 * gamma);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + sqrt(1 + zeta * zeta));
                double c = 1 / sqrt(1 + t * t), s = c * t;
                for (size_t i = 0; i < m; i++) {
                    double up = u[i * n + p], uq = u[i * n + q];
                    u[i * n + p] = c * up - s * uq;
                    u[i * n + q] = s * up + c * uq;
                }
                for (size_t i = 0; i < n; i++) {
                    double vp = v[i * n + p], vq = v[i * n + q];
                    v[i * n + p] = c * vp - s * vq;
                    v[i * n + q] = s * vp + c * vq;
                }
            }
        }
        if (off <= DBL_EPSILON) break;
    }
    double sigma[LSQ_MAX_N], smax = 0;
    for (size_t j = 0; j < n; j++) {
        double s2 = 0;
        for (size_t i = 0; i < m; i++) s2 += u[i * n + j] * u[i * n + j];
        sigma[j] = sqrt(s2);
        if (sigma[j] > smax) smax = sigma[j];
    }
    if (rcond < 0) rcond = DBL_EPSILON * (double)(m > n ? m : n);
    double tol = rcond * smax;
    int rank = 0;
    for (size_t j = 0; j < n; j++) x[j] = 0;
    for (size_t j = 0; j < n; j++) {
        if (!(sigma[j] > tol)) continue;
        rank++;
        /* coefficient along v_j: (u_j . b) / sigma_j, u_j = U[:, j] / sigma_j */
        double dot = 0;
        for (size_t i = 0; i < m; i++) dot += u[i * n + j] * b[i];
        double w = dot / (sigma[j] * sigma[j]);
        for (size_t i = 0; i < n; i++) x[i] += w * v[i * n + j];
    }
    return rank;
}

ms_status ms_mesh_fit(uint32_t rows, ms_mesh_table table, double coeffs[4], ms_error *err) {
    if (rows == 0) return ms_error_set(err, MS_E_INPUT, "mesh cost model: the cluster has 0 rows");
    double best[8];
    memcpy(best, ms_mesh_table_best, sizeof best);
    if (table == MS_MESH_TABLE_CORRECTED) best[1] = 0.5 * (best[0] + best[2]);
    const double *tabs[3] = {best, ms_mesh_table_avg, ms_mesh_table_worst};
    const double hops[3] = {0.0, (rows - 1) / 2.0, rows / 2.0};
    double a[24 * 4], b[24];
    size_t m = 0;
    for (int c = 0; c < 3; c++)
        for (int e = 0; e < 8; e++, m++) {
            a[m * 4 + 0] = 1.0;
            a[m * 4 + 1] = e + 1;
            a[m * 4 + 2] = hops[c];
            a[m * 4 + 3] = hops[c];
            b[m] = tabs[c][e];
        }
    if (ms_lstsq_min_norm(a, b, m, 4, -1.0, coeffs) < 0)
        return ms_error_set(err, MS_E_INTERNAL, "mesh cost model: least-squares fit failed");
    return MS_OK;
}
