#!/usr/bin/env bash
# results.sh - reproduces docs/RESULTS.md, "Placement quality on held-out
# requests": every placement algorithm is computed on the training half of a
# trace's requests (a seeded split, moesim's TRACE@train), then every
# placement is simulated with every routing policy on the other half
# (TRACE@eval) over the very same batches (moesim compare). `search` is run
# once per routing policy, optimising the mean imbalance the simulator
# reports for that policy on the training requests.
#
# usage: scripts/results.sh [BUILD_DIR]      (default build/; a few minutes on 2 cores)
# env:   MOESIM_BIN   the moesim binary (default BUILD_DIR/moesim)
#        MOESIM_DATA  the real traces (default ../shared/data; configs whose trace is absent are skipped)
#        OUT          where placements and CSVs go (default: a new /tmp/moesim-results.XXXXXX)
#        QUICK=1      a tenth of the search iterations (a quick look, not the documented numbers)
#        PARTS        which parts to run, space-separated (default "power-wall placement power replay"):
#                     power-wall = "The power wall: tokens per second per site budget" (seconds),
#                     placement = "Placement quality on held-out requests",
#                     power = "Power as a constraint and an objective",
#                     replay = "Placements that follow the traffic"
# Prints the markdown tables on stdout (also in $OUT/results.md, the power wall in $OUT/power-wall.md,
# the replay tables in $OUT/replay.md).
#
# The power wall: `moesim scale` and `moesim deploy --site-power 10,100,1000` on A100s, balanced and
# with the expert-load skew measured from the DeepSeek-V2-Lite trace, with GPUs provisioned for their
# measured peak draw (the default) and for TDP.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${MOESIM_BIN:-$here/${1:-build}/moesim}
data=${MOESIM_DATA:-$here/../shared/data}
out=${OUT:-$(mktemp -d /tmp/moesim-results.XXXXXX)}
py=/usr/bin/python3
[[ -x $bin ]] || { echo "results.sh: no moesim binary at $bin (build first, or set MOESIM_BIN)" >&2; exit 2; }
mkdir -p "$out"
parts=" ${PARTS:-power-wall placement power replay} "
for p in $parts; do
  [[ $p == power-wall || $p == placement || $p == power || $p == replay ]] \
    || { echo "results.sh: PARTS holds power-wall, placement, power and/or replay, not '$p'" >&2; exit 2; }
done

