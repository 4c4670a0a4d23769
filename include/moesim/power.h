/*
 * moesim/power.h - stage 5: energy and power of a run.
 *
 * Energy of one device in one phase (a (batch, layer) of a simulation, or a
 * whole analytic run):
 *   compute  = FLOPs x pJ/FLOP of the precision
 *   memory   = HBM bytes x 8 x pJ/bit
 *   nvlink   = NVLink bytes sent x 8 x pJ/bit (GPU -> NVSwitch -> GPU)
 *   network  = network bytes sent x 8 x (2 NICs + switch hops x switch +
 *              (hops + 1) x optics) pJ/bit
 *   static   = idle W x the time the device is active
 *   wait     = idle W x the time it waits for the slowest device
 * A device that computed at clock fraction f < 1 (a power cap, see "power
 * caps") spends compute = FLOPs x pJ/FLOP x f^(alpha - 1) (dynamic energy
 * per operation ~ V^2 ~ f^(alpha - 1)); its compute_s is then the throttled
 * time, so static and wait come from the longer phase.
 * A device is active for min(wall, compute_s + comm_s); it then waits (idle
 * W) until the phase's wall time, which is the slowest device's. While
 * computing it draws idle W + (compute + memory energy) / compute_s, while
 * transferring idle W + (NVLink + network energy) / comm_s, both at once when
 * compute_s + comm_s exceeds the wall time (overlap). The instantaneous peak
 * of the cluster in a phase is the sum over devices of their busiest power
 * (every device at it at once: an upper bound, exact when the phases of all
 * devices start together as in the simulator's dispatch / compute / combine
 * steps). The parts sum to the total; docs/MODEL.md ("Power model") gives every coefficient with its
 * source (presets/energy-<gpu>.json).
 */
#ifndef MOESIM_POWER_H
#define MOESIM_POWER_H

#include <stdbool.h>
#include <stdio.h>
#include "moesim/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ms_sim_step;       /* moesim/sim.h */
struct ms_sim_throttle;   /* moesim/sim.h */
struct ms_hw_preset;      /* moesim/sim.h */
struct ms_model_preset;   /* moesim/sim.h */

/* ------------------------------------------------------------ precision */

typedef enum ms_precision { MS_PREC_FP32 = 0, MS_PREC_BF16 = 1, MS_PREC_FP8 = 2 } ms_precision;
#define MS_PREC_COUNT 3

/* "fp32", "bf16", "fp8". Never NULL. */
const char *ms_precision_name(ms_precision p);
/* Accepts fp32 (also tf32), bf16 (also fp16), fp8. MS_E_INPUT otherwise. */
ms_status ms_precision_parse(const char *s, ms_precision *out, ms_error *err);
/* Bytes per value: 4, 2, 1. */
double ms_precision_bytes(ms_precision p);

/* --------------------------------------------------------- coefficients */

/* Energy coefficients of one GPU type and its node, site and network. */
typedef struct ms_energy_coeffs {
    char name[64];                    /* the GPU (hardware preset name) */
    double pj_per_flop[MS_PREC_COUNT]; /* dynamic energy per FLOP, by precision */
    double hbm_pj_per_bit;            /* HBM read or write */
    double nvlink_pj_per_bit;         /* one bit GPU -> NVSwitch -> GPU */
    double nic_pj_per_bit;            /* one NIC crossing (a transfer crosses two) */
    double switch_pj_per_bit;         /* one network switch crossing */
    double optics_pj_per_bit;         /* one cable with its transceivers */
    double switch_hops;               /* switches between two nodes (3: leaf-spine-leaf) */
    double freq_exponent;             /* alpha: FLOP (core) dynamic power scales as clock^alpha */
    double min_clock;                 /* lowest clock fraction a power cap may impose (0, 1] */
    double idle_w;                    /* static power of a powered, idle GPU */
    double tdp_w;                     /* board power limit */
    double node_overhead_w;           /* per GPU: host CPUs, fans, NVSwitches, NICs at full load */
    double pue;                       /* site power usage effectiveness (>= 1) */
} ms_energy_coeffs;

