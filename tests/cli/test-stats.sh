#!/usr/bin/env bash
# moesim info / stats end to end: numpy's counts on the real traces (skipped
# when ../shared/data is absent), fixtures, bad input and exit codes.
set -euo pipefail
bin=${MOESIM_BIN:?}; src=${MOESIM_SRC:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-stats.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

"$bin" --help | grep -q stats
"$bin" stats --help | grep -q -- "--window"
"$bin" info --help | grep -q -- "--experts"
expect_exit 2 "$bin" nosuchcommand
expect_exit 2 "$bin" stats
expect_exit 2 "$bin" stats --window abc x
expect_exit 2 "$bin" stats --phase sideways x
expect_exit 2 "$bin" info "$tmp/missing"
grep -q "missing" "$tmp/err"

"$py" "$src/tests/tools/make_trace_fixtures.py" "$tmp/fx" > "$tmp/fx.json"
"$bin" info "$tmp/fx/good" --format json -o "$tmp/info.json"
"$py" - "$tmp/info.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["requests"] == 4 and d["layers"] == 3 and d["top_k"] == 2 and d["experts"] == 8, d
assert d["prompt_tokens"] == 16 and d["output_tokens"] == 7 and d["rows"] == 22, d
assert d["dtype"] == "<i4" and d["bytes"] > 0 and d["short_rows_requests"] == 1
PY
for bad in rows float missing negative topk0 layers empty; do
  expect_exit 2 "$bin" info "$tmp/fx/bad_$bad"
  grep -q "bad_$bad" "$tmp/err" || fail "error for bad_$bad does not name the file"
  [[ $(wc -l < "$tmp/err") == 1 ]] || fail "error for bad_$bad is not one line"
done
# a failed run leaves no output file behind
expect_exit 2 "$bin" stats "$tmp/fx/bad_rows" -o "$tmp/never.json"
[[ ! -e "$tmp/never.json" ]] || fail "half-written output left behind"
ls "$tmp" | grep -q tmp && fail "temp file left behind"

"$bin" stats "$tmp/fx/good" --format csv -o "$tmp/s.csv"
[[ $(head -1 "$tmp/s.csv") == layer,expert,load,* ]] || fail "csv header"
[[ $(wc -l < "$tmp/s.csv") == 25 ]] || fail "csv rows"

# a seeded request split: @train and @eval are disjoint and cover the trace
"$bin" info "$tmp/fx/good@train" --format json -o "$tmp/tr.json"
"$bin" info "$tmp/fx/good@eval" --format json -o "$tmp/ev.json"
"$py" - "$tmp/tr.json" "$tmp/ev.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
assert a["requests"] == 2 and b["requests"] == 2, (a["requests"], b["requests"])
assert a["rows"] + b["rows"] == 22
PY
"$bin" info "$tmp/fx/good@train=0.75,seed=4" --format csv | tail -1 | grep -q "^3,"
expect_exit 2 "$bin" info "$tmp/fx/good@train=1.5"
expect_exit 2 "$bin" info "$tmp/fx/good@eval,seed=x"

data=${MOESIM_DATA:-}
if [[ -z $data || ! -d $data/deepseek-v2-lite-puffin ]]; then
  echo "real traces absent: skipping the numpy cross-check"; exit 0
fi
for spec in "deepseek-v2-lite-puffin all 0" "llama4-maverick-mmlu decode 128" "llama4-maverick-mmlu prefill 128"; do
  set -- $spec
  opts=(--phase "$2" --format json -o "$tmp/$1-$2.json" --quiet)
  [[ $3 != 0 ]] && opts+=(--experts "$3")
  "$bin" stats "$data/$1" "${opts[@]}"
  "$py" - "$data/$1" "$2" "$tmp/$1-$2.json" <<'PY'
import glob, json, sys
import numpy as np
d, phase, out = sys.argv[1:]
s = json.load(open(out))
files = sorted(glob.glob(d + "/*.npz"))
E = s["experts"]
loads = None
for f in files:
    z = np.load(f)
    re, P = z["routed_experts"], len(z["prompt_token_ids"])
    rows = re[:P] if phase == "prefill" else re[P:] if phase == "decode" else re
    if loads is None:
        loads = np.zeros((re.shape[1], E), np.int64)
    for l in range(re.shape[1]):
        loads[l] += np.bincount(rows[:, l, :].ravel(), minlength=E)
assert s["requests"] == len(files), (s["requests"], len(files))
assert s["layers"] == loads.shape[0]
for l, per in enumerate(s["per_layer"]):
    assert per["layer"] == l
    got = np.array(per["expert_load"])
    assert (got == loads[l]).all(), (l, got[:8], loads[l][:8])
    m = loads[l].mean()
    assert abs(per["max_mean_ratio"] - loads[l].max() / m) < 1e-12 * loads[l].max() / m
print("numpy agrees:", d.split("/")[-1], phase, loads.sum(), "assignments")
PY
done