# ------------------------------------------------------------- the power wall
power_wall() {
  local v2=$data/deepseek-v2-lite-puffin skew=() d=$out/power-wall
  mkdir -p "$d"
  if [[ -d $v2 ]]; then skew=(--imbalance-from "$v2"); else skew=(--imbalance 1.5); fi
  echo "[power wall] moesim scale and deploy --site-power 10,100,1000 (${skew[*]})" >&2
  for prov in measured tdp; do
    "$bin" scale --site-power 10,100,1000 --provision "$prov" "${skew[@]}" --format json -o "$d/scale-$prov.json"
    "$bin" deploy --preset deepseek-v2-lite-a100 --site-power 10,100,1000 --provision "$prov" "${skew[@]}" \
      --format json -o "$d/v2lite-$prov.json"
    "$bin" deploy --preset seed-4layer --site-power 10,100,1000 --provision "$prov" --imbalance 1.5 \
      --format json -o "$d/seed4-$prov.json"
  done
  "$py" - "$d" "$data" <<'PY' | tee "$out/power-wall.md"
import json, os, sys
d, data = sys.argv[1], sys.argv[2]
J = lambda n: json.loads(open(os.path.join(d, n)).read().replace(data, "../shared/data"))
def P(x):
    return f"{x / 1e12:.3g}T" if x >= 1e12 else f"{x / 1e9:.3g}B" if x >= 1e9 else f"{x / 1e6:.3g}M"
def model(p):
    return f"{P(p['total_params'])} / {P(p['active_params'])} active"
sm, st = J("scale-measured.json"), J("scale-tdp.json")
sb = sm["site_budget"]
bal, skw = sb["cases"]
sites = [s["site_mw"] for s in bal["sites"]]
print("\n## The power wall: tokens per second per site budget\n")
print(f"Reproduce: `PARTS=power-wall scripts/results.sh`. A100 80 GB for every model (seed 000: one GPU "
      f"type for a fair comparison), BF16, the `moesim scale` family (64 experts, top-2) decoding "
      f"{sm['options']['decode_batch']} sequences at {sm['options']['context']} context per replica; "
      f"site = GPUs + {sm['options']['energy']['node_overhead_w']} W/GPU node overhead, x PUE "
      f"{sm['options']['energy']['pue']}; skewed case: {sb['skew_source']}.\n")
print("### Which model size serves the most tokens per second (size family, GPUs provisioned for measured peak draw)\n")
print("| total / active | GPUs per replica | replica at the wall, kW | tokens/s per replica | EP imbalance (skewed) | "
      + " | ".join(f"{s:g} MW: replicas, tokens/s (skewed)" for s in sites) + " | tokens/s per MW (skewed) |")
print("|---|---|---|---|---|" + "---|" * len(sites) + "---|")
for i, p in enumerate(bal["points"]):
    if p["sweep"] != "size":
        continue
    q = skw["points"][i]
    cells = [f"{p['sites'][j]['replicas']}, {p['sites'][j]['tokens_per_s']:.3g} ({q['sites'][j]['tokens_per_s']:.3g})"
             for j in range(len(sites))]
    print(f"| {model(p)} | {p['gpus_per_replica']} | {p['sites'][0]['replica_site_w'] / 1e3:.3g} | "
          f"{p['replica_tokens_per_s']:.4g} | {q['imbalance']:.3g} (ranks {q['ep_ranks']}) | " + " | ".join(cells)
          + f" | {p['sites'][-1]['tokens_per_s_per_mw']:.4g} ({q['sites'][-1]['tokens_per_s_per_mw']:.4g}) |")
print(f"\n### The answer at each budget (quality proxy: total parameters; demand {sb['demand_tokens_per_s']:.3g} tokens/s)\n")
print("| | " + " | ".join(f"{s:g} MW" for s in sites) + " |")
print("|---|" + "---|" * len(sites))
def pick(case, key):
    out = []
    for s in case["sites"]:
        b = s[key]
        out.append("none" if b is None else f"{model(b)} ({b['sweep']}): {b['replicas']} replicas, {b['tokens_per_s']:.3g} tokens/s")
    return out
def serve(case):
    out = []
    for s in case["sites"]:
        v = s["serving_limit"]
        out.append("none" if v is None else f"{model(v)} ({v['layers']} x {v['hidden']}): {v['fit']['replicas']} x {v['gpus_infer']} GPUs")
    return out
def train(case, gpus=True):
    out = []
    for s in case["sites"]:
        t = s["training_limit"]
        m = t["compute_model"]
        out.append("none" if m is None else f"{model(m)} ({m['layers']} x {m['hidden']}) on {t['gpus']} GPUs, "
                   f"{t['compute_days']:.0f} days, {t['compute_site_j'] / 3.6e12:.3g} GWh, imbalance {t['imbalance']:.3g}")
    return out
rows = [("most tokens/s (any model)", pick(bal, "best_tokens"), pick(skw, "best_tokens")),
        ("largest listed model serving the demand", pick(bal, "best_quality"), pick(skw, "best_quality")),
        ("serving wall: largest family model serving the demand", serve(bal), serve(skw)),
        ("training wall: largest family model trainable in 90 days", train(bal), train(skw))]
for name, b, k in rows:
    print(f"| {name}, balanced | " + " | ".join(b) + " |")
    print(f"| {name}, skewed | " + " | ".join(k) + " |")
tb, tk = st["site_budget"]["cases"]
print(f"| serving wall at TDP provisioning, balanced | " + " | ".join(serve(tb)) + " |")
print(f"| training wall at TDP provisioning, balanced | " + " | ".join(train(tb)) + " |")
print("\n### Finer experts at fixed total weights (1T), balanced, per MW\n")
print("| sweep | experts | top-k | active | tokens/s per replica | replica at the wall, kW | tokens/s per MW |")
print("|---|---|---|---|---|---|---|")
for p in bal["points"]:
    if p["sweep"] == "size":
        continue
    print(f"| {p['sweep']} | {p['experts']} | {next(x['top_k'] for x in sm['points'] if x['total_params'] == p['total_params'] and x['experts'] == p['experts'] and x['sweep'] == p['sweep'])} | "
          f"{P(p['active_params'])} | {p['replica_tokens_per_s']:.4g} | {p['sites'][0]['replica_site_w'] / 1e3:.3g} | "
          f"{p['sites'][-1]['tokens_per_s_per_mw']:.4g} |")
def deploy_table(name, title):
    print(f"\n### {title}\n")
    for prov in ("measured", "tdp"):
        x = J(f"{name}-{prov}.json")["site_budget"]
        b, k = x["cases"]
        print(f"GPUs provisioned for {'their measured peak draw' if prov == 'measured' else 'TDP'}; skewed case: {x['skew_source']}.\n")
        print("| plan | GPUs | replica at the wall, kW | tokens/s per replica | J/token at the wall | imbalance (skewed) | "
              "tokens/s per MW | tokens/s per MW (skewed) | " + " | ".join(f"{s:g} MW replicas" for s in x["sites_mw"]) + " |")
        print("|---|---|---|---|---|---|---|---|" + "---|" * len(x["sites_mw"]))
        for p, q in zip(b["plans"], k["plans"]):
            if not p["fits"]:
                print(f"| {p['name']} | {p['gpus']} | does not fit | | | | | |" + " |" * len(x["sites_mw"]))
                continue
            win = "**" if any(w["index"] == b["plans"].index(p) for w in b["winners"]) else ""
            wink = "**" if any(w["index"] == b["plans"].index(p) for w in k["winners"]) else ""
            print(f"| {win}{p['name']}{win} | {p['gpus']} | {p['replica_site_w'] / 1e3:.4g} | {p['replica_tokens_per_s']:.4g} | "
                  f"{p['site_j_per_token']:.4g} | {q['imbalance']:.3g} | {win}{p['sites'][-1]['tokens_per_s_per_mw']:.4g}{win} | "
                  f"{wink}{q['sites'][-1]['tokens_per_s_per_mw']:.4g}{wink} | "
                  + " | ".join(str(s["replicas"]) for s in p["sites"]) + " |")
        print()
        for w0, w1 in zip(b["winners"], k["winners"]):
            print(f"- {w0['site_mw']:g} MW: balanced {w0['plan']} ({w0['tokens_per_s']:.4g} tokens/s), "
                  f"skewed {w1['plan']} ({w1['tokens_per_s']:.4g} tokens/s)")
        print()
deploy_table("v2lite", "Which deployment serves DeepSeek-V2-Lite prefill best (A100, `--preset deepseek-v2-lite-a100`)")
deploy_table("seed4", "The seeds' experiment 1 on a site budget (seed H100, `--preset seed-4layer`, imbalance 1.5)")
PY
}
if [[ $parts == *" power-wall "* ]]; then power_wall; fi

