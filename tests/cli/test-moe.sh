#!/usr/bin/env bash
# moesim moe-bench / calibrate end to end: tiny shapes (seconds), the
# reference agreeing with the optimized forward, the calibrate preset loading
# as a hardware preset, router traces readable by `moesim info`, and bad
# input with its exit codes.
set -euo pipefail
bin=${MOESIM_BIN:?}; src=${MOESIM_SRC:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-moe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

"$bin" --help | grep -q moe-bench
"$bin" --help | grep -q calibrate
"$bin" moe-bench --help | grep -q -- "--tokens-per-expert"
"$bin" calibrate --help | grep -q -- "efficiency_curve"
expect_exit 2 "$bin" moe-bench --shape nosuch
grep -q "nosuch" "$tmp/err"
expect_exit 2 "$bin" moe-bench --tokens-per-expert 0
expect_exit 2 "$bin" moe-bench --tokens-per-expert 4..2
expect_exit 2 "$bin" moe-bench --dtype fp8
expect_exit 2 "$bin" moe-bench --threading sideways
expect_exit 2 "$bin" moe-bench --experts 2 --top-k 3 --shape 64x32
expect_exit 2 "$bin" moe-bench --shape 64x32 --experts 3 --top-k 2 --tokens-per-expert 1
grep -q "multiple of top-k" "$tmp/err"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "error is not one line"
expect_exit 2 "$bin" moe-bench extra
expect_exit 2 "$bin" calibrate --peak-size 0
expect_exit 2 "$bin" calibrate --name ""

quick=(--min-time 0 --reps 1 --peak-size 128 --quiet)
# json: every point, the reference where asked, agreement within 1e-4
"$bin" moe-bench --shape 96x64 --experts 4 --top-k 2 --tokens-per-expert 1..8 --reference \
  "${quick[@]}" --format json -o "$tmp/b.json"
"$bin" moe-bench --shape 96x64 --experts 4 --top-k 2 --tokens-per-expert 1,3 --dtype bf16 --threading blas \
  --reference "${quick[@]}" --format json -o "$tmp/b16.json"
"$py" - "$tmp/b.json" "$tmp/b16.json" <<'PY'
import json, sys
for path, n in ((sys.argv[1], 4), (sys.argv[2], 2)):
    d = json.load(open(path))
    assert d["hidden"] == 96 and d["moe_intermediate"] == 64 and d["experts"] == 4 and d["top_k"] == 2, d
    assert d["peak_gflops"] > 0 and len(d["points"]) == n, d
    for p in d["points"]:
        assert p["tokens"] == p["tokens_per_expert"] * 4 // 2
        assert abs(p["gflop"] - 6 * 96 * 64 * p["tokens"] * 2 / 1e9) < 1e-9
        assert p["opt_ms"] > 0 and p["ref_ms"] > 0 and p["speedup"] > 0
        assert p["max_rel_err"] <= 1e-4, p
d = json.load(open(sys.argv[2]))
assert d["dtype"] == "bf16" and d["threading"] == "blas"
PY
"$bin" moe-bench --shape 96x64 --tokens-per-expert 2,4 "${quick[@]}" --format csv -o "$tmp/b.csv"
[[ $(head -1 "$tmp/b.csv") == shape,hidden,inter,* ]] || fail "csv header"
[[ $(wc -l < "$tmp/b.csv") == 3 ]] || fail "csv rows"
"$bin" moe-bench --shape 96x64 --tokens-per-expert 2 "${quick[@]}" | grep -q "GFLOP/s"
"$bin" moe-bench --shape 96x64 --tokens-per-expert 2 "${quick[@]}" --clock cpu | grep -q "cpu clock"
expect_exit 2 "$bin" moe-bench --clock sundial

# calibrate: a hardware preset with the curve
"$bin" calibrate --shape 96x64 --tokens-per-expert 1..16 "${quick[@]}" --name tiny -o "$tmp/hw.json"
"$py" - "$tmp/hw.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["name"] == "tiny" and d["source"] == "measured by moesim calibrate", d
for k in ("peak_tflops_bf16", "peak_tflops_fp8", "mfu", "hbm_tb_s", "hbm_util", "memory_gb", "nvlink_gb_s",
          "nvlink_latency_us", "nvlink_efficiency", "nic_gb_s", "net_latency_us", "net_efficiency"):
    assert isinstance(d[k]["value"], (int, float)) and d[k]["source"], k
    assert d[k]["value"] >= 0
assert 0 < d["mfu"]["value"] <= 1
c = d["efficiency_curve"]
assert c["tokens_per_expert"] == [1, 2, 4, 8, 16], c
assert len(c["tflops"]) == 5 and len(c["efficiency"]) == 5 and all(t > 0 for t in c["tflops"])
assert all(abs(e - min(1, t / c["peak_tflops"])) < 1e-3 for e, t in zip(c["efficiency"], c["tflops"]))
assert d["date"].endswith("Z") and d["machine"] and d["threads"] >= 1
PY
"$bin" calibrate --shape 96x64 --tokens-per-expert 1,2 "${quick[@]}" --format csv | grep -q "^tokens_per_expert,"
"$bin" calibrate --shape 96x64 --tokens-per-expert 1,2 "${quick[@]}" --clock cpu | grep -q '"clock": "cpu'
expect_exit 2 "$bin" calibrate --clock sundial

# router traces: written, readable, flattened by the bias update
"$bin" moe-bench --router-trace "$tmp/rt" --steps 30 --tokens 128 --hidden 64 --skew 1 --format json -o "$tmp/rt.json"
"$bin" moe-bench --router-trace "$tmp/rt0" --steps 30 --tokens 128 --hidden 64 --skew 1 --gamma 0 --quiet \
  --format json -o "$tmp/rt0.json"
"$bin" info "$tmp/rt" --format json -o "$tmp/info.json"
"$py" - "$tmp/rt.json" "$tmp/rt0.json" "$tmp/info.json" <<'PY'
import json, sys
on, off, info = (json.load(open(p)) for p in sys.argv[1:])
assert info["requests"] == 30 and info["rows"] == 30 * 128 and info["experts"] == 256 and info["top_k"] == 8, info
r = lambda d, s: d["steps_load"][s]["max_over_mean"]
late = lambda d: sum(r(d, s) for s in range(20, 30)) / 10
assert r(on, 0) == r(off, 0)
assert late(on) < 0.6 * r(on, 0), (late(on), r(on, 0))
assert late(off) > 0.8 * r(off, 0), (late(off), r(off, 0))
PY
if "$py" -c 'import numpy' 2>/dev/null; then
  "$py" - "$tmp/rt" <<'PY'
import glob, sys
import numpy as np
files = sorted(glob.glob(sys.argv[1] + "/*.npz"))
assert len(files) == 30
z = np.load(files[0])
r = z["routed_experts"]
assert r.shape == (128, 1, 8) and r.min() >= 0 and r.max() < 256, r.shape
assert all(len(set(row)) == 8 for row in r[:, 0, :])  # distinct experts per token
assert len(z["prompt_token_ids"]) == 128 and len(z["output_token_ids"]) == 0
PY
fi
"$bin" moe-bench --router-trace "$tmp/rt2" --shape mixtral --hidden 32 --steps 3 --tokens 16 --format csv \
  | head -1 | grep -q "^step,layer,max_load"
expect_exit 2 "$bin" moe-bench --router-trace "$tmp/rt3" --experts 100
grep -q "groups" "$tmp/err"
echo "ok"
