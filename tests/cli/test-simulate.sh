#!/usr/bin/env bash
# moesim simulate / compare end to end: usage errors, a small npz trace and
# the same trace as moe-balance JSONL, both cost models, every output format,
# compare over the same batches, and moe-balance's reference numbers on the
# real trace (skipped when ../shared is absent).
set -euo pipefail
bin=${MOESIM_BIN:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-sim.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}
"$py" -c 'import numpy' 2>/dev/null || { echo "numpy missing: skipped"; exit 77; }

# (help text to files first: grep -q closing the pipe early would fail pipefail)
"$bin" --help > "$tmp/help"; grep -q simulate "$tmp/help"; grep -q compare "$tmp/help"
"$bin" simulate --help > "$tmp/help"; grep -q -- "--capacity-factor" "$tmp/help"; grep -q -- "balanced-replicas" "$tmp/help"
"$bin" compare --help > "$tmp/help"; grep -q -- "--route LIST" "$tmp/help"

# fixtures: 3 requests (prompt + decode rows), 2 layers, 4 experts, top-2;
# the same as JSONL; a 2x2 placement in moe-balance's format
"$py" - "$tmp" <<'PY'
import json, os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(d + "/trace")
rng = np.random.default_rng(1)
rows = [(5, 2), (3, 0), (7, 3)]
lines = []
for r, (p, o) in enumerate(rows):
    n = p + o
    re = np.stack([np.stack([rng.choice(4, 2, replace=False) for _ in range(2)]) for _ in range(n)]).astype(np.int32)
    np.savez_compressed(f"{d}/trace/req_{r:04d}.npz", request_id=np.int64(r),
                        prompt_token_ids=-np.ones(p, np.int32), output_token_ids=-np.ones(o, np.int32),
                        routed_experts=re)
    for l in range(2):
        lines.append(json.dumps({"layer": l, "batch_id": r, "request_id": r,
                                 "topk_experts": re[:, l, :].tolist()}))
open(d + "/trace.jsonl", "w").write("\n".join(lines) + "\n")
pl = {"0": [{"device": 0, "row": 0, "col": 0, "slot": 0}, {"device": 3, "row": 1, "col": 1, "slot": 1}],
      "1": [{"device": 1, "row": 0, "col": 1, "slot": 0}],
      "2": [{"device": 2, "row": 1, "col": 0, "slot": 0}],
      "3": [{"device": 3, "row": 1, "col": 1, "slot": 0}]}
json.dump(pl, open(d + "/peer.json", "w"), indent=2)
pl2 = {"0": [{"device": 0, "row": 0, "col": 0, "slot": 0}],
       "1": [{"device": 1, "row": 0, "col": 1, "slot": 0}, {"device": 2, "row": 1, "col": 0, "slot": 1}],
       "2": [{"device": 2, "row": 1, "col": 0, "slot": 0}],
       "3": [{"device": 3, "row": 1, "col": 1, "slot": 0}]}
json.dump(pl2, open(d + "/peer2.json", "w"), indent=2)
PY

T=$tmp/trace; P=$tmp/peer.json
expect_exit 2 "$bin" simulate "$T"
grep -q -- "--placement" "$tmp/err"
expect_exit 2 "$bin" simulate "$T" --placement "$P" --route fastest
grep -q "least-loaded" "$tmp/err"
expect_exit 2 "$bin" simulate "$T" --placement "$P" --route split
expect_exit 2 "$bin" simulate "$T" --placement "$P" --cost-model roofline --origin-rows random --model mixtral-8x7b
expect_exit 2 "$bin" simulate "$T" --placement "$P" --overlap two-micro-batch
expect_exit 2 "$bin" simulate "$T" --placement "$P" --layer 9
expect_exit 2 "$bin" simulate "$T" --placement "$P" --cost-model roofline
grep -q -- "--model" "$tmp/err"
expect_exit 2 "$bin" simulate "$T" --placement "$tmp/missing.json"
grep -q "missing.json" "$tmp/err"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "error is not one line"
expect_exit 2 "$bin" simulate "$T" --placement "$P" --cost-model roofline --model mixtral-8x7b --hw nosuch
grep -q "nosuch" "$tmp/err"
echo '{"layer": 0, "batch_id": 1, "topk_experts": [[1, 9]' > "$tmp/bad.jsonl"
expect_exit 2 "$bin" simulate "$tmp/bad.jsonl" --placement "$P"
grep -q "bad.jsonl: line 1" "$tmp/err"
# a failed run leaves no output file behind
expect_exit 2 "$bin" simulate "$T" --placement "$P" --layer 9 -o "$tmp/never.json"
[[ ! -e $tmp/never.json ]] || fail "output written on failure"