div=1; [[ ${QUICK:-0} == 1 ]] && div=10

algos=(contiguous round-robin pair replicate eplb tail coact balance balance-coact hot-tier greedy-cost one-per-gpu)
routes=(round-robin least-loaded row-local split balanced-replicas)

# run_config NAME TRACE ITERATIONS ITERATIONS-FAST LIMIT CLUSTER-OPTIONS... -- TRACE-OPTIONS... -- SIMULATION-OPTIONS...
# (search moves per layer for least-loaded and row-local, whose surrogate costs a pass over the
# windows per move, and for the other routes, whose surrogate is incremental; LIMIT only caps)
run_config() {
  local name=$1 trace=$2 iters_ll=$(( $3 / div )) iters_fast=$(( $4 / div )) limit=$5; shift 5
  local cl=() topt=() sim=() place=()
  while [[ $1 != -- ]]; do cl+=("$1"); shift; done; shift
  while [[ $1 != -- ]]; do topt+=("$1"); shift; done; shift
  sim=("$@")
  place=("${cl[@]}" ${topt[@]+"${topt[@]}"})
  local dir="$out/$name"; mkdir -p "$dir"; : > "$dir/skipped"; : > "$dir/search.tsv"
  echo "[$name] placing on $trace@train" >&2
  local pl=()
  for a in "${algos[@]}"; do
    if "$bin" place "$trace@train" --algo "$a" "${place[@]}" --no-lp-bound --quiet -o "$dir/$a.json" \
         > /dev/null 2> "$dir/$a.err"; then
      pl+=(--placement "$dir/$a.json")
    else
      printf '%s\t%s\n' "$a" "$(head -1 "$dir/$a.err")" >> "$dir/skipped"
    fi
  done
  for r in "${routes[@]}"; do
    echo "[$name] search for --route $r" >&2
    local t0=$SECONDS iters=$iters_fast
    [[ $r == least-loaded || $r == row-local ]] && iters=$iters_ll
    "$bin" place "$trace@train" --algo search --init eplb --objective imbalance --route "$r" "${place[@]}" \
      "${sim[@]}" --iterations "$iters" --time-limit "$limit" --seed 1 --no-lp-bound --quiet \
      -o "$dir/search-$r.json" > /dev/null
    printf '%s\t%s\n' "$r" "$((SECONDS - t0))" >> "$dir/search.tsv"
    pl+=(--placement "$dir/search-$r.json")
  done
  echo "[$name] simulating on $trace@eval" >&2
  local rl; rl=$(IFS=,; echo "${routes[*]}")
  "$bin" compare "$trace@eval" "${pl[@]}" --route "$rl" "${sim[@]}" ${topt[@]+"${topt[@]}"} --quiet --format csv \
    -o "$dir/compare.csv"
  "$bin" compare "$trace@train" --placement "$dir/eplb.json" --route round-robin "${sim[@]}" ${topt[@]+"${topt[@]}"} \
    --quiet --format csv -o "$dir/train-eplb.csv"
}

