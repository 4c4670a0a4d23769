#!/usr/bin/env bash
# moesim replay end to end on a small synthetic trace with an abrupt shift:
# help and usage errors (exit 2, one message, no output file); static equals
# moesim simulate of the same placement in trace order (serving time exactly);
# incremental with --max-moves 0 equals static; moved bytes = replicas moved x
# expert bytes (per event and in sum); tokens and assignments conserved across
# re-placements; the oracle never loses to a policy of its interval; the
# summary agrees with its own steps; same bytes for any thread count and on a
# rerun (but the wall-time fields); --steps-csv and --format csv shapes;
# --init on the first interval's loads; mixed and decode steps; overlap
# migration. The real-trace part (TRACE+TRACE@permute) is skipped when
# ../shared/data is absent.
set -euo pipefail
bin=${MOESIM_BIN:?}; data=${MOESIM_DATA:-}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-replay.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

T=$tmp/T
"$bin" gen --layers 4 --experts 16 --top-k 2 --requests 80 --prompt-mean 48 --decode 12 --shift 40 \
  --seed 3 -o "$T" > /dev/null
"$bin" place "$T" --cluster 2x2x5 --algo eplb -o "$tmp/p.json" > /dev/null
common=(--placement "$tmp/p.json" --model deepseek-v2-lite --batch per-request)

# ---- help and usage errors
"$bin" replay --help > "$tmp/help"
for w in --rebalance --rebalance-every --window --max-moves --migration --init --after-request --steps-csv; do
  grep -q -- "$w" "$tmp/help" || fail "help does not mention $w"
done
"$bin" --help | grep -q replay || fail "moesim --help does not list replay"
bad=(
  "--rebalance nope"
  "--rebalance static,static"
  "--rebalance-every 0"
  "--rebalance-every 10bananas"
  "--window -3"
  "--max-moves -1"
  "--max-moves x"
  "--migration sometimes"
  "--variance-weight -1"
  "--layer 1"
  "--init eplb"
)
for b in "${bad[@]}"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$bin" replay "$T" "${common[@]}" $b -o "$tmp/never.json"
  [[ $(wc -l < "$tmp/err") -le 2 ]] || { cat "$tmp/err"; fail "more than a message for $b"; }
  [[ ! -e $tmp/never.json ]] || fail "$b left an output file"
done
expect_exit 2 "$bin" replay "$T" --model deepseek-v2-lite   # neither --placement nor --cluster
expect_exit 2 "$bin" replay "$T" --cluster 2x2x5            # no preset for 16 experts: bytes unknown
grep -q -- "--model" "$tmp/err" || fail "no hint to give --model"
expect_exit 2 "$bin" replay "$T" --cluster 2x2x2 --model deepseek-v2-lite   # 8 slots < 16 experts
expect_exit 2 "$bin" replay "$tmp/missing" "${common[@]}"

# ---- static = simulate in trace order; K = 0 = static; bytes, tokens, oracle, summaries
"$bin" simulate "$T" --placement "$tmp/p.json" --batch per-request --order trace --format json -o "$tmp/sim.json"
"$bin" replay "$T" "${common[@]}" --rebalance-every 10,25 --max-moves 0,6 --after-request 40 \
  --format json -o "$tmp/r.json" --steps-csv "$tmp/steps.csv"
"$py" - "$tmp/r.json" "$tmp/sim.json" "$tmp/steps.csv" <<'PY'
import csv, json, sys
r = json.load(open(sys.argv[1])); sim = json.load(open(sys.argv[2]))
assert r["format"] == "moesim-replay", r["format"]
runs = r["runs"]; eb = r["options"]["expert_bytes"]
tokens = r["trace"]["tokens"]; L = r["trace"]["layers"]; K = r["trace"]["top_k"]
static = [x for x in runs if x["policy"] == "static"]
assert len(static) == 1
st = static[0]["summary"]
assert st["serve_us"] == sim["summary"]["total_us"], (st["serve_us"], sim["summary"]["total_us"])
assert abs(st["imbalance"] - sim["summary"]["imbalance"]["mean"]) < 1e-12
skip = {"policy", "decisions", "decide_wall_us_mean", "decide_wall_us_max"}  # K = 0 is asked, copies nothing
for x in runs:
    s = x["summary"]
    if x["policy"] == "incremental" and x["max_moves"] == 0:
        assert {k: v for k, v in s.items() if k not in skip} == {k: v for k, v in st.items() if k not in skip}
        assert x["events"] == [] and x["steps"] == static[0]["steps"]
    # bytes = replicas x expert bytes, per event and in sum (no shared expert here)
    for e in x["events"]:
        assert e["bytes"] == e["replicas_moved"] * eb, e
        assert e["bytes_inter_row"] == e["replicas_moved_inter_row"] * eb, e
        assert e["effective"] >= e["point"]
    assert s["bytes_moved"] == sum(e["bytes"] for e in x["events"])
    assert s["replicas_moved"] == sum(e["replicas_moved"] for e in x["events"])
    assert s["replacements"] == len(x["events"])
    # tokens conserved: every step served, every token routed to top_k experts in every layer
    steps = x["steps"]
    assert len(steps) == s["steps"] == 80 and [t["step"] for t in steps] == list(range(80))
    assert sum(t["tokens"] for t in steps) == s["tokens"] == tokens
    assert s["assignments"] == tokens * L * K and s["dropped"] == 0
    assert abs(s["serve_us"] - sum(t["serve_us"] for t in steps)) <= 1e-9 * s["serve_us"]
    assert abs(s["migration_us"] - sum(t["migration_us"] for t in steps)) <= 1e-9 * max(1, s["migration_us"])
    assert abs(s["total_us"] - s["serve_us"] - s["migration_us"]) <= 1e-9 * s["total_us"]
    assert s["before"]["steps"] + s["after"]["steps"] == 80
    # a placement serves only after its copies: versions step up at effective steps
    eff = {e["effective"]: e["version"] for e in x["events"]}
    v = 0
    for t in steps:
        v = eff.get(t["step"], v)
        assert t["version"] == v, (x["policy"], t)
    if x["policy"] in ("periodic-eplb", "incremental") and x.get("max_moves", 1) > 0:
        assert s["decisions"] > 0