# mesh, json: the summary's fields
"$bin" simulate "$T" --placement "$P" --format json --quiet -o "$tmp/mesh.json"
"$bin" simulate "$tmp/trace.jsonl" --placement "$P" --format json --quiet -o "$tmp/mesh_jsonl.json"
"$py" - "$tmp/mesh.json" "$tmp/mesh_jsonl.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
s = a["summary"]
for k in ("imbalance", "layer_us"):
    assert set(s[k]) >= {"mean", "p50", "p95", "p99", "max"}, s[k]
for k in ("tokens_per_second", "dropped_tokens", "rerouted_tokens", "inter_row_bytes", "intra_row_bytes",
          "load_seconds", "eval_seconds", "mean", "p95", "p99", "dispatch_us", "compute_us", "combine_us"):
    assert k in s, k
assert s["records"] == 6 and s["tokens"] == 20 and s["events"] == 80, s
assert s["assignments"] == 80 and s["dropped_tokens"] == 0
assert s["mean"] == s["layer_us"]["mean"] and s["imbalance"]["max"] >= s["imbalance"]["mean"] >= 1
assert abs(s["mean"] - (s["dispatch_us"] + s["compute_us"] + s["combine_us"])) < 1e-9 * s["mean"]
assert a["options"]["route"] == "balanced-replicas" and a["placement"]["rows"] == 2
# JSONL: the same requests (its rows are all prompt rows; per request they batch alike)
t = b["summary"]
for k in ("mean", "p95", "p99", "dispatch_us", "compute_us", "combine_us", "tokens_per_second"):
    assert abs(s[k] - t[k]) <= 1e-12 * abs(s[k]), (k, s[k], t[k])
PY

# roofline, csv: one line per (batch, layer); table; details
"$bin" simulate "$T" --placement "$P" --cost-model roofline --model mixtral-8x7b --hw seed-h100 --route least-loaded \
  --batch prefill --batch-tokens 6 --format csv --quiet -o "$tmp/roof.csv"
head -1 "$tmp/roof.csv" | grep -q "^batch,layer,tokens"
"$py" - "$tmp/roof.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) % 2 == 0 and len(rows) >= 4, len(rows)
assert sum(int(r["tokens"]) for r in rows) == 2 * 15   # prompt rows 5+3+7, two layers
for r in rows:
    assert float(r["layer_us"]) > 0 and float(r["imbalance"]) >= 1
PY
"$bin" simulate "$T" --placement "$P" --cost-model roofline --model mixtral-8x7b --batch decode --decode-batch 2 \
  --overlap two-micro-batch --quiet > "$tmp/table"; grep -q "tokens/s" "$tmp/table"
"$bin" simulate "$T" --placement "$P" --details --format json --quiet -o "$tmp/det.json"
"$py" - "$tmp/det.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["records"]) == 6
for r in d["records"]:
    assert len(r["device_load"]) == 4 and len(r["device_idle_us"]) == 4
    assert abs(sum(r["device_load"]) - r["assignments"]) < 1e-9
PY
# same input, same bytes (timings aside)
"$bin" simulate "$T" --placement "$P" --format csv --quiet --threads 1 > "$tmp/a.csv"
"$bin" simulate "$T" --placement "$P" --format csv --quiet --threads 2 > "$tmp/b.csv"
cmp -s "$tmp/a.csv" "$tmp/b.csv" || fail "csv differs between runs"

