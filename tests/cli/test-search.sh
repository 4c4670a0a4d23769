#!/usr/bin/env bash
# moesim place --algo search end to end: never worse than its start on the
# training objective (checked with moesim simulate), metadata, determinism
# over thread counts, held-out evaluation, bad options, a real trace.
set -euo pipefail
bin=${MOESIM_BIN:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-search.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

"$bin" place --help > "$tmp/help"
grep -qE "^  search " "$tmp/help" || fail "--help does not explain search"
for o in --init --objective --iterations --chains --traffic-weight --min-windows --cost-model --route; do
  grep -q -- "$o" "$tmp/help" || fail "--help does not mention $o"
done

"$bin" gen --layers 3 --experts 16 --top-k 2 --requests 60 --tokens 3000 --decode 0 --seed 4 \
  -o "$tmp/tr" --quiet > /dev/null
grid=(--rows 2 --cols 2 --slots 5)
sim=(--cost-model roofline --model deepseek-v2-lite --batch prefill --batch-tokens 200 --route least-loaded)
"$bin" place "$tmp/tr@train" --algo eplb "${grid[@]}" --no-lp-bound -o "$tmp/eplb.json" --quiet > /dev/null
"$bin" place "$tmp/tr@train" --algo search --init eplb "${grid[@]}" "${sim[@]}" --iterations 3000 --seed 3 \
  --threads 1 -o "$tmp/s1.json" --quiet > "$tmp/table"
grep -q "search" "$tmp/table" || fail "summary names the algorithm"
"$bin" place "$tmp/tr@train" --algo search --init eplb "${grid[@]}" "${sim[@]}" --iterations 3000 --seed 3 \
  --threads 2 -o "$tmp/s2.json" --quiet > /dev/null
for f in eplb s1; do
  "$bin" simulate "$tmp/tr@train" --placement "$tmp/$f.json" "${sim[@]}" --format json --quiet > "$tmp/$f.sim.json"
done
"$bin" compare "$tmp/tr@eval" --placement "$tmp/eplb.json" --placement "$tmp/s1.json" \
  --route round-robin,least-loaded --cost-model roofline --model deepseek-v2-lite --batch prefill --batch-tokens 200 --quiet > "$tmp/cmp"
grep -q "s1.json" "$tmp/cmp" || fail "compare on held-out requests"
"$py" - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
s1, s2 = json.load(open(t + "/s1.json")), json.load(open(t + "/s2.json"))
e = json.load(open(t + "/eplb.json"))
m = s1["metadata"]
assert m["algorithm"] == "search", m
p = m["params"] if isinstance(m["params"], dict) else json.loads(m["params"])
assert p["init"] == "eplb" and p["objective"] == "imbalance" and p["route"] == "least-loaded", p
assert p["stopped_by_time"] is False and p["iterations"] > 0, p
# the reported objective is the simulated training imbalance, never above eplb's
ie = json.load(open(t + "/eplb.sim.json"))["summary"]["imbalance"]["mean"]
i1 = json.load(open(t + "/s1.sim.json"))["summary"]["imbalance"]["mean"]
assert abs(m["objective"] - i1) < 1e-9 * (1 + i1), (m["objective"], i1)
assert i1 <= ie + 1e-12, (i1, ie)
assert abs(p["init_objective"] - ie) < 1e-6, (p["init_objective"], ie)
assert 1.0 <= m["lower_bound"] <= m["objective"] + 1e-12, m
# same seed, 1 or 2 threads: the same placement
assert s1["phy2log"] == s2["phy2log"] and s1["metadata"]["objective"] == s2["metadata"]["objective"]
# the slot budget is eplb's
for l in range(3):
    assert sum(x >= 0 for x in s1["phy2log"][l]) == sum(x >= 0 for x in e["phy2log"][l])
    assert all(c >= 1 for c in s1["logcnt"][l])
PY

# the mesh model's layer time, one layer only, starting from another algorithm
"$bin" place "$tmp/tr@train" --algo search --init replicate "${grid[@]}" --cost-model mesh --batch per-request \
  --route balanced-replicas --objective p99 --layer 1 --iterations 2000 -o "$tmp/m.json" --quiet > /dev/null
"$bin" place "$tmp/tr@train" --algo replicate "${grid[@]}" --no-lp-bound -o "$tmp/rep.json" --quiet > /dev/null
for f in rep m; do
  "$bin" simulate "$tmp/tr@train" --placement "$tmp/$f.json" --cost-model mesh --batch per-request \
    --route balanced-replicas --layer 1 --format json --quiet > "$tmp/$f.sim.json"
done
"$py" - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
m, r = json.load(open(t + "/m.json")), json.load(open(t + "/rep.json"))
assert m["phy2log"][0] == r["phy2log"][0] and m["phy2log"][2] == r["phy2log"][2], "only --layer 1 may change"
a = json.load(open(t + "/rep.sim.json"))["summary"]["layer_us"]["p99"]
b = json.load(open(t + "/m.sim.json"))["summary"]["layer_us"]["p99"]
assert b <= a + 1e-9 and abs(m["metadata"]["objective"] - b) < 1e-6 * (1 + b), (a, b, m["metadata"]["objective"])
PY

# power objectives: checked with moesim power and moesim simulate under the same cap
"$bin" place "$tmp/tr@train" --algo search --init eplb "${grid[@]}" "${sim[@]}" --objective peak-power \
  --iterations 2000 -o "$tmp/pk.json" --quiet > /dev/null
"$bin" place "$tmp/tr@train" --algo search --init eplb "${grid[@]}" "${sim[@]}" --objective time-under-cap \
  --gpu-power-cap 150 --iterations 2000 -o "$tmp/tc.json" --quiet > /dev/null
"$bin" place "$tmp/tr@train" --algo search --init eplb "${grid[@]}" "${sim[@]}" --objective mix --mix 1,1,1 \
  --iterations 2000 -o "$tmp/mx.json" --quiet > /dev/null
"$bin" power "$tmp/tr@train" --placement "$tmp/eplb.json" --placement "$tmp/pk.json" "${sim[@]}" --format json \
  --quiet > "$tmp/pk.power.json"
for f in eplb tc; do
  "$bin" simulate "$tmp/tr@train" --placement "$tmp/$f.json" "${sim[@]}" --gpu-power-cap 150 --format json \
    --quiet > "$tmp/$f.cap.json"
done
"$py" - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
runs = json.load(open(t + "/pk.power.json"))["runs"]
pk = json.load(open(t + "/pk.json"))["metadata"]
assert abs(pk["objective"] - runs[1]["peak_w"]) <= 1e-9 * runs[1]["peak_w"], (pk["objective"], runs[1]["peak_w"])
assert runs[1]["peak_w"] <= runs[0]["peak_w"] * (1 + 1e-12), runs
tc = json.load(open(t + "/tc.json"))["metadata"]
a = json.load(open(t + "/eplb.cap.json"))["summary"]
b = json.load(open(t + "/tc.cap.json"))["summary"]
assert a["throttled_us"] > 0, "a 150 W cap should bind"
assert abs(tc["objective"] - b["layer_us"]["mean"]) <= 1e-9 * b["layer_us"]["mean"], (tc["objective"], b)
assert b["layer_us"]["mean"] <= a["layer_us"]["mean"] + 1e-9
p = tc["params"] if isinstance(tc["params"], dict) else json.loads(tc["params"])
assert p["gpu_cap_w"] == 150 and p["energy"] == "h100-sxm", p
mx = json.load(open(t + "/mx.json"))["metadata"]
assert mx["objective"] <= 3 + 1e-9, mx   # each part over eplb's: eplb scores 3
PY

# a Pareto answer: no dominated point on the front (checked independently), the init covered,
# one placement file per point whose simulation and power give the point's numbers
"$bin" place "$tmp/tr@train" --algo search "${grid[@]}" "${sim[@]}" --pareto time,peak-power --iterations 1000 \
  --pareto-searches 3 --format csv -o "$tmp/front.json" --quiet > "$tmp/front.csv"
head -1 "$tmp/front.csv" | grep -q "^label,source,front," || fail "pareto CSV header"
"$py" - "$tmp" <<'PY' > "$tmp/pick"
import json, os, sys
t = sys.argv[1]
f = json.load(open(t + "/front.json"))
assert f["pareto"]["axes"] == ["time", "peak-power"], f["pareto"]
pts = f["points"]
key = lambda p: (p["layer_us_mean"], p["peak_w"])
def dom(b, a):  # b dominates a
    return all(x <= y for x, y in zip(key(b), key(a))) and any(x < y for x, y in zip(key(b), key(a)))
for a in pts:
    d = any(dom(b, a) for b in pts if b is not a)
    assert d == (not a["front"]), (a["label"], d, a["front"])
    assert os.path.exists(os.path.join(t, a["placement"])), a["placement"]
init = [p for p in pts if p["source"] == "init"]
assert len(init) == 1 and init[0]["algorithm"] == "eplb", init
assert any(p["front"] and all(x <= y for x, y in zip(key(p), key(init[0]))) for p in pts)
assert sum(p["source"] == "search" for p in pts) == 3 and sum(p["front"] for p in pts) >= 1
s = [p for p in pts if p["source"] == "search"][1]
print(s["placement"], repr(s["peak_w"]), repr(s["energy_per_token_j"]), repr(s["layer_us_mean"]))
PY
read -r pfile pk ept lt < "$tmp/pick"
"$bin" power "$tmp/tr@train" --placement "$tmp/$pfile" "${sim[@]}" --format json --quiet > "$tmp/pick.json"
"$py" - "$tmp/pick.json" "$pk" "$ept" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
assert abs(r["peak_w"] - float(sys.argv[2])) <= 1e-9 * r["peak_w"], (r["peak_w"], sys.argv[2])
assert abs(r["energy_per_token_j"] - float(sys.argv[3])) <= 1e-9 * r["energy_per_token_j"]
PY
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" "${sim[@]}" --pareto time,peak-power
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" "${sim[@]}" --pareto time,watts -o "$tmp/x.json"
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" "${sim[@]}" --pareto time,energy \
  --pareto-searches 1 -o "$tmp/x.json"
expect_exit 2 "$bin" place "$tmp/tr" --algo eplb "${grid[@]}" --pareto time,energy -o "$tmp/x.json"
[[ ! -e $tmp/x.json ]] || fail "a refused --pareto wrote its output"

# bad options
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --objective energy --cost-model mesh
grep -q "roofline" "$tmp/err" || fail "power objectives with the mesh model: no reason given"
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --objective mix --mix 0,0,0
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" "${sim[@]}" --gpu-power-cap 20
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --objective fast
expect_exit 2 "$bin" place "$tmp/tr" --algo eplb "${grid[@]}" --route least-loaded
grep -q "search" "$tmp/err" || fail "message for search options without --algo search"
printf '1,2,3,4\n' > "$tmp/w.csv"
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo search --rows 1 --cols 2 --slots 2
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --init search
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --cost-model mesh --route split
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --layer 9
expect_exit 2 "$bin" place "$tmp/tr" --algo search "${grid[@]}" --chains 0
expect_exit 2 "$bin" place "$tmp/tr" --algo search --rows 1 --cols 1 --slots 2

# a real trace, one layer (skipped when absent)
data=${MOESIM_DATA:-}/deepseek-v2-lite-puffin
if [[ -d $data ]]; then
  "$bin" place "$data@train" --algo search --rows 2 --cols 8 --slots 6 --cost-model roofline --batch prefill \
    --batch-tokens 4096 --route round-robin --layer 7 --iterations 4000 --format json -o "$tmp/real.json" \
    --quiet > "$tmp/real.out"
  "$py" - "$tmp" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/real.json"))["metadata"]
p = m["params"] if isinstance(m["params"], dict) else json.loads(m["params"])
assert m["objective"] <= p["init_objective"] + 1e-9, m
PY
fi
echo ok
