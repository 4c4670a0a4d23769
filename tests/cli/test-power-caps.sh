#!/usr/bin/env bash
# Power caps end to end (moesim simulate / compare / power --gpu-power-cap,
# --row-power-cap, --cluster-power-cap, --energy): the default cap (the
# preset's TDP) and none give the same records, byte for byte; a binding cap
# lengthens layers by exactly the throttled time reported and lowers compute
# energy; JSON, CSV and table carry the throttle figures; bad caps and caps
# with the mesh model are refused with one line and exit 2.
set -euo pipefail
bin=${MOESIM_BIN:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-caps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

"$bin" simulate --help | grep -q -- "--gpu-power-cap" || fail "simulate --help lacks the caps"
"$bin" compare --help | grep -q -- "--cluster-power-cap" || fail "compare --help lacks the caps"
"$bin" power --help | grep -q -- "--row-power-cap" || fail "power --help lacks the caps"

cd "$tmp"
"$bin" gen --model deepseek-v2-lite --layers 3 --requests 30 --prompt-mean 200 --decode 0 --seed 3 -o tr --quiet >/dev/null
"$bin" place tr --algo eplb --rows 2 --cols 4 --slots 10 -o eplb.json --quiet >/dev/null
sim=(--cost-model roofline --batch prefill --batch-tokens 1024 --route least-loaded --quiet)

# the default cap (TDP) never binds: the records equal those without a cap, byte for byte
"$bin" simulate tr --placement eplb.json "${sim[@]}" --format csv -o default.csv
"$bin" simulate tr --placement eplb.json "${sim[@]}" --gpu-power-cap none --format csv -o none.csv
cmp default.csv none.csv || fail "the default cap changed the records"
head -1 none.csv | grep -q ",throttled_us,clock_mean,clock_min,cap_unmet$" || fail "CSV lacks the throttle columns"

# a binding per-GPU cap, and budgets
"$bin" simulate tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 --format csv -o cap.csv
"$bin" simulate tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 --format json --details -o cap.json
"$bin" simulate tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 > cap.txt
grep -q "^power caps per GPU 200 W" cap.txt || fail "table lacks the caps"
grep -q "^throttled " cap.txt || fail "table lacks the throttled time"
"$bin" simulate tr --placement eplb.json "${sim[@]}" --gpu-power-cap none --row-power-cap 1.2 \
  --cluster-power-cap 2 --overlap two-micro-batch --format json -o budget.json
"$bin" compare tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 --format csv -o cmp.csv
"$bin" compare tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 --format json -o cmp.json
"$bin" compare tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 > cmp.txt
grep -q "clk min" cmp.txt || fail "compare table lacks the clocks"
"$bin" power tr --placement eplb.json "${sim[@]}" --gpu-power-cap none --format json -o p-none.json
"$bin" power tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 --format json -o p-cap.json
"$bin" power tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 --format csv -o p-cap.csv
"$bin" power tr --placement eplb.json "${sim[@]}" --gpu-power-cap 200 > p-cap.txt
grep -q "clock min" p-cap.txt || fail "power table lacks the clocks"

"$py" - <<'PY'
import csv, json
none = list(csv.DictReader(open("none.csv")))
cap = list(csv.DictReader(open("cap.csv")))
assert len(none) == len(cap) > 0
thr = 0
for a, b in zip(none, cap):
    la, lb, t = float(a["layer_us"]), float(b["layer_us"]), float(b["throttled_us"])
    assert lb >= la, (la, lb)
    assert abs((lb - la) - t) <= 1e-9 * lb, (la, lb, t)   # throttled = capped - uncapped, same routing
    assert float(a["throttled_us"]) == 0 and float(a["clock_min"]) == 1
    assert 0.3 - 1e-12 <= float(b["clock_min"]) <= float(b["clock_mean"]) <= 1
    thr += t > 0
assert thr > 0, "a 200 W cap did not bind"
j = json.load(open("cap.json"))
assert j["options"]["power_caps"]["gpu_w"] == 200 and j["options"]["power_caps"]["cluster_w"] is None
s = j["summary"]
for k in ("throttled_us", "throttled_share", "clock_mean", "clock_min", "cap_unmet"):
    assert k in s, k
assert len(s["device_clock"]["mean"]) == 8 and min(s["device_clock"]["min"]) == s["clock_min"]
r = j["records"][0]
assert len(r["device_clock"]) == 8 and "throttled_us" in r
mean_thr = sum(float(x["throttled_us"]) for x in cap) / len(cap)
assert abs(s["throttled_us"] - mean_thr) <= 1e-9 * max(1, mean_thr)
b = json.load(open("budget.json"))
assert b["options"]["power_caps"]["row_w"] == 1200 and b["options"]["power_caps"]["gpu_w"] is None
assert b["summary"]["throttled_us"] >= 0
c = list(csv.DictReader(open("cmp.csv")))[0]
assert abs(float(c["throttled_us"]) - s["throttled_us"]) <= 1e-9 * max(1, s["throttled_us"])
cj = json.load(open("cmp.json"))
assert cj["runs"][0]["summary"]["clock_min"] == s["clock_min"]
pn, pc = json.load(open("p-none.json")), json.load(open("p-cap.json"))
assert pn["power_caps"] is None and pc["power_caps"]["gpu_w"] == 200
a, b = pn["runs"][0], pc["runs"][0]
assert "throttle" not in a and b["throttle"]["clock_min"] == s["clock_min"]
assert b["parts"]["compute"]["j"] < a["parts"]["compute"]["j"]   # FLOPs at a lower voltage
assert b["wall_s"] > a["wall_s"]
assert abs(sum(p["j"] for p in b["parts"].values()) - b["energy_j"]) <= 1e-9 * b["energy_j"]
rows = list(csv.DictReader(open("p-cap.csv")))
assert min(float(x["clock_min"]) for x in rows) == s["clock_min"]
print("caps ok")
PY

# refusals: one line, exit 2, nothing written
for bad in "--gpu-power-cap -5" "--gpu-power-cap x" "--gpu-power-cap 50" "--cluster-power-cap 0.1" \
           "--row-power-cap 0" "--energy nosuchgpu"; do
  expect_exit 2 "$bin" simulate tr --placement eplb.json "${sim[@]}" $bad -o never.json
  [[ ! -e never.json ]] || fail "output written for $bad"
  [[ $(grep -c . "$tmp/err") -le 2 ]] || { cat "$tmp/err"; fail "more than a line for $bad"; }
done
expect_exit 2 "$bin" simulate tr --placement eplb.json --cost-model mesh --gpu-power-cap 300 --quiet
grep -q "roofline" "$tmp/err" || fail "the mesh refusal does not say why"
expect_exit 2 "$bin" power tr --placement eplb.json "${sim[@]}" --gpu-power-cap 60
echo "power caps: all checks passed"
