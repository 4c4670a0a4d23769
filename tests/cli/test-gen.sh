#!/usr/bin/env bash
# moesim gen end to end: usage errors and exit codes, byte-identical output
# for a seed, the npz layout checked with numpy (shapes, dtypes, ranked prefix,
# group-limited routing), the JSON summary, and --fit on the real traces
# (skipped when ../shared/data is absent).
set -euo pipefail
bin=${MOESIM_BIN:?}; data=${MOESIM_DATA:-}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-gen.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

"$bin" gen --help | grep -q -- "--ranked"
"$bin" gen --list-models | grep -q "deepseek-v3 .*256"
expect_exit 2 "$bin" gen --model nosuchmodel --requests 2 -o "$tmp/x"
grep -q "unknown model 'nosuchmodel'" "$tmp/err" || fail "unknown model message"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "unknown model error is not one line"
expect_exit 2 "$bin" gen --model deepseek-v3 --requests 2            # no -o
expect_exit 2 "$bin" gen --model deepseek-v3 --requests 0 -o "$tmp/x"
expect_exit 2 "$bin" gen --model deepseek-v3 -o "$tmp/x"             # no --requests
expect_exit 2 "$bin" gen --requests 2 -o "$tmp/x"                    # no model
expect_exit 2 "$bin" gen --model deepseek-v3 --requests 2 --skew zipf:abc -o "$tmp/x"
expect_exit 2 "$bin" gen --model deepseek-v3 --requests 2 --ranked 4 -o "$tmp/x"
expect_exit 2 "$bin" gen --model deepseek-v3 --requests 5 --tokens 3 -o "$tmp/x"
expect_exit 2 "$bin" gen --model deepseek-v3 --requests 2 --bogus -o "$tmp/x"
expect_exit 2 "$bin" gen --fit "$tmp/missing" -o "$tmp/x"
[[ ! -e "$tmp/x" ]] || fail "a failed run left $tmp/x behind"

# same seed, same bytes; another seed, other bytes
args=(--model deepseek-v3 --requests 6 --tokens 3000 --ranked 12 --seed 5 --quiet)
"$bin" gen "${args[@]}" -o "$tmp/a" --format json > "$tmp/a.json"
"$bin" gen "${args[@]}" -o "$tmp/b" --threads 1 > /dev/null
diff -r "$tmp/a" "$tmp/b" > /dev/null || fail "two runs with one seed differ"
"$bin" gen "${args[@]/5/6}" -o "$tmp/c" > /dev/null
if diff -r -q "$tmp/a" "$tmp/c" > /dev/null; then fail "different seeds gave the same trace"; fi
# an existing trace is not mixed into: refused, or replaced with --force
expect_exit 2 "$bin" gen --model mixtral-8x7b --requests 2 -o "$tmp/a"
grep -q -- "--force" "$tmp/err" || fail "no hint about --force"
"$bin" gen --model mixtral-8x7b --requests 2 --force --quiet -o "$tmp/c" > /dev/null
[[ $(ls "$tmp/c" | wc -l) == 2 ]] || fail "--force left old files"

"$py" - "$tmp/a" "$tmp/a.json" <<'PY'
import json, os, sys
import numpy as np
d, summary = sys.argv[1], json.load(open(sys.argv[2]))
files = sorted(f for f in os.listdir(d) if f.endswith(".npz"))
assert len(files) == 6, files
assert summary["requests"] == 6 and summary["tokens"] == 3000, summary
assert (summary["layers"], summary["experts"], summary["top_k"], summary["ranked"]) == (58, 256, 8, 12), summary
assert summary["bytes"] == sum(os.path.getsize(os.path.join(d, f)) for f in files)
assert len(summary["max_mean_ratio"]) == 58 and all(x >= 1 for x in summary["max_mean_ratio"])
rows = 0
for f in files:
    z = np.load(os.path.join(d, f))
    re, rk = z["routed_experts"], z["routed_experts_ranked"]
    p, o = z["prompt_token_ids"], z["output_token_ids"]
    assert z["request_id"].shape == () and int(z["num_experts"]) == 256
    assert re.dtype.kind in "iu" and re.ndim == 3 and re.shape[1:] == (58, 8), re.shape
    assert re.shape[0] == len(p) + len(o) and len(p) >= 1
    assert rk.shape == (re.shape[0], 58, 12)
    assert (rk[:, :, :8] == re).all(), "ranked prefix differs from routed_experts"
    assert re.min() >= 0 and re.max() < 256
    srt = np.sort(rk, axis=2)
    assert (np.diff(srt, axis=2) > 0).all(), "repeated expert in a token's ranked choices"
    groups = re // 32                      # 8 groups of 32 experts
    used = np.array([[len(set(g)) for g in row] for row in groups])
    assert used.max() <= 4, "a token used more than 4 expert groups"
    rows += re.shape[0]
assert rows == 3000
PY

# the summary formats
"$bin" gen --model llama4-maverick --requests 3 --prefill-only --quiet -o "$tmp/d" --format csv > "$tmp/d.csv"
grep -q "^top_k,1$" "$tmp/d.csv" || fail "csv summary"
grep -q "^output_tokens,0$" "$tmp/d.csv" || fail "--prefill-only wrote output tokens"
"$bin" gen --model qwen3-235b-a22b --requests 2 --tokens 100 --quiet -o "$tmp/e" | grep -q "94 layers x 128 experts"

# --fit: the generated loads follow the real trace's
for name in deepseek-v2-lite-puffin llama4-maverick-mmlu; do
  [[ -n "$data" && -d "$data/$name" ]] || { echo "skip: no $data/$name"; continue; }
  extra=(); [[ $name == llama4* ]] && extra=(--experts 128)
  "$bin" gen --fit "$data/$name" "${extra[@]}" --quiet -o "$tmp/fit-$name" --format json > "$tmp/fit.json"
  "$py" - "$tmp/fit.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for a, b in ((s["max_mean_ratio"], s["fit_max_mean_ratio"]), (s["hot10_share"], s["fit_hot10_share"])):
    worst = max(abs(x / y - 1) for x, y in zip(a, b))
    assert worst < 0.10, worst
PY
done
echo ok