/* Network energy of one bit between nodes:
 * 2 nic + switch_hops * switch + (switch_hops + 1) * optics. Cannot fail. */
double ms_energy_net_pj_per_bit(const ms_energy_coeffs *c);

/* Loads presets/energy-NAME.json (ms_preset_dir()) or a path (anything with a
 * '/' or ending in .json). Every coefficient is {"value": x, "source": "..."}
 * with a non-empty source; all are required. Fails MS_E_INPUT naming the file
 * and key for a missing or unsourced coefficient, a negative value, idle_w >=
 * tdp_w, pue < 1, or an unknown preset name (listing the file it looked
 * for); MS_E_IO when a path cannot be read. */
ms_status ms_energy_load(const char *name_or_path, ms_energy_coeffs *out, ms_error *err);

/* Sets one coefficient by its preset key (pj_per_flop_fp32, pj_per_flop_bf16,
 * pj_per_flop_fp8, hbm_pj_per_bit, nvlink_pj_per_bit, nic_pj_per_bit,
 * switch_pj_per_bit, optics_pj_per_bit, switch_hops, freq_exponent,
 * min_clock, idle_w, tdp_w, node_overhead_w, pue). Fails MS_E_INPUT for an
 * unknown key (listing the keys) or a value out of range (negative, NaN,
 * pue < 1, freq_exponent < 1, min_clock outside (0, 1]). */
ms_status ms_energy_set(ms_energy_coeffs *c, const char *key, double value, ms_error *err);
/* "KEY=VALUE" form of ms_energy_set (the CLI's --coef). MS_E_INPUT. */
ms_status ms_energy_set_str(ms_energy_coeffs *c, const char *assignment, ms_error *err);
/* Checks the relations between coefficients (idle_w < tdp_w, freq_exponent
 * >= 1, 0 < min_clock <= 1, ...). MS_E_INPUT. */
ms_status ms_energy_check(const ms_energy_coeffs *c, ms_error *err);

/* The coefficients as a JSON object (keys as in the preset files, values
 * only). NULL when out of memory. */
struct json_t *ms_energy_json(const ms_energy_coeffs *c);

/* Dynamic energy (J) of work: FLOPs at precision p, HBM bytes, bytes sent
 * over NVLink and over the network. Cannot fail. */
double ms_energy_dynamic_j(const ms_energy_coeffs *c, ms_precision p, double flops, double hbm_bytes,
                           double nvlink_bytes, double net_bytes);

/* ------------------------------------------------------------ phases */

/* One phase as the power model reads it: every array has n_devices entries.
 * comm_s may be NULL (no communication time of its own). */
typedef struct ms_power_phase {
    uint64_t batch;
    uint32_t layer;
    double wall_s;              /* the phase's wall time (its slowest device) */
    const double *compute_s;    /* busy computing (kernels: FLOPs and HBM traffic) */
    const double *comm_s;       /* busy communicating outside compute (NULL = 0) */
    const double *flops;
    const double *hbm_bytes;
    const double *nvlink_bytes; /* sent inside the node */
    const double *net_bytes;    /* sent between nodes */
    const double *clock;        /* clock fraction (0, 1] the device computed at (NULL = 1) */
} ms_power_phase;

#define MS_POWER_FIELDS 7 /* compute_s, comm_s, flops, hbm_bytes, nvlink_bytes, net_bytes, clock */

/* A run as a sequence of phases on n_devices devices (phases run one after
 * another). Storage is dense: dev[(phase * MS_POWER_FIELDS + field) *
 * n_devices + device]. */