v2=$data/deepseek-v2-lite-puffin
mav=$data/llama4-maverick-mmlu
configs=()
if [[ $parts == *" placement "* ]]; then
if [[ -d $v2 ]]; then
  run_config v2lite "$v2" 15000 15000 60 --rows 2 --cols 8 --slots 6 -- -- \
    --cost-model roofline --batch prefill --batch-tokens 4096
  configs+=(v2lite)
fi
if [[ -d $mav ]]; then
  run_config maverick "$mav" 12000 48000 90 --rows 2 --cols 8 --slots 10 -- --experts 128 -- \
    --cost-model roofline --batch decode --decode-batch 64
  configs+=(maverick)
fi
fi
gen_v3() {
  echo "[v3] generating the synthetic DeepSeek-V3 trace" >&2
  if [[ ! -d $out/v3-trace ]]; then
    "$bin" gen --model deepseek-v3 --requests 300 --tokens 96000 --decode 0 --seed 1 -o "$out/v3-trace" \
      --quiet > /dev/null
  fi
}
if [[ $parts == *" placement "* ]]; then
gen_v3
run_config v3 "$out/v3-trace" 24000 24000 90 --rows 16 --cols 8 --slots 3 --shared-expert -- -- \
  --cost-model roofline --batch prefill --batch-tokens 8192
configs+=(v3)
fi

[[ $parts == *" placement "* ]] && "$py" - "$out" "${configs[@]}" <<'PY' | tee "$out/results.md"
import csv, json, os, sys
out, configs = sys.argv[1], sys.argv[2:]
algos = ["contiguous", "round-robin", "pair", "replicate", "eplb", "tail", "coact", "balance", "balance-coact",
         "hot-tier", "greedy-cost", "one-per-gpu"]
