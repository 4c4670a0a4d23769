#!/usr/bin/env bash
# Traces whose expert popularity shifts, end to end: the trace syntax
# (PART+PART, @train/@eval per part, @permute=SEED), checked against numpy's
# counts of the npz files; its usage errors (exit 2, one message); paths that
# hold '@' or '+'; each path loaded once; `gen --shift` (requests before the
# shift byte-identical, popularity after it moved by the permutation that
# @permute applies, same bytes for any thread count) and byte-identical
# output without --shift (hashes recorded from the generator before --shift
# existed). The real-trace part is skipped when ../shared/data is absent.
set -euo pipefail
bin=${MOESIM_BIN:?}; data=${MOESIM_DATA:-}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-shift.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}
json() { "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])' "$@"; }

# ---- a fixture whose per-expert loads are distinct in every layer, so that
# the permutation can be read back from the loads of a permuted trace
"$py" - "$tmp/T" <<'PY'
import os, sys
import numpy as np
out = sys.argv[1]
L, E, K = 4, 16, 2
rng = np.random.default_rng(3)
# 12 requests of 220 rows in all; in each layer expert e is chosen 20 + d[e]
# times, d a permutation of 0..15 (sum 2 x 220): distinct loads by design
lens = [(int(p), int(d)) for p, d in zip(rng.integers(5, 20, 12), rng.integers(0, 8, 12))]
extra = 220 - sum(p + d for p, d in lens)
lens[-1] = (lens[-1][0] + extra, lens[-1][1])
assert extra > 0 and sum(p + d for p, d in lens) == 220
N = 220
ids = np.zeros((N, L, K), np.int32)
for l in range(L):
    occ = np.repeat(np.arange(E), 20 + rng.permutation(E))   # sorted by expert
    rows = occ.reshape(K, N).T                                # row i: occ[i], occ[N + i]: distinct
    rows = rows[rng.permutation(N)]
    for i in range(N):
        rows[i] = rows[i][rng.permutation(K)]
    ids[:, l, :] = rows
reqs, pos = [], 0
for P, D in lens:
    reqs.append((P, D, ids[pos:pos + P + D]))
    pos += P + D
os.makedirs(out)
for r, (P, D, ids) in enumerate(reqs):
    np.savez_compressed(os.path.join(out, "req_%02d.npz" % r), request_id=np.int64(r),
                        prompt_token_ids=np.full(P, -1, np.int32), output_token_ids=np.full(D, -1, np.int32),
                        routed_experts=ids, num_experts=np.int64(E))
PY
T=$tmp/T

# the issue-10 syntax: T, T@permute=S, T+T@permute=S, T@eval+T@eval@permute=S
specs=(base "$T"  perm "$T@permute=5"  cat "$T+$T@permute=5"  ev "$T@eval"  held "$T@eval+$T@eval@permute=5"
       ev25 "$T@eval=0.25,seed=2"  ev25p "$T@permute=5@eval=0.25,seed=2")
for ((i = 0; i < ${#specs[@]}; i += 2)); do
  name=${specs[i]}; spec=${specs[i+1]}
  "$bin" stats "$spec" --format json --quiet -o "$tmp/s-$name.json"
  "$bin" stats "$spec" --phase prefill --format json --quiet -o "$tmp/p-$name.json"
  "$bin" info "$spec" --format json -o "$tmp/i-$name.json"
done
"$py" - "$T" "$tmp" <<'PY'
import glob, json, sys
import numpy as np
d, tmp = sys.argv[1:]
E = 16
def npz_loads(files, phase):
    loads = np.zeros((4, E), int)
    for f in files:
        z = np.load(f)
        re, P = z["routed_experts"], len(z["prompt_token_ids"])
        rows = re[:P] if phase == "prefill" else re
        for l in range(4):
            loads[l] += np.bincount(rows[:, l, :].ravel(), minlength=E)
    return loads
def loads(kind, name):
    s = json.load(open("%s/%s-%s.json" % (tmp, kind, name)))
    return np.array([p["expert_load"] for p in s["per_layer"]])
def info(name):
    return json.load(open("%s/i-%s.json" % (tmp, name)))
files = sorted(glob.glob(d + "/*.npz"))
full, pre = npz_loads(files, "all"), npz_loads(files, "prefill")
assert (loads("s", "base") == full).all() and (loads("p", "base") == pre).all()
# the permutation, read back from the distinct loads: perm[l][e] = new id of e
got = loads("s", "perm")
perm = np.zeros((4, E), int)
for l in range(4):
    where = {c: e for e, c in enumerate(got[l])}
    perm[l] = [where[c] for c in full[l]]
    assert sorted(perm[l]) == list(range(E)), perm[l]
assert len({tuple(p) for p in perm}) == 4, "layers share one permutation"
assert any(full[l].argmax() != got[l].argmax() for l in range(4)), "the hottest expert never moved"
def moved(x):
    out = np.zeros_like(x)
    for l in range(4):
        out[l, perm[l]] = x[l]
    return out
# the same relabelling explains the prefill loads, which did not define it
assert (loads("p", "perm") == moved(pre)).all()
# permuting keeps requests, rows and shape; concatenation adds them up
b, p, c = info("base"), info("perm"), info("cat")
for k in ("requests", "rows", "prompt_tokens", "output_tokens", "layers", "experts", "top_k"):
    assert p[k] == b[k], (k, p[k], b[k])
    assert c[k] == (2 * b[k] if k in ("requests", "rows", "prompt_tokens", "output_tokens") else b[k]), (k, c[k])
assert p["trace_digest"] != b["trace_digest"]
assert c["source"] == d + "+" + d + "@permute=5", c["source"]
assert (loads("s", "cat") == full + moved(full)).all()
assert (loads("p", "cat") == pre + moved(pre)).all()
# held-out variant: each @eval part is the same split of T
ev, held = info("ev"), info("held")
assert held["requests"] == 2 * ev["requests"] and held["rows"] == 2 * ev["rows"]
assert (loads("s", "held") == loads("s", "ev") + moved(loads("s", "ev"))).all()
# suffixes in either order: split and relabelling commute
assert info("ev25p")["requests"] == info("ev25")["requests"] == 9, info("ev25")["requests"]
assert (loads("s", "ev25p") == moved(loads("s", "ev25"))).all()
print("numpy agrees: permutation, concatenation, held-out split")
PY

# ---- usage errors: exit 2, a message naming the problem and the syntax
for bad in "$T+" "+$T" "$T++$T" "$T@permute=x" "$T@permute=" "$T@permute=-1" "$T@permute=1@permute=2" \
           "$T@eval@train" "$T@eval=2" "$T@eval,seed=x"; do
  expect_exit 2 "$bin" info "$bad"
  grep -q "moesim info: '" "$tmp/err" || fail "no usage message for '$bad'"
  grep -q "@permute=SEED" "$tmp/err" || fail "the message for '$bad' does not show the syntax"
done
expect_exit 2 "$bin" stats "$T+$tmp/missing"
grep -q "missing" "$tmp/err" || fail "a missing part is not named"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "missing part: not one line"
# incompatible parts (generated: 3 layers where T has 4, top-3 where T has 2)
"$bin" gen --layers 3 --experts 16 --top-k 2 --requests 2 --quiet -o "$tmp/L3" > /dev/null
"$bin" gen --layers 4 --experts 16 --top-k 3 --requests 2 --quiet -o "$tmp/K3" > /dev/null
"$bin" gen --layers 4 --experts 32 --top-k 2 --requests 2 --quiet -o "$tmp/E32" > /dev/null
expect_exit 2 "$bin" stats "$T+$tmp/L3"
grep -q "differ in layers: 4 .* vs 3" "$tmp/err" || { cat "$tmp/err"; fail "layers mismatch message"; }
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "layers mismatch: not one line"
expect_exit 2 "$bin" place "$tmp/K3@permute=1+$T" --algo eplb --rows 2 --cols 2 --slots 5 -o "$tmp/never.json"
grep -q "top_k" "$tmp/err" || fail "top_k mismatch message"
[[ ! -e $tmp/never.json ]] || fail "a failed load left an output file"
# experts: the larger count
"$bin" info "$T+$tmp/E32" --format json -o "$tmp/i-e32.json"
[[ $(json "$tmp/i-e32.json" experts) == 32 ]] || fail "concatenation does not take the larger expert count"
# several positional paths stay one trace; the new syntax needs one argument
"$bin" info "$T" "$T@eval" --format json -o "$tmp/i-two.json"
[[ $(json "$tmp/i-two.json" requests) == 12 ]] || fail "two paths @eval: want half of 24 requests"
expect_exit 2 "$bin" info "$T@permute=1" "$T"
expect_exit 2 "$bin" info "$T@eval" "$T"
expect_exit 2 "$bin" info "$T+$T" "$T"

# ---- '@' and '+' that belong to existing paths are taken literally
mkdir -p "$tmp/a+b" "$tmp/c@eval" "$tmp/p+q@x"
cp "$T"/req_0[0-3].npz "$tmp/a+b/"; cp "$T"/req_0[4-9].npz "$tmp/c@eval/"; cp "$T"/req_1*.npz "$tmp/p+q@x/"
for spec in "a+b:4" "c@eval:6" "c@eval@eval:3" "p+q@x:2" "a+b+$tmp/c@eval:10" "a+b@permute=3+$tmp/p+q@x@eval:5"; do
  "$bin" info "$tmp/${spec%:*}" --format json -o "$tmp/i-lit.json"
  [[ $(json "$tmp/i-lit.json" requests) == "${spec##*:}" ]] || fail "'${spec%:*}': wanted ${spec##*:} requests"
done

# ---- each distinct path is loaded once (one finished progress bar per load)
"$bin" info "$T+$T@permute=1+$T@eval+$tmp/a+b" --progress > /dev/null 2> "$tmp/bar"
[[ $(grep -o "100%" "$tmp/bar" | wc -l) == 2 ]] || { cat "$tmp/bar"; fail "expected two loads"; }

# ---- gen --fit reads the same syntax
"$bin" gen --fit "$T@eval+$T@permute=2" --quiet -o "$tmp/fit" --format json > "$tmp/fit.json"
[[ $(json "$tmp/fit.json" requests) == 18 ]] || fail "--fit with the trace syntax: wanted 18 requests"

# ---- gen without --shift: the bytes of the generator before --shift existed
check_hash() { # want, then gen options
  local want=$1; shift
  rm -rf "$tmp/h"; "$bin" gen "$@" --quiet -o "$tmp/h" > /dev/null
  [[ $(cat "$tmp/h"/*.npz | sha256sum | cut -d' ' -f1) == "$want" ]] || fail "gen $* changed its bytes"
}
check_hash 84cf7d8c1c40dbce1b7aae41e74f09e65637944dab0065f475aff891d4c19d81 \
  --model deepseek-v3 --requests 6 --tokens 3000 --ranked 12 --seed 5
check_hash 487c8fc5264b9fbbc08d89657f3555cb8e3044382124d5dca9cb2930f4dea694 \
  --model deepseek-v2-lite --requests 20 --tokens 4000 --seed 5
check_hash 0578ece5533ebeee85244007aec7002e07c759949f5b3615b5bef7811232bb70 \
  --model llama4-maverick --requests 8 --tokens 2000 --ranked 3 --seed 5

# ---- gen --shift
g=(--layers 4 --experts 32 --top-k 4 --ranked 6 --requests 100 --tokens 60000 --skew lognormal:1.0 --seed 4 --quiet)
"$bin" gen --help | grep -q -- "--shift N | P%" || fail "gen --help does not show --shift"
for bad in 0 100 150 abc 50x 0% 100% -3% "%"; do expect_exit 2 "$bin" gen "${g[@]}" --shift "$bad" -o "$tmp/x"; done
expect_exit 2 "$bin" gen "${g[@]}" --shift-seed 3 -o "$tmp/x"
grep -q -- "--shift-seed needs --shift" "$tmp/err" || fail "--shift-seed alone"
[[ ! -e $tmp/x ]] || fail "a refused gen left its directory"
"$bin" gen "${g[@]}" -o "$tmp/u" > /dev/null
"$bin" gen "${g[@]}" --shift 50% -o "$tmp/s" --format json > "$tmp/s.json"
"$bin" gen "${g[@]}" --shift 50 --threads 1 -o "$tmp/s1" --format csv > "$tmp/s1.csv"
"$bin" gen "${g[@]}" --shift 50 --shift-seed 11 -o "$tmp/s11" > /dev/null
diff -r "$tmp/s" "$tmp/s1" > /dev/null || fail "--shift: bytes depend on the thread count or on N vs P%"
grep -q "^shift_request,50$" "$tmp/s1.csv" || fail "csv summary lacks shift_request"
[[ $(json "$tmp/s.json" shift_request) == 50 && $(json "$tmp/s.json" shift_seed) == 4 ]] || fail "json summary"
"$bin" gen "${g[@]}" --shift 12.5% -o "$tmp/s12" --format json > "$tmp/s12.json"
[[ $(json "$tmp/s12.json" shift_request) == 12 ]] || fail "12.5% of 100 requests is request 12"
pre=$(printf "req_%06d.npz " $(seq 0 49)); post=$(printf "req_%06d.npz " $(seq 50 99))
for x in u s s11; do
  mkdir "$tmp/$x-pre" "$tmp/$x-post"
  (cd "$tmp/$x-pre" && ln -s $(printf "$tmp/$x/%s " $pre) .) && (cd "$tmp/$x-post" && ln -s $(printf "$tmp/$x/%s " $post) .)
done
for spec in "u-pre" "s-pre" "u-post" "s-post" "s11-post" "u-post@permute=4" "u-post@permute=11"; do
  "$bin" stats "$tmp/$spec" --no-coact --format json --quiet -o "$tmp/g-${spec/@permute=/-p}.json"
done
"$py" - "$tmp" "$(json "$tmp/s.json" shift_token)" <<'PY'
import glob, json, os, sys
import numpy as np
tmp, shift_token = sys.argv[1], int(sys.argv[2])
sdir, udir = tmp + "/s", tmp + "/u"
files = sorted(glob.glob(sdir + "/*.npz"))
rows = [np.load(f)["routed_experts"].shape[0] for f in files]
assert len(files) == 100 and shift_token == sum(rows[:50]), (shift_token, sum(rows[:50]))
# the files before the shift hold the same bytes as without it, none after it do
same = [open(f, "rb").read() == open(os.path.join(udir, os.path.basename(f)), "rb").read() for f in files]
assert same == [True] * 50 + [False] * 50, same
def loads(name):
    s = json.load(open("%s/g-%s.json" % (tmp, name)))
    return np.array([p["expert_load"] for p in s["per_layer"]], float)
def tv(a, b):
    return 0.5 * np.abs(a / a.sum(1, keepdims=True) - b / b.sum(1, keepdims=True)).sum(1)
def hot(x):  # the hottest 10% (rounded up) of each layer's experts
    return [set(np.argsort(-r)[:4]) for r in x]
# before the shift: the same loads, so the same hottest experts
assert (loads("s-pre") == loads("u-pre")).all()
# after: the hot experts move, as the permutation that @permute applies moves them
for s, u, up in (("s-post", "u-post", "u-post-p4"), ("s11-post", "u-post", "u-post-p11")):
    S, U, UP = loads(s), loads(u), loads(up)
    far, near = tv(S, U), tv(S, UP)
    print(s, "TV to the unshifted loads", far.round(3), "to them permuted", near.round(3))
    assert (far > 0.25).all() and (near < 0.08).all()
    moved = [len(a & b) for a, b in zip(hot(S), hot(U))]
    kept = [len(a & b) for a, b in zip(hot(S), hot(UP))]
    assert sum(moved) <= 4 and sum(kept) >= 12, (moved, kept)
PY

# ---- the real trace followed by a permutation of itself (issue 10)
if [[ -z $data || ! -d $data/deepseek-v2-lite-puffin ]]; then
  echo "real traces absent: skipping the real-trace concatenation"; exit 0
fi
D=$data/deepseek-v2-lite-puffin
"$bin" stats "$D" --no-coact --format json --quiet -o "$tmp/r.json"
"$bin" stats "$D@permute=7" --no-coact --format json --quiet -o "$tmp/rp.json"
"$bin" stats "$D+$D@permute=7" --no-coact --format json --quiet -o "$tmp/rc.json"
"$py" - "$tmp" <<'PY'
import json, sys
import numpy as np
tmp = sys.argv[1]
r, rp, rc = (json.load(open("%s/%s.json" % (tmp, n))) for n in ("r", "rp", "rc"))
assert rc["requests"] == 2 * r["requests"] and rc["tokens"] == 2 * r["tokens"]
for a, b, c in zip(r["per_layer"], rp["per_layer"], rc["per_layer"]):
    x, y, z = (np.array(q["expert_load"]) for q in (a, b, c))
    assert sorted(x) == sorted(y) and (z == x + y).all()
    assert a["max_mean_ratio"] == b["max_mean_ratio"]
moved = sum(a["hottest_expert"] != b["hottest_expert"] for a, b in zip(r["per_layer"], rp["per_layer"]))
assert moved >= 20, moved
print("real trace: permutation keeps each layer's skew, moves the hottest expert in", moved, "of 26 layers")
PY
