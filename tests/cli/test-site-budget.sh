#!/usr/bin/env bash
# moesim deploy / scale --site-power end to end: replicas, wall power and
# winners recomputed independently in Python from the JSON (floor of budget
# over replica power, argmax of tokens/s), more budget never less, skew never
# more, CSV shape, determinism, the measured DeepSeek-V2-Lite skew (when the
# trace is present) and bad input (exit 2).
set -euo pipefail
bin=${MOESIM_BIN:?}; src=${MOESIM_SRC:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-site.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
data=${MOESIM_DATA:-$src/../shared/data}
v2=$data/deepseek-v2-lite-puffin
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

for c in deploy scale; do
  "$bin" $c --help > "$tmp/help"
  for o in --site-power --provision --imbalance-from --imbalance-layout --imbalance-window; do
    grep -q -- "$o" "$tmp/help" || fail "$c --help lacks $o"
  done
done

# ---------------------------------------------------------------- deploy
"$bin" deploy --preset seed-4layer --site-power 10,100,1000 --imbalance 1.5 --ep-sweep --format json -o "$tmp/d.json"
"$bin" deploy --preset seed-4layer --site-power 10,100,1000 --imbalance 1.5 --ep-sweep --format json -o "$tmp/d2.json"
cmp -s "$tmp/d.json" "$tmp/d2.json" || fail "deploy --site-power is not deterministic"
"$bin" deploy --preset seed-4layer --site-power 10,100,1000 --imbalance 1.5 --ep-sweep --provision tdp --format json \
  -o "$tmp/dt.json"
"$py" - "$tmp/d.json" "$tmp/dt.json" <<'PY'
import json, math, sys
for path, prov in zip(sys.argv[1:], ("measured", "tdp")):
    d = json.load(open(path))
    e = d["hardware"]["energy"]
    sb = d["site_budget"]
    assert sb["provision"] == prov and sb["sites_mw"] == [10, 100, 1000], sb["sites_mw"]
    bal, skw = sb["cases"]
    assert bal["case"] == "balanced" and skw["case"] == "skewed"
    names = [p["name"] for p in bal["plans"]]
    assert names[:2] == ["baseline", "method"] and "ep2" in names and "ep16" in names, names
    for case in (bal, skw):
        for i, p in enumerate(case["plans"]):
            b = bal["plans"][i]
            peak = b["peak_w"] if case is bal else max(b["peak_w"], p["peak_w"])
            gpu_w = p["gpus"] * e["tdp_w"] if prov == "tdp" else peak
            assert abs(p["replica_gpu_w"] - gpu_w) <= 1e-9 * gpu_w, (p["name"], p["replica_gpu_w"], gpu_w)
            wall = (gpu_w + p["gpus"] * e["node_overhead_w"]) * e["pue"]
            assert abs(p["replica_site_w"] - wall) <= 1e-9 * wall
            prev = -1
            for s in p["sites"]:
                want = math.floor(s["site_mw"] * 1e6 / wall * (1 + 1e-12)) if p["fits"] else 0
                assert s["replicas"] == want, (p["name"], s, want)
                assert s["gpus"] == want * p["gpus"]
                tps = want * p["replica_tokens_per_s"] if p["fits"] else 0
                assert abs(s["tokens_per_s"] - tps) <= 1e-9 * max(tps, 1)
                assert s["tokens_per_s"] >= prev  # more budget never serves less
                prev = s["tokens_per_s"]
            if p["ep"] == 1:
                assert p["imbalance"] == 1
            elif case is skw:
                assert p["imbalance"] == 1.5
                for s, s0 in zip(p["sites"], b["sites"]):
                    assert s["tokens_per_s"] <= s0["tokens_per_s"]  # skew never serves more
        # the winner is the argmax (first on ties) among plans with a replica
        for j, w in enumerate(case["winners"]):
            cand = [(p["sites"][j]["tokens_per_s"], -i) for i, p in enumerate(case["plans"]) if p["sites"][j]["replicas"]]
            best = -max(cand)[1] if cand else -1
            assert w["index"] == best, (w, best)
            assert w["plan"] == (case["plans"][best]["name"] if best >= 0 else None)
    # ep1 holds all 16 experts of 68.7 GB on one 64 GB GPU: no replica
    ep1 = bal["plans"][names.index("ep1")]
    assert not ep1["fits"] and all(s["replicas"] == 0 for s in ep1["sites"])
    assert "At 10 MW" in sb["verdict"]
# at TDP both 16-GPU plans get the same replicas
dt = json.load(open(sys.argv[2]))["site_budget"]["cases"][0]["plans"]
assert dt[0]["sites"][0]["replicas"] == dt[1]["sites"][0]["replicas"]
PY
"$bin" deploy --preset seed-4layer --site-power 10,100 --imbalance 1.5 --format csv -o "$tmp/d.csv"
[[ $(wc -l < "$tmp/d.csv") == $((1 + 2 * 2 * 2)) ]] || fail "deploy site csv: header + cases x plans x sites"
head -1 "$tmp/d.csv" | grep -q "^case,plan,tp,pp,ep,dp,gpus" || fail "deploy site csv header"
"$bin" deploy --preset seed-4layer --site-power 10 --imbalance 1.5 > "$tmp/d.txt"
grep -q "site budget" "$tmp/d.txt" && grep -q "^At 10 MW" "$tmp/d.txt" && grep -q "^skewed" "$tmp/d.txt" \
  || fail "deploy site table"
# without skew the table shows the balanced case only
"$bin" deploy --preset seed-4layer --site-power 10 > "$tmp/d0.txt"
! grep -q "^skewed" "$tmp/d0.txt" || fail "deploy site table: no skew, no skewed rows"

expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 0
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power -10
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10,0
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power ten
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 1,2,3,4,5,6,7,8,9
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance 0.5
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance nan
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance 17
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --provision nameplate
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance-from "$tmp/none"
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance-window 0
expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance-layout random
expect_exit 2 "$bin" deploy --preset seed-4layer --ep-sweep

# ----------------------------------------------------------------- scale
"$bin" scale --site-power 10,100 --imbalance 1.5 --format json -o "$tmp/s.json"
"$py" - "$tmp/s.json" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1]))
e = d["options"]["energy"]
sb = d["site_budget"]
assert sb["provision"] == "measured" and sb["quality_proxy"] == "total_params"
bal, skw = sb["cases"]
demand = sb["demand_tokens_per_s"]
for case in (bal, skw):
    pts = case["points"]
    for j, site in enumerate(case["sites"]):
        for i, p in enumerate(pts):
            f = p["sites"][j]
            peak = bal["points"][i]["replica_peak_w"] if case is bal else max(bal["points"][i]["replica_peak_w"], p["replica_peak_w"])
            wall = (peak + p["gpus_per_replica"] * e["node_overhead_w"]) * e["pue"]
            assert abs(f["replica_site_w"] - wall) <= 1e-9 * wall
            assert f["replicas"] == math.floor(site["site_mw"] * 1e6 / wall * (1 + 1e-12))
            if j:
                assert f["tokens_per_s"] >= p["sites"][j - 1]["tokens_per_s"]
            if case is skw:
                assert f["tokens_per_s"] <= bal["points"][i]["sites"][j]["tokens_per_s"]
                assert p["imbalance"] == min(1.5, p["ep_ranks"])
        cand = [(p["sites"][j]["tokens_per_s"], -i) for i, p in enumerate(pts) if p["sites"][j]["replicas"]]
        assert site["best_tokens"]["index"] == -max(cand)[1]
        sizes = [(p["sites"][j]["tokens_per_s"], -i) for i, p in enumerate(pts) if p["sweep"] == "size"]
        assert site["best_size"]["index"] == -max(sizes)[1]
        ok = [i for i, p in enumerate(pts) if p["sites"][j]["tokens_per_s"] >= demand]
        top = max(pts[i]["total_params"] for i in ok)
        q = max((pts[i]["sites"][j]["tokens_per_s"], -i) for i in ok if pts[i]["total_params"] >= top / 1.01)
        assert site["best_quality"]["index"] == -q[1]
        assert site["serving_limit"]["fit"]["tokens_per_s"] >= demand
        tl = site["training_limit"]
        assert tl["gpus"] >= tl["gpus_tdp"] and tl["compute_days"] <= d["options"]["wall_days"]
    w0, w1 = case["sites"][0]["training_limit"], case["sites"][1]["training_limit"]
    assert w1["compute_model"]["total_params"] > w0["compute_model"]["total_params"]