typedef struct ms_power_phases {
    uint32_t n_devices;
    uint64_t n_phases;
    ms_precision precision;   /* of the FLOPs (default bf16) */
    double tokens;            /* tokens the run served (energy per token); 0 = unknown */
    uint64_t *batch;          /* [n_phases] */
    uint32_t *layer;          /* [n_phases] */
    double *wall_s;           /* [n_phases] */
    double *dev;              /* see above */
} ms_power_phases;

/* n_phases zeroed phases of n_devices devices (clocks 1). MS_E_INPUT when n_devices or
 * n_phases is 0; MS_E_NOMEM (also when the size overflows). */
ms_status ms_power_phases_new(uint32_t n_devices, uint64_t n_phases, ms_power_phases **out, ms_error *err);
void ms_power_phases_free(ms_power_phases *p);

/* Copies ph into phase i. Safe to call for different i from several threads.
 * MS_E_INPUT when i is out of range or a required array is NULL. */
ms_status ms_power_phases_set(ms_power_phases *p, uint64_t i, const ms_power_phase *ph, ms_error *err);

/* A view of phase i (pointers into p). i must be < n_phases. */
void ms_power_phases_get(const ms_power_phases *p, uint64_t i, ms_power_phase *out);

/* Converter from the simulator (moesim/sim.h, roofline cost model): phase i
 * becomes step's (batch, layer) with wall = rec->layer_us, compute_s =
 * busy_us (dense + expert compute), comm_s = dispatch_us + combine_us,
 * flops, hbm_bytes, nvlink_bytes = send_intra_bytes, net_bytes =
 * send_inter_bytes (bytes counted once, at the sender), clock = step->clock
 * (1 when NULL), all in seconds and bytes; compute_s is clipped to the wall
 * time (the schedule may round).
 * Thread-safe for different i. MS_E_INPUT when i is out of range, the
 * device counts differ, or the step lacks flops/bytes (the mesh cost model
 * has none). */
ms_status ms_power_phases_set_sim(ms_power_phases *p, uint64_t i, const struct ms_sim_step *step,
                                  ms_error *err);

/* Reads phases from JSON: {"devices": N, "precision": "bf16" (optional),
 * "tokens": T (optional), "phases": [{"batch": b, "layer": l, "wall_s": w,
 * "compute_s": [N], "comm_s": [N] (optional), "flops": [N], "hbm_bytes": [N],
 * "nvlink_bytes": [N], "net_bytes": [N], "clock": [N] (optional, 1)}, ...]}.
 * Fails MS_E_IO if
 * unreadable, MS_E_INPUT naming the file, phase and field on anything
 * malformed (wrong array length, non-numbers); MS_E_NOMEM. */
ms_status ms_power_phases_read_json(const char *path, ms_power_phases **out, ms_error *err);

/* A synthetic scenario without a trace: one batch of `tokens` tokens through
 * `layers` MoE layers on rows x cols devices (a row is a node), experts
 * spread evenly, and `hot` devices (the first ones) carrying hot_factor x
 * the mean expert load (1 = balanced; at most devices / hot). Per device:
 * expert FLOPs 2 x 3 h i per assignment, attention and shared experts per
 * token of its 1/devices share, HBM = its experts' weights + activations,
 * dispatch/combine bytes from the model preset, NVLink inside a row and the
 * network between rows (alpha-beta, the preset's efficiencies); a layer's
 * wall time = slowest dispatch + slowest compute + slowest combine, as the
 * simulator's roofline does without overlap. */
typedef struct ms_power_synth {
    uint32_t rows, cols;
    uint32_t layers;
    uint64_t tokens;
    uint32_t hot;
    double hot_factor;
} ms_power_synth;

/* Builds the phases. MS_E_INPUT for zero sizes, hot > devices or hot_factor
 * outside 1..devices / hot; MS_E_NOMEM. */
ms_status ms_power_synthetic(const ms_power_synth *s, const struct ms_hw_preset *hw,
                             const struct ms_model_preset *m, ms_precision prec, ms_power_phases **out,
                             ms_error *err);

/* ------------------------------------------------------------ power caps */

