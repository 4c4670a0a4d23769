#!/usr/bin/env bash
# moesim calibrate -> moesim simulate: the preset calibrate writes (fast
# settings) drives the roofline model by path and by name (presets/hw/NAME),
# its efficiency curve replaces the flat MFU for expert compute, and the
# committed presets/hw/local.json loads as --hw local.
set -euo pipefail
bin=${MOESIM_BIN:?}; src=${MOESIM_SRC:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-calsim.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

# a small Mixtral-shaped trace (8 experts, top-2) and a 1 x 4 placement with replicas
"$bin" gen --model mixtral-8x7b --requests 8 --tokens 400 --seed 3 --force --quiet -o "$tmp/trace"
"$bin" place "$tmp/trace" --algo eplb --rows 1 --cols 4 --slots 3 --quiet -o "$tmp/p.json" > /dev/null

# calibrate with fast settings into a preset directory of our own
mkdir -p "$tmp/presets/hw"
ln -s "$src/presets/model" "$tmp/presets/model"
"$bin" calibrate --shape 96x64 --tokens-per-expert 1..16 --min-time 0 --reps 1 --peak-size 128 --quiet \
  --name tiny -o "$tmp/presets/hw/tiny.json"

sim=(--placement "$tmp/p.json" --cost-model roofline --model mixtral-8x7b --batch prefill --batch-tokens 64
     --route least-loaded --format json --quiet --threads 1)
"$bin" simulate "$tmp/trace" "${sim[@]}" --hw "$tmp/presets/hw/tiny.json" --details -o "$tmp/path.json"
MOESIM_PRESET_DIR="$tmp/presets" "$bin" simulate "$tmp/trace" "${sim[@]}" --hw tiny --details -o "$tmp/name.json"
expect_exit 2 "$bin" simulate "$tmp/trace" "${sim[@]}" --hw tiny
grep -q "unknown hw preset 'tiny'" "$tmp/err"

# variants of the measured preset (the figures calibrate wrote, HBM made
# free so compute decides): no curve at mfu 1; a curve flat at 0.5; a ramp
# 0.1 .. 0.5; the measured curve (on a loaded machine its points may all be
# capped at 1)
"$py" - "$tmp/presets/hw/tiny.json" "$tmp" <<'PY'
import copy, json, sys
d = json.load(open(sys.argv[1])); out = sys.argv[2]
c = d["efficiency_curve"]
assert c["tokens_per_expert"] == [1, 2, 4, 8, 16] and len(c["efficiency"]) == 5
d["hbm_tb_s"]["value"] = 1e6
flat = copy.deepcopy(d); del flat["efficiency_curve"]; flat["mfu"]["value"] = 1.0
half = copy.deepcopy(d); half["efficiency_curve"]["efficiency"] = [0.5] * 5
ramp = copy.deepcopy(d); ramp["efficiency_curve"]["efficiency"] = [0.1, 0.2, 0.3, 0.4, 0.5]
for name, v in (("flat", flat), ("half", half), ("ramp", ramp), ("meas", d)):
    json.dump(v, open(f"{out}/{name}.json", "w"))
PY
for v in flat half ramp meas; do
  "$bin" simulate "$tmp/trace" "${sim[@]}" --hw "$tmp/$v.json" --details -o "$tmp/sim-$v.json"
done
"$py" - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
load = lambda n: json.load(open(f"{d}/{n}.json"))
path, name = load("path"), load("name")
# by path and by name: the same run
assert path["options"]["hw"] == name["options"]["hw"] == "tiny"
assert path["records"] == name["records"]
flat, half, ramp, meas = load("sim-flat"), load("sim-half"), load("sim-ramp"), load("sim-meas")
curve = json.load(open(f"{d}/meas.json"))["efficiency_curve"]["efficiency"]
lo, hi = min(curve), max(curve)
assert len(flat["records"]) == len(half["records"]) == len(meas["records"]) > 0
for f, r in zip(flat["records"], ramp["records"]):
    # ramp: every instance between 2x and 10x its flat time, so is the slowest device
    assert 2 * f["compute_us"] * (1 - 1e-9) <= r["compute_us"] <= 10 * f["compute_us"] * (1 + 1e-9), (r, f)
assert ramp["summary"]["compute_us"] > 2 * flat["summary"]["compute_us"] * (1 + 1e-9)
for f, h, m in zip(flat["records"], half["records"], meas["records"]):
    assert f["assignments"] == h["assignments"] == m["assignments"]
    assert f["device_load"] == m["device_load"]           # routing does not depend on costs
    # every instance at half the efficiency: twice the time, on every device
    assert abs(h["compute_us"] - 2 * f["compute_us"]) <= 1e-9 * f["compute_us"], (h, f)
    # the measured curve: each instance between flat/max(eff) and flat/min(eff)
    assert f["compute_us"] / hi * (1 - 1e-9) <= m["compute_us"] <= f["compute_us"] / lo * (1 + 1e-9), (m, f, lo, hi)
    # dense work keeps the flat mfu: the same in half (mfu as calibrated) and meas
    assert h["dense_us"] == m["dense_us"]
PY

# the committed preset of this repository's machine: --hw local
"$bin" simulate "$tmp/trace" "${sim[@]}" --hw local -o "$tmp/local.json"
"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["options"]["hw"] == "local", d["options"]' \
  "$tmp/local.json"
# a broken curve is bad input, naming the file
"$py" - "$tmp/presets/hw/tiny.json" "$tmp/bad.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["efficiency_curve"]["efficiency"][2] = 1.5
json.dump(d, open(sys.argv[2], "w"))
PY
expect_exit 2 "$bin" simulate "$tmp/trace" "${sim[@]}" --hw "$tmp/bad.json"
grep -q "bad.json: 'efficiency_curve' efficiency\[2\]" "$tmp/err"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "error is not one line"
echo OK