# the oracle of an interval beats every policy of that interval (and static)
for x in runs:
    if x["policy"] != "oracle":
        continue
    for y in runs:
        if y["every"] == x["every"] or y["policy"] == "static":
            assert x["summary"]["total_us"] <= y["summary"]["total_us"] * (1 + 1e-12), (x["every"], y["policy"])
    assert x["comparison"]["gap_to_oracle_us"] == 0 or x["comparison"]["gap_to_oracle_us"] is None
rows = list(csv.DictReader(open(sys.argv[3])))
assert len(rows) == 80 * len(runs), len(rows)
assert sum(int(row["tokens"]) for row in rows if row["run"] == "0") == tokens
PY

# ---- something moves at all: incremental follows the shift with few copies
"$py" - "$tmp/r.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
inc = [x for x in runs if x["policy"] == "incremental" and x["max_moves"] == 6]
eplb = [x for x in runs if x["policy"] == "periodic-eplb"]
assert inc and all(x["summary"]["replicas_moved"] > 0 for x in inc)
assert all(i["summary"]["replicas_moved"] <= 6 * i["summary"]["decisions"] for i in inc)
assert sum(i["summary"]["bytes_moved"] for i in inc) < sum(e["summary"]["bytes_moved"] for e in eplb)
PY

# ---- determinism: threads, reruns; only wall times may differ
strip() { "$py" -c '
import json, sys
def clean(x):
    if isinstance(x, dict): return {k: clean(v) for k, v in x.items() if "wall_us" not in k}
    if isinstance(x, list): return [clean(v) for v in x]
    return x
print(json.dumps(clean(json.load(open(sys.argv[1]))), sort_keys=True))' "$1"; }
"$bin" replay "$T" "${common[@]}" --rebalance-every 10,25 --max-moves 0,6 --after-request 40 --threads 2 \
  --format json -o "$tmp/r2.json" --steps-csv "$tmp/steps2.csv"
[[ "$(strip "$tmp/r.json")" == "$(strip "$tmp/r2.json")" ]] || fail "threads change the replay"
cmp "$tmp/steps.csv" "$tmp/steps2.csv" || fail "threads change the steps CSV"

# ---- csv: one line per run; table names the best interval
"$bin" replay "$T" "${common[@]}" --rebalance-every 10,25 --max-moves 0,6 --format csv -o "$tmp/r.csv"
n_runs=$("$py" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]))' "$tmp/r.json")
[[ $(($(wc -l < "$tmp/r.csv") - 1)) == "$n_runs" ]] || fail "csv lines != runs"
head -1 "$tmp/r.csv" | grep -q "^policy,every" || fail "csv header"
"$bin" replay "$T" "${common[@]}" --rebalance-every 10,25 > "$tmp/table"
grep -q "best interval for periodic-eplb" "$tmp/table" || fail "table names no best interval"

# ---- --init on the first interval's loads; mixed and decode steps; overlap migration
"$bin" replay "$T" --cluster 2x2x5 --model deepseek-v2-lite --init eplb --batch mixed --batch-tokens 256 \
  --migration overlap --rebalance static,incremental --rebalance-every 5 --format json -o "$tmp/m.json"
"$bin" replay "$T" --cluster 2x2x5 --model deepseek-v2-lite --batch decode --decode-batch 8 \
  --rebalance-every 2ktokens --format json --no-steps -o "$tmp/d.json"
"$py" - "$tmp/m.json" "$tmp/d.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))
assert "eplb on the loads of the first 5 steps" in m["options"]["initial_placement"]
assert m["options"]["batch"] == "mixed" and m["runs"][1]["migration"] == "overlap"
for x in m["runs"]:
    assert sum(t["tokens"] for t in x["steps"]) == m["trace"]["tokens"]
assert d["options"]["batch"] == "decode"
assert all("steps" not in x for x in d["runs"])
assert all(x["every"] == {"n": 2000, "unit": "tokens"} for x in d["runs"] if x["policy"] != "static")
PY

# ---- the real trace followed by a re-seeded permutation of its expert ids
if [[ -n $data && -d $data/deepseek-v2-lite-puffin ]]; then
  R=$data/deepseek-v2-lite-puffin
  "$bin" replay "$R+$R@permute=7" --cluster 2x8x6 --batch mixed --cost-model roofline --route least-loaded \
    --rebalance static,periodic-eplb,incremental --rebalance-every 10 --max-moves 128 --after-request 999 \
    --format json --no-steps -o "$tmp/real.json"
  "$py" - "$tmp/real.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["trace"]["requests"] == 1998
s = {x["policy"]: x["summary"] for x in r["runs"]}
# after the shift both rebalancing policies beat the placement computed before it
assert s["periodic-eplb"]["after"]["imbalance"] < s["static"]["after"]["imbalance"]
assert s["incremental"]["after"]["imbalance"] < s["static"]["after"]["imbalance"]
assert s["incremental"]["bytes_moved"] <= 0.25 * s["periodic-eplb"]["bytes_moved"]
PY
fi
echo "cli-test-replay: ok"