# the report's power wall stays: the balanced training walls
assert [w["site_mw"] for w in d["power_wall"]] == [10, 100]
for w, s in zip(d["power_wall"], bal["sites"]):
    assert w == s["training_limit"]
PY
n_points=$("$py" -c "import json,sys; print(len(json.load(open(sys.argv[1]))['points']))" "$tmp/s.json")
"$bin" scale --site-power 10,100 --format csv -o "$tmp/s.csv"
[[ $(wc -l < "$tmp/s.csv") == $((1 + 2 * 2 * n_points)) ]] || fail "scale site csv: header + cases x sites x models"
"$bin" scale --format csv -o "$tmp/s0.csv"
[[ $(wc -l < "$tmp/s0.csv") == $((1 + n_points)) ]] || fail "scale csv without --site-power: one line per model"
"$bin" scale --site-power 100 --provision tdp --sizes 1e10,1e11 --sweep-total 0 > "$tmp/s.txt"
grep -q "power wall" "$tmp/s.txt" && grep -q "training wall" "$tmp/s.txt" && grep -q "serving wall" "$tmp/s.txt" \
  || fail "scale site table"
expect_exit 2 "$bin" scale --site-power 0
expect_exit 2 "$bin" scale --site-power -1
expect_exit 2 "$bin" scale --sites 10,abc
expect_exit 2 "$bin" scale --demand 0
expect_exit 2 "$bin" scale --imbalance 0.99
expect_exit 2 "$bin" scale --imbalance inf
expect_exit 2 "$bin" scale --provision nameplate
expect_exit 2 "$bin" scale --imbalance-from "$tmp/none"