/* Power limits, as a GPU's board power limit and a site's budget enforce
 * them: a device whose demand would exceed its limit lowers its SM clock.
 * Clock model (docs/MODEL.md, "Power caps"): a device computing for t
 * seconds at full clock with FLOP energy E_c and HBM energy E_m draws
 *   P(f) = idle_w + (E_c / t) f^alpha + (E_m / t) f
 * at clock fraction f: its kernels take t / f, FLOP energy per operation
 * scales with V^2 ~ f^(alpha - 1), HBM energy per byte does not change
 * (the same bytes over a longer time). Communication is not throttled.
 * A per-GPU cap C gives f = 1 when P(1) <= C, else the f with P(f) = C,
 * never below min_clock (then the cap is not met and counted). A row or
 * cluster budget B bounds the sum of its devices' power: when the devices
 * at their own caps exceed it, every device of the row (cluster) is held to
 * one common clock ceiling g, the largest with sum P(min(f_d, g)) <= B
 * (never below min_clock). */
typedef struct ms_power_cap {
    double gpu_w;       /* per-GPU limit, W; INFINITY = none */
    double row_w;       /* budget of each row (node) of GPUs, W; INFINITY = none */
    double cluster_w;   /* budget of all GPUs together, W; INFINITY = none */
} ms_power_cap;

/* Every limit INFINITY (no throttling). Cannot fail. */
void ms_power_cap_none(ms_power_cap *cap);
/* true when some limit is finite. Cannot fail. */
bool ms_power_cap_active(const ms_power_cap *cap);
/* Checks the limits against the coefficients: each positive (or INFINITY),
 * the per-GPU cap above idle_w, a row budget above cols x idle_w, a cluster
 * budget above devices x idle_w (idle GPUs cannot be throttled below idle).
 * MS_E_INPUT naming the limit. */
ms_status ms_power_cap_check(const ms_power_cap *cap, const ms_energy_coeffs *c, uint32_t n_devices, uint32_t cols,
                             ms_error *err);

/* P(f) above for a device with compute power comp_w = E_c / t and memory
 * power mem_w = E_m / t at full clock. Cannot fail. */
double ms_power_at_clock(const ms_energy_coeffs *c, double comp_w, double mem_w, double f);

/* The clock fraction in [min_clock, 1] under a cap of cap_w W: 1 when
 * P(1) <= cap_w, else the root of P(f) = cap_w (Newton's method from f = 1,
 * which converges from above as P is convex and increasing; to 1e-12), or
 * min_clock when even that draws more. Cannot fail. */
double ms_power_cap_clock(const ms_energy_coeffs *c, double cap_w, double comp_w, double mem_w);

/* Clock fractions of the n_devices devices of one phase (device d in row
 * d / cols) under cap: per-GPU caps first, then each row's budget, then the
 * cluster's (a ceiling only lowers clocks). comp_w / mem_w as above (0 for a
 * device without compute: it draws idle_w and keeps clock 1). Writes
 * clock[n_devices]; returns how many devices could not be held to their
 * limits even at min_clock (0 when every limit is met). Cannot fail. */
uint32_t ms_power_cap_clocks(const ms_energy_coeffs *c, const ms_power_cap *cap, uint32_t n_devices, uint32_t cols,
                             const double *comp_w, const double *mem_w, double *clock);

/* Power caps for the simulator (moesim/sim.h, ms_sim_opts.throttle): a
 * device that computed busy_us at full clock with `flops` FLOPs and
 * `hbm_bytes` HBM bytes draws comp_w = flops x pJ/FLOP (of the precision) /
 * busy and mem_w = hbm_bytes x 8 x hbm pJ/bit / busy; ms_power_cap_clocks
 * gives the clocks. */
typedef struct ms_power_throttle {
    ms_energy_coeffs coeffs;
    ms_power_cap cap;
    ms_precision precision;
    uint32_t cols;              /* devices per row (node) */
} ms_power_throttle;