# compare: 2 placements x 2 routes over the same batches
"$bin" compare "$T" --placement "$P" --placement "$tmp/peer2.json" --route balanced-replicas,least-loaded \
  --format json --quiet -o "$tmp/cmp.json"
"$bin" compare "$T" --placement "$P" --placement "$tmp/peer2.json" --route balanced-replicas --route least-loaded \
  --format csv --quiet -o "$tmp/cmp.csv"
"$bin" compare "$T" --placement "$P" --placement "$tmp/peer2.json" --route round-robin --quiet > "$tmp/table"
grep -q "peer2.json" "$tmp/table"
"$py" - "$tmp/cmp.json" "$tmp/cmp.csv" "$tmp/mesh.json" <<'PY'
import csv, json, sys
d = json.load(open(sys.argv[1])); rows = list(csv.DictReader(open(sys.argv[2])))
m = json.load(open(sys.argv[3]))["summary"]
assert len(d["runs"]) == 4 and len(rows) == 4
assert [r["route"] for r in d["runs"]] == ["balanced-replicas", "least-loaded"] * 2
first = d["runs"][0]["summary"]
assert first["mean"] == m["mean"], (first["mean"], m["mean"])   # the same run as simulate's
for r, c in zip(d["runs"], rows):
    assert abs(r["summary"]["imbalance"]["mean"] - float(c["imbalance_mean"])) < 1e-12
PY
# compare --details: every run carries the records simulate --details writes for it
expect_exit 2 "$bin" compare "$T" --placement "$P" --details --format csv
"$bin" compare "$T" --placement "$P" --placement "$tmp/peer2.json" --route balanced-replicas,least-loaded \
  --details --format json --quiet -o "$tmp/cmpd.json"
"$bin" simulate "$T" --placement "$tmp/peer2.json" --route least-loaded --details --format json --quiet \
  -o "$tmp/det2.json"
"$py" - "$tmp/cmpd.json" "$tmp/det.json" "$tmp/det2.json" "$tmp/cmp.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); a = json.load(open(sys.argv[2])); b = json.load(open(sys.argv[3]))
plain = json.load(open(sys.argv[4]))
assert len(c["runs"]) == 4
for run, sim in ((c["runs"][0], a), (c["runs"][3], b)):
    assert run["records"] == sim["records"], run["placement"]
    assert run["cluster"] == {"rows": 2, "cols": 2, "slots_per_device": sim["placement"]["slots_per_device"]}
for run, p in zip(c["runs"], plain["runs"]):
    assert len(run["records"]) == 6
    s, t = dict(run["summary"]), dict(p["summary"])
    for k in ("eval_seconds",): s.pop(k, None); t.pop(k, None)
    assert s == t, (s, t)   # the same numbers with and without --details
PY

# moe-balance's reference numbers on the real trace
ref=${MOESIM_REF:-}/moe-balance; data=${MOESIM_DATA:-}/deepseek-v2-lite-puffin
if [[ -d $ref && -d $data ]]; then
  for m in average-rows round-robin; do
    "$bin" simulate "$data" --placement "$ref/balance_dsv2lite_l10_2x8.placement.json" --cost-model mesh \
      --batch per-request --route balanced-replicas --capacity-factor 2 --origin-rows $m --layer 10 \
      --format json --quiet -o "$tmp/ref.json"
    "$py" - "$tmp/ref.json" "$ref/expected_$m.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]; e = json.load(open(sys.argv[2]))
for a, b in (("mean", "mean"), ("p95", "p95"), ("p99", "p99"), ("dispatch_us", "max_dispatch_mean"),
             ("compute_us", "max_compute_mean"), ("combine_us", "max_combine_mean")):
    assert abs(s[a] - e[b]) <= 1e-6 * abs(e[b]), (a, s[a], e[b])
assert s["records"] == e["records"]
for x, y in zip(s["coeffs"], e["coeffs"]):
    assert abs(x - y) <= 1e-9 * abs(y)
PY
  done
else
  echo "reference data absent: reference check skipped"
fi
echo OK
