/* synth.c - a synthetic hot-expert scenario as power phases (moesim/power.h). */
#include "moesim/power.h"

#include <math.h>
#include <string.h>

#include "moesim/sim.h"

ms_status ms_power_synthetic(const ms_power_synth *s, const ms_hw_preset *hw, const ms_model_preset *m,
                             ms_precision prec, ms_power_phases **out, ms_error *err) {
    *out = NULL;
    if (!s->rows || !s->cols || !s->layers || !s->tokens)
        return ms_error_set(err, MS_E_INPUT, "synthetic: rows, cols, layers and tokens must be positive");
    uint64_t D64 = (uint64_t)s->rows * s->cols;
    if (D64 > (1u << 20)) return ms_error_set(err, MS_E_INPUT, "synthetic: %llu devices is too many",
                                              (unsigned long long)D64);
    uint32_t D = (uint32_t)D64;
    if (s->hot > D) return ms_error_set(err, MS_E_INPUT, "synthetic: %u hot devices of %u", s->hot, D);
    double hf = s->hot ? s->hot_factor : 1.0;
    if (!(hf >= 1) || (s->hot && hf > (double)D / s->hot))
        return ms_error_set(err, MS_E_INPUT, "synthetic: hot factor %g must be in 1..%g (devices / hot devices)", hf,
                            s->hot ? (double)D / s->hot : 1.0);
    if (!m->routed_experts || !m->top_k || !m->hidden || !m->moe_intermediate)
        return ms_error_set(err, MS_E_INPUT, "synthetic: model %s lacks experts, top-k or sizes", m->name);
    ms_power_phases *p = NULL;
    ms_status st = ms_power_phases_new(D, s->layers, &p, err);
    if (st != MS_OK) return st;
    p->precision = prec;
    p->tokens = (double)s->tokens;
    double T = (double)s->tokens, k = m->top_k, h = m->hidden, in = m->moe_intermediate;
    double wb = m->expert_weight_bytes, ab = 2.0; /* activations in BF16 */
    double tf = prec == MS_PREC_FP8 ? hw->peak_tflops_fp8 : prec == MS_PREC_FP32 ? hw->peak_tflops_bf16 / 2 : hw->peak_tflops_bf16;
    double peak = tf * 1e12 * hw->mfu, bw = hw->hbm_tb_s * 1e12 * hw->hbm_util;
    double nvbw = hw->nvlink_gb_s * 1e9 * hw->nvlink_efficiency, netbw = hw->nic_gb_s * 1e9 * hw->net_efficiency;
    double e_dev = ceil((double)m->routed_experts / D);
    double mean = T * k / D;
    double rest = D > s->hot ? (T * k - s->hot * hf * mean) / (D - s->hot) : 0;
    double tok = T / D;
    double remote = D > 1 ? (D - 1.0) / D : 0, fin = D > 1 ? (s->cols - 1.0) / (D - 1.0) : 0, fout = 1.0 - fin;
    double sh_f = m->shared_experts * 2.0 * 3.0 * h * m->shared_intermediate;
    double sh_w = m->shared_experts * 3.0 * h * m->shared_intermediate * wb;
    for (uint32_t l = 0; l < s->layers; l++) {
        ms_power_phase v;
        ms_power_phases_get(p, l, &v);
        double *comp = (double *)v.compute_s, *comm = (double *)v.comm_s, *fl = (double *)v.flops,
               *hb = (double *)v.hbm_bytes, *nv = (double *)v.nvlink_bytes, *nt = (double *)v.net_bytes;
        double mx_disp = 0, mx_comp = 0, mx_comb = 0;
        for (uint32_t d = 0; d < D; d++) {
            double ld = d < s->hot ? hf * mean : rest;
            fl[d] = ld * 2.0 * 3.0 * h * in + tok * (2.0 * m->dense_params_per_layer + sh_f);
            hb[d] = e_dev * 3.0 * h * in * wb + ld * (2.0 * h + 3.0 * in) * ab + m->dense_params_per_layer * wb + sh_w +
                    tok * 4.0 * h * ab;
            comp[d] = fmax(fl[d] / peak, hb[d] / bw);
            /* dispatch: send own tokens' copies, receive ld; combine: the reverse */
            double ds = tok * k * m->dispatch_bytes * remote, dr = ld * m->dispatch_bytes * remote;
            double cs2 = ld * m->combine_bytes * remote, cr = tok * k * m->combine_bytes * remote;
            double a_nv = hw->nvlink_latency_us * 1e-6, a_net = (fout > 0 ? hw->net_latency_us : 0) * 1e-6;
            double alpha = D > 1 ? fmax(a_nv * (fin > 0), a_net) : 0;
            double t_disp = D > 1 ? alpha + fmax(fmax(ds, dr) * fin / nvbw, fmax(ds, dr) * fout / netbw) : 0;
            double t_comb = D > 1 ? alpha + fmax(fmax(cs2, cr) * fin / nvbw, fmax(cs2, cr) * fout / netbw) : 0;
            comm[d] = t_disp + t_comb;
            nv[d] = (ds + cs2) * fin;
            nt[d] = (ds + cs2) * fout;
            if (t_disp > mx_disp) mx_disp = t_disp;
            if (comp[d] > mx_comp) mx_comp = comp[d];
            if (t_comb > mx_comb) mx_comb = t_comb;
        }
        p->wall_s[l] = mx_disp + mx_comp + mx_comb;
        p->layer[l] = l;
        p->batch[l] = 0;
    }
    *out = p;
    return MS_OK;
}