/* Fills t (copies c and cap) and points out at it: out->clocks =
 * ms_power_throttle_clocks, out->ctx = t (t must outlive the runs). Fails
 * MS_E_INPUT when c fails ms_energy_check or cap fails ms_power_cap_check
 * for n_devices in rows of cols. */
ms_status ms_power_throttle_init(ms_power_throttle *t, const ms_energy_coeffs *c, const ms_power_cap *cap,
                                 ms_precision precision, uint32_t n_devices, uint32_t cols,
                                 struct ms_sim_throttle *out, ms_error *err);
/* The callback (signature of ms_sim_throttle.clocks); ctx is an
 * ms_power_throttle. Returns the devices whose limits could not be met.
 * Thread-safe (reads ctx only). Cannot fail. */
uint32_t ms_power_throttle_clocks(void *ctx, uint32_t n_devices, const double *busy_us, const double *flops,
                                  const double *hbm_bytes, double *clock, double *scratch);

/* ------------------------------------------------------------ results */

typedef enum ms_power_part {
    MS_PART_COMPUTE = 0,
    MS_PART_MEMORY = 1,
    MS_PART_NVLINK = 2,
    MS_PART_NETWORK = 3,
    MS_PART_STATIC = 4, /* idle power while active */
    MS_PART_WAIT = 5    /* idle power while waiting for the slowest device */
} ms_power_part;
#define MS_PART_COUNT 6

/* "compute", "memory", "nvlink", "network", "static", "wait". */
const char *ms_power_part_name(ms_power_part p);

typedef struct ms_power_result {
    uint32_t n_devices;
    uint64_t n_phases;
    double wall_s;                   /* sum of phase wall times */
    double tokens;
    double energy_j[MS_PART_COUNT];  /* cluster totals by part */
    double total_j;                  /* sum of the parts */
    double avg_w;                    /* total_j / wall_s (0 when wall_s is 0) */
    double peak_w;                   /* largest instantaneous cluster power (see above) */
    uint64_t peak_phase;             /* the phase where it happens */
    double peak_phase_avg_w;         /* largest phase-average cluster power */
    double energy_per_token_j;       /* total_j / tokens (0 when tokens is 0) */
    double max_device_w;             /* largest instantaneous power of one device */
    uint64_t over_tdp;               /* (phase, device) pairs whose busiest power exceeds tdp_w */
    double device_power_imbalance;   /* max over devices of mean power / mean over devices */
    /* per device [n_devices] */
    double *dev_energy_j, *dev_active_s, *dev_wait_s, *dev_peak_w;
    /* per phase [n_phases]: start time, cluster average power, instantaneous
     * peak (every active device at once), energy */
    double *phase_start_s, *phase_avg_w, *phase_peak_w, *phase_energy_j;
} ms_power_result;

/* Prices every phase with c (see the top of this file). Fails MS_E_INPUT
 * naming the phase and device for a negative or non-finite figure, or a
 * device computing longer than its phase's wall time (beyond a relative
 * 1e-6); MS_E_INPUT when c fails ms_energy_check; MS_E_NOMEM. */
ms_status ms_power_compute(const ms_power_phases *in, const ms_energy_coeffs *c, ms_power_result **out,
                           ms_error *err);
void ms_power_result_free(ms_power_result *r);

/* One device in one phase: active seconds, average power while active (W,
 * idle included) and its dynamic energy. Cannot fail (phase/device in range). */
void ms_power_device_phase(const ms_power_phases *in, const ms_energy_coeffs *c, uint64_t phase, uint32_t device,
                           double *active_s, double *active_w, double *dynamic_j);

/* The result as a JSON object: totals, parts {J, share}, grouped shares
 * (compute, memory, communication, idle), power figures, per-device arrays,
 * and, when timeline is true, per-phase arrays. NULL when out of memory. */
struct json_t *ms_power_result_json(const ms_power_result *r, bool timeline);

#ifdef __cplusplus
}
#endif
#endif
