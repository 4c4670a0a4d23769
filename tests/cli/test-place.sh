#!/usr/bin/env bash
# moesim place end to end: EPLB's README example and reference outputs, the
# three file formats, summaries, a trace input, bad input and exit codes.
set -euo pipefail
bin=${MOESIM_BIN:?}; src=${MOESIM_SRC:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-place.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

# --help explains every algorithm
"$bin" --help | grep -q place
"$bin" place --help > "$tmp/help"
for a in contiguous round-robin pair replicate eplb one-per-gpu tail coact balance balance-coact \
         hot-tier greedy-cost ilp; do
  grep -qE "^  $a " "$tmp/help" || fail "--help does not explain $a"
done

# EPLB's README example
printf '90,132,40,61,104,165,39,4,73,56,183,86\n20,107,104,64,19,197,187,157,172,86,16,27\n' > "$tmp/w.csv"
"$bin" place --loads "$tmp/w.csv" --algo eplb --rows 2 --cols 4 --slots 2 --groups 4 \
  -o "$tmp/p.json" --sglang "$tmp/sg.json" --peer "$tmp/peer.json" --layer 1 > "$tmp/table"
grep -q "balancedness" "$tmp/table" || fail "table header"
grep -q "runtime" "$tmp/table" || fail "table runtime"
"$py" - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
p = json.load(open(t + "/p.json"))
assert p["phy2log"] == [[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
                        [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]], p["phy2log"]
assert p["devices"] == 8 and p["rows"] == 2 and p["cols"] == 4 and p["slots_per_device"] == 2
assert p["layers"] == 2 and p["routed_experts"] == 12 and p["shared_expert"] is False
for l in range(2):
    for e in range(12):
        slots = [s for s in p["log2phy"][l][e] if s >= 0]
        assert len(slots) == p["logcnt"][l][e] and all(p["phy2log"][l][s] == e for s in slots)
m = p["metadata"]
assert m["algorithm"] == "eplb" and m["params"]["groups"] == 4
assert m["lower_bound"] <= m["objective"] and len(m["layer_bound"]) == 2 and m["runtime_s"] >= 0
sg = json.load(open(t + "/sg.json"))
assert sg == {"physical_to_logical_map": p["phy2log"]}
peer = json.load(open(t + "/peer.json"))
assert sorted(map(int, peer)) == list(range(12))
for e, reps in peer.items():
    for r in reps:
        assert r["device"] == r["row"] * 4 + r["col"]
        assert p["phy2log"][1][r["device"] * 2 + r["slot"]] == int(e)
PY

# summaries as json and csv
"$bin" place --loads "$tmp/w.csv" --algo pair --rows 2 --cols 4 --slots 2 --format json > "$tmp/s.json"
"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["algorithm"]=="pair" and len(d["per_layer"])==2' "$tmp/s.json"
"$bin" place --loads "$tmp/w.csv" --algo replicate --rows 2 --cols 4 --slots 2 --format csv > "$tmp/s.csv"
[[ $(head -1 "$tmp/s.csv") == layer,max_load,mean_load,balancedness,lower_bound ]] || fail "csv header"
[[ $(wc -l < "$tmp/s.csv") == 3 ]] || fail "csv rows"

# same input, same bytes (apart from the measured runtime)
for i in 1 2; do
  "$bin" place --loads "$tmp/w.csv" --algo replicate --rows 2 --cols 4 --slots 2 --shared-expert \
    --shared-load 300 -o "$tmp/r$i.json" > /dev/null
  grep -v runtime_s "$tmp/r$i.json" > "$tmp/r$i.norun"
done
cmp -s "$tmp/r1.norun" "$tmp/r2.norun" || fail "two runs differ"
"$py" - "$tmp/r1.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["shared_expert"] is True and p["logical_experts"] == 13
row = p["phy2log"][0]
assert row[0] == 12 and row[5 * 2] == 12, row   # replica i at row i, column i mod 4, slot 0
assert p["metadata"]["params"]["shared_load"] == 300
PY

# bad input: exit 2, one line naming the problem, no output left behind
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo eplb --rows 2 --cols 4 --slots 1 -o "$tmp/never.json"
grep -q "slot budget" "$tmp/err" || fail "slot budget message"
[[ ! -e "$tmp/never.json" ]] || fail "output written on failure"
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo nosuch --rows 2 --cols 4 --slots 2
grep -q "nosuch" "$tmp/err" || fail "unknown algorithm message"
expect_exit 2 "$bin" place --loads "$tmp/missing.csv" --algo eplb --rows 2 --cols 4 --slots 2
grep -q "missing.csv" "$tmp/err" || fail "missing file message"
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo eplb --cols 4 --slots 2
expect_exit 2 "$bin" place --algo eplb --rows 2 --cols 4 --slots 2
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --rows 2 --cols 4 --slots two
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo eplb --rows 2 --cols 4 --slots 2 --groups 8
grep -q "groups" "$tmp/err" || fail "groups message"
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo eplb --rows 2 --cols 4 --slots 2 --peer "$tmp/x.json"
grep -q -- "--layer" "$tmp/err" || fail "--peer without --layer"
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo pair --rows 2 --cols 4 --slots 2 --shared-replicas 2
expect_exit 2 "$bin" place --loads "$tmp/w.csv" --algo contiguous --rows 2 --cols 4 --slots 2 --sglang "$tmp/sg2.json"
grep -q "empty" "$tmp/err" || fail "sglang with empty slots"
printf '1,2,x\n' > "$tmp/bad.csv"
expect_exit 2 "$bin" place --loads "$tmp/bad.csv" --algo eplb --rows 1 --cols 2 --slots 2
grep -q "bad.csv" "$tmp/err" || fail "bad csv message names the file"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "error is not one line"
ls "$tmp" | grep -q '\.tmp\.' && fail "temp file left behind"

# a trace as input (fixtures), with the shared expert's load = tokens per layer
"$py" "$src/tests/tools/make_trace_fixtures.py" "$tmp/fx" > /dev/null
"$bin" place "$tmp/fx/good" --quiet --algo replicate --rows 1 --cols 4 --slots 3 --shared-expert \
  --format json -o "$tmp/fx.json" > "$tmp/fx-summary.json"
"$py" - "$tmp/fx.json" "$tmp/fx-summary.json" <<'PY'
import json, sys
p, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert p["routed_experts"] == 8 and p["layers"] == 3 and p["shared_expert"] is True
assert p["metadata"]["trace_digest"] != "0x0000000000000000"
# 22 token rows: the one shared replica alone carries 22 per layer
assert all(l["lower_bound"] >= 22 for l in s["per_layer"]), s
PY

# DeepSeek's reference outputs through the CLI (skipped when absent)
ref=${MOESIM_REF:-}
if [[ -n $ref && -d $ref/eplb ]]; then
  for csv in "$ref"/eplb/*.csv; do
    exp=${csv%.csv}.expected.json
    read -r rows cols slots groups < <("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["rows"], d["cols"], d["slots"], d["groups"])' "$exp")
    "$bin" place --loads "$csv" --algo eplb --rows "$rows" --cols "$cols" --slots "$slots" --groups "$groups" \
      --no-lp-bound -o "$tmp/ref.json" > /dev/null
    "$py" - "$tmp/ref.json" "$exp" <<'PY'
import json, sys
p, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert p["phy2log"] == e["phy2log"] and p["logcnt"] == e["logcnt"], sys.argv[2]
for a, b in zip(p["log2phy"], e["log2phy"]):
    for x, y in zip(a, b):
        assert {s for s in x if s >= 0} == {s for s in y if s >= 0}
PY
  done
else
  echo "reference outputs absent: skipping them"
fi

# a real trace (skipped when absent): EPLB for DeepSeek-V2-Lite on 2x8 devices, peer export
data=${MOESIM_DATA:-}
if [[ -n $data && -d $data/deepseek-v2-lite-puffin ]]; then
  "$bin" place "$data/deepseek-v2-lite-puffin" --quiet --algo eplb --rows 2 --cols 8 --slots 6 --no-lp-bound \
    --peer "$tmp/l10.json" --layer 10 --format csv > "$tmp/real.csv"
  [[ $(wc -l < "$tmp/real.csv") == 27 ]] || fail "26 layers expected"
  "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sum(len(v) for v in d.values())==96' "$tmp/l10.json"
else
  echo "real traces absent: skipping them"
fi
echo ok