# ------------------------------------------- the measured DeepSeek-V2-Lite skew
if [[ -d $v2 ]]; then
  "$bin" deploy --preset deepseek-v2-lite-a100 --site-power 10,100,1000 --imbalance-from "$v2" --format json \
    -o "$tmp/v.json"
  "$bin" scale --site-power 10,100,1000 --imbalance-from "$v2" --format json -o "$tmp/vs.json"
  "$py" - "$tmp/v.json" "$tmp/vs.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["site_budget"]
bal, skw = d["cases"]
for p, b in zip(skw["plans"], bal["plans"]):
    if p["ep"] == 1:
        assert p["imbalance"] == 1 and p["sites"] == b["sites"]
    else:
        assert 1 < p["imbalance"] <= p["ep"] and p["window_tokens"] > 0, p
        assert all(s["tokens_per_s"] < s0["tokens_per_s"] for s, s0 in zip(p["sites"], b["sites"]))
eps = sorted((p["ep"], p["imbalance"]) for p in skw["plans"] if p["ep"] > 1)
assert all(a[1] <= b[1] for a, b in zip(eps, eps[1:])), eps  # more EP ranks, more skew
s = json.load(open(sys.argv[2]))["site_budget"]
sb, ss = s["cases"]
for p in ss["points"]:
    assert p["skew_known"] == (p["experts"] == 64)
    if not p["skew_known"]:
        assert p["imbalance"] is None and all(f["replicas"] == 0 for f in p["sites"])
for a, b in zip(sb["sites"], ss["sites"]):
    assert b["training_limit"]["imbalance"] > 1
    assert b["training_limit"]["compute_model"]["total_params"] < a["training_limit"]["compute_model"]["total_params"]
PY
  expect_exit 2 "$bin" scale --imbalance-from "$v2" --experts 32 --sweep-total 0
  expect_exit 2 "$bin" deploy --preset seed-4layer --site-power 10 --imbalance-from "$v2"
  expect_exit 2 "$bin" deploy --preset deepseek-v2-lite-a100 --site-power 10 --imbalance-from "$v2" --imbalance 2
fi
echo ok