routes = ["round-robin", "least-loaded", "row-local", "split", "balanced-replicas"]
titles = {
    "v2lite": "DeepSeek-V2-Lite prefill (puffin): 2 x 8 GPUs, 6 slots each (96 slots for 64 experts), "
              "prefill batches of 4096 tokens, roofline cost (H100 SXM)",
    "maverick": "Llama-4-Maverick decode (MMLU): 2 x 8 GPUs, 10 slots each (160 slots for 128 experts), "
                "decode batches of 64 requests, roofline cost (H100 SXM)",
    "v3": "Synthetic DeepSeek-V3 prefill (moesim gen --model deepseek-v3, 300 requests, 96000 tokens, seed 1): "
          "16 x 8 GPUs, 3 slots each (256 routed + 16 shared replicas + 112 hot replicas), prefill batches of "
          "8192 tokens, roofline cost (H100 SXM)",
}
summary = []
for c in configs:
    d = os.path.join(out, c)
    rows = {}
    for r in csv.DictReader(open(os.path.join(d, "compare.csv"))):
        name = os.path.basename(r["placement"])[:-5]
        rows[(name, r["route"])] = r
    skipped = dict(l.rstrip("\n").split("\t", 1) for l in open(os.path.join(d, "skipped")) if l.strip())
    secs = dict(l.split() for l in open(os.path.join(d, "search.tsv")) if l.strip())
    print(f"\n### {titles[c]}\n")
    print("Cells: mean imbalance / p99 imbalance / p99 layer time (us), on the held-out requests. "
          "`search` is tuned for each column's routing policy (its own run per column).\n")
    print("| algorithm | " + " | ".join(routes) + " |")
    print("|---|" + "---|" * len(routes))
    best = None
    for a in algos + ["search"]:
        if a in skipped:
            continue
        cells = []
        for rt in routes:
            key = (f"search-{rt}" if a == "search" else a, rt)
            r = rows.get(key)
            if not r:
                cells.append("n/a")
                continue
            im, ip, lp = float(r["imbalance_mean"]), float(r["imbalance_p99"]), float(r["layer_us_p99"])
            cells.append(f"{im:.3f} / {ip:.3f} / {lp:.0f}")
            if best is None or im < best[0]:
                best = (im, a, rt)
        print(f"| {'**search**' if a == 'search' else a} | " + " | ".join(cells) + " |")
    base = float(rows[("eplb", "round-robin")]["imbalance_mean"])
    el = float(rows[("eplb", "least-loaded")]["imbalance_mean"])
    tr = list(csv.DictReader(open(os.path.join(d, "train-eplb.csv"))))[0]
    meta = {}
    for rt in routes:
        m = json.load(open(os.path.join(d, f"search-{rt}.json")))["metadata"]
        p = m["params"] if isinstance(m["params"], dict) else json.loads(m["params"])
        meta[rt] = (m["objective"], p["init_objective"], p["iterations"], p["stopped_by_time"], secs.get(rt, "?"))
    notes = "; ".join(f"{rt}: {o:.3f} (eplb {i:.3f}), {it} moves, {s} s{' (time limit)' if cut else ''}"
                      for rt, (o, i, it, cut, s) in meta.items())
    print(f"\nsearch on the training requests (mean imbalance, simulated): {notes}.")
    if skipped:
        print("Not run: " + "; ".join(f"`{a}`: {m.replace('moesim place: error: ', '')}" for a, m in skipped.items()) + ".")
    summary.append((c, base, el, best, float(tr["imbalance_mean"])))
print("\n### Summary: mean imbalance excess (imbalance - 1) on held-out requests\n")
print("| config | eplb + round-robin | eplb + least-loaded | best (algorithm + route) | best / eplb+rr | aim (<= 0.5) |")
print("|---|---|---|---|---|---|")
for c, base, el, (im, a, rt), tr in summary:
    ratio = (im - 1) / (base - 1)
    print(f"| {c} | {base - 1:.3f} | {el - 1:.3f} | {im - 1:.3f} ({a} + {rt}) | {ratio:.2f} | "
          f"{'met' if ratio <= 0.5 else 'not met'} |")
PY
# ---------------------------------------------------------------- power
# "Power as a constraint and an objective": on each trace's training half, eplb and search with the
# power objectives (peak-power and energy at the default cap, the preset's TDP, which never binds;
# time-under-cap under a binding per-GPU cap) and a Pareto answer on time and peak power; every
# placement then priced on the held-out half (moesim power: energy per token, peak cluster power,
# mean layer time), uncapped and under the cap.
# power_config NAME TRACE ITERATIONS PARETO-ITERATIONS CAP_W PLACE-OPTIONS... -- SIMULATION-OPTIONS...
power_config() {
  local name=$1 trace=$2 iters=$(( $3 / div )) piters=$(( $4 / div )) cap=$5; shift 5
  local cl=() sim=()
  while [[ $1 != -- ]]; do cl+=("$1"); shift; done; shift
  sim=("$@")
  local dir="$out/power-$name"; mkdir -p "$dir"; : > "$dir/times.tsv"
  echo "[power $name] eplb and the power searches on $trace@train" >&2
  "$bin" place "$trace@train" --algo eplb "${cl[@]}" --no-lp-bound --quiet -o "$dir/eplb.json" > /dev/null
  local t0
  for obj in peak-power energy; do
    t0=$SECONDS
    "$bin" place "$trace@train" --algo search --init eplb --objective "$obj" "${cl[@]}" "${sim[@]}" \
      --iterations "$iters" --time-limit 900 --seed 1 --no-lp-bound --quiet -o "$dir/$obj.json" > /dev/null
    printf '%s\t%s\n' "$obj" "$((SECONDS - t0))" >> "$dir/times.tsv"
  done
  t0=$SECONDS
  "$bin" place "$trace@train" --algo search --init eplb --objective time-under-cap --gpu-power-cap "$cap" \
    "${cl[@]}" "${sim[@]}" --iterations "$iters" --time-limit 900 --seed 1 --no-lp-bound --quiet \
    -o "$dir/time-under-cap.json" > /dev/null
  printf 'time-under-cap\t%s\n' "$((SECONDS - t0))" >> "$dir/times.tsv"
  t0=$SECONDS
  "$bin" place "$trace@train" --algo search --init eplb --pareto time,peak-power --pareto-searches 5 \
    --pareto-algos eplb,replicate,pair,tail,greedy-cost,coact "${cl[@]}" "${sim[@]}" --iterations "$piters" \
    --time-limit 900 --seed 1 --no-lp-bound --quiet --format csv -o "$dir/front.json" > "$dir/front-train.csv"
  printf 'pareto\t%s\n' "$((SECONDS - t0))" >> "$dir/times.tsv"
  echo "[power $name] pricing on $trace@eval" >&2
  local pl=(--placement "$dir/eplb.json" --placement "$dir/peak-power.json" --placement "$dir/energy.json")
  for f in "$dir"/front.[0-9][0-9].json; do pl+=(--placement "$f"); done
  "$bin" power "$trace@eval" "${pl[@]}" "${sim[@]}" --quiet --format json -o "$dir/eval.json"
  "$bin" power "$trace@eval" --placement "$dir/eplb.json" --placement "$dir/time-under-cap.json" \
    --placement "$dir/peak-power.json" "${sim[@]}" --gpu-power-cap "$cap" --quiet --format json -o "$dir/eval-cap.json"
  # a cap as the alternative: eplb and peak-power under the per-GPU cap that holds eplb's peak to
  # the peak-power placement's (its held-out peak / GPUs)
  local eq
  eq=$("$py" -c "import json,sys; r=[x for x in json.load(open(sys.argv[1]))['runs'] if '/peak-power.json' in x['label']][0]; print(int(r['peak_w'] / r['devices']))" "$dir/eval.json")
  "$bin" power "$trace@eval" --placement "$dir/eplb.json" --placement "$dir/peak-power.json" "${sim[@]}" \
    --gpu-power-cap "$eq" --quiet --format json -o "$dir/eval-eq.json"
  "$bin" report "$dir/front.json" -o "$dir/front.html" --quiet > /dev/null 2>&1 || true
}

if [[ $parts == *" power "* ]]; then
  pconfigs=()
  if [[ -d $v2 ]]; then
    power_config v2lite "$v2" 15000 6000 300 --rows 2 --cols 8 --slots 6 -- \
      --cost-model roofline --batch prefill --batch-tokens 4096 --route least-loaded
    pconfigs+=(v2lite)
  fi
  gen_v3
  power_config v3 "$out/v3-trace" 12000 4000 300 --rows 16 --cols 8 --slots 3 --shared-expert -- \
    --cost-model roofline --batch prefill --batch-tokens 8192 --route least-loaded
  pconfigs+=(v3)
  "$py" - "$out" "${pconfigs[@]}" <<'PY' | tee -a "$out/results.md"
import csv, json, os, sys
out, configs = sys.argv[1], sys.argv[2:]
titles = {
    "v2lite": "DeepSeek-V2-Lite prefill (puffin): 2 x 8 H100 SXM, 6 slots each, prefill batches of 4096 tokens",
    "v3": "Synthetic DeepSeek-V3 prefill (300 requests, 96000 tokens, seed 1): 16 x 8 H100 SXM, 3 slots each, "
          "prefill batches of 8192 tokens",
}
def runs_of(path):
    d = json.load(open(path))
    res = {}
    for r in d["runs"]:
        f = os.path.basename(r["label"].split(" (")[0])
        res[f] = r
    return res
def lt(r):  # mean layer time, us
    return r["wall_s"] / r["phases"] * 1e6
print("\n## Power as a constraint and an objective (held-out requests)\n")
print("Placed on the training half (`TRACE@train`), priced on the held-out half (`TRACE@eval`) with `moesim power`"
      " (roofline, least-loaded routing, H100 SXM energy coefficients). Peak = the highest (batch, layer) "
      "instantaneous cluster power (every GPU at its busiest at once); layer time = mean over (batch, layer).\n")
for c in configs:
    d = os.path.join(out, f"power-{c}")
    ev, evc = runs_of(os.path.join(d, "eval.json")), runs_of(os.path.join(d, "eval-cap.json"))
    caps = json.load(open(os.path.join(d, "eval-cap.json")))["power_caps"]
    secs = dict(l.split() for l in open(os.path.join(d, "times.tsv")) if l.strip())
    front = json.load(open(os.path.join(d, "front.json")))
    e = ev["eplb.json"]
    print(f"### {titles[c]}\n")
    print("| placement (objective) | layer time, us | vs eplb | peak power, kW | vs eplb | energy per token, mJ | vs eplb |")
    print("|---|---|---|---|---|---|---|")
    def row(name, r, base):
        print(f"| {name} | {lt(r):.1f} | {100 * (lt(r) / lt(base) - 1):+.2f} % | {r['peak_w'] / 1e3:.3f} | "
              f"{100 * (r['peak_w'] / base['peak_w'] - 1):+.2f} % | {r['energy_per_token_j'] * 1e3:.4f} | "
              f"{100 * (r['energy_per_token_j'] / base['energy_per_token_j'] - 1):+.2f} % |")
    row("eplb", e, e)
    row(f"search, peak-power ({secs['peak-power']} s)", ev["peak-power.json"], e)
    row(f"search, energy ({secs['energy']} s)", ev["energy.json"], e)
    eq = runs_of(os.path.join(d, "eval-eq.json"))
    eqcap = json.load(open(os.path.join(d, "eval-eq.json")))["power_caps"]["gpu_w"]
    for name, f in (("eplb", "eplb.json"), ("search, peak-power", "peak-power.json")):
        row(f"{name} under a {eqcap:.0f} W per-GPU cap", eq[f], e)
    print(f"\nUnder a per-GPU cap of {caps['gpu_w']:.0f} W (every placement simulated with it):\n")
    print("| placement (objective) | layer time, us | vs eplb | throttled, us per layer | mean clock | energy per token, mJ |")
    print("|---|---|---|---|---|---|")
    ec = evc["eplb.json"]
    for name, f in (("eplb", "eplb.json"), (f"search, time-under-cap ({secs['time-under-cap']} s)", "time-under-cap.json"),
                    ("search, peak-power", "peak-power.json")):
        r = evc[f]
        print(f"| {name} | {lt(r):.1f} | {100 * (lt(r) / lt(ec) - 1):+.2f} % | {r['throttle']['throttled_us']:.1f} | "
              f"{r['throttle']['clock_mean']:.3f} | {r['energy_per_token_j'] * 1e3:.4f} |")
    print(f"\nPareto answer on time and peak power ({secs['pareto']} s; 5 mix searches, eplb and five other "
          "algorithms), every point on the held-out requests (\\* = on the training front):\n")
    print("| point | layer time, us | vs eplb | peak power, kW | vs eplb | energy per token, mJ |")
    print("|---|---|---|---|---|---|")
    for k, p in enumerate(front["points"]):
        r = ev[p["placement"]]
        star = "\\* " if p["front"] else ""
        print(f"| {star}{p['label']} | {lt(r):.1f} | {100 * (lt(r) / lt(e) - 1):+.2f} % | "
              f"{r['peak_w'] / 1e3:.3f} | {100 * (r['peak_w'] / e['peak_w'] - 1):+.2f} % | "
              f"{r['energy_per_token_j'] * 1e3:.4f} |")
    print()
PY
fi
echo "results in $out" >&2
