#!/usr/bin/env bash
# moesim sweep end to end: same bytes for one process, threads and (when
# mpirun is present) mpirun -np 2; resume after --stop-after and after kill -9;
# a sweep point equals what moesim place + moesim simulate give on their own;
# replay points equal what moesim replay gives for the same policies and
# intervals (threads and MPI: same bytes); bad specs and journals refused
# with exit 2.
set -euo pipefail
bin=${MOESIM_BIN:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-sweep.XXXXXX")
trap 'kill -9 $bgpid 2>/dev/null || true; rm -rf "$tmp"' EXIT
bgpid=
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}
cd "$tmp"

"$bin" --help | grep -q sweep
"$bin" sweep --help | grep -q -- "--resume"
expect_exit 2 "$bin" sweep
expect_exit 2 "$bin" sweep --mpi maybe spec.json
expect_exit 2 "$bin" sweep missing.json
grep -q "missing.json" err || fail "error does not name the spec"
echo '{"traces": ["x"], "clusters": ["2x8"], "slots": [4], "routes": ["sideways"]}' > bad.json
expect_exit 2 "$bin" sweep bad.json -o never.csv
grep -q "routes\[0\]" err || fail "error does not name the key"
[[ ! -e never.csv ]] || fail "output written for a bad spec"
expect_exit 2 "$bin" sweep --fake 5 --resume   # no journal to resume from

# ---- the engine with synthetic points
"$bin" sweep --fake 40:2 --threads 1 -o one.csv --quiet
"$bin" sweep --fake 40:2 --threads 3 -o three.csv --quiet
cmp one.csv three.csv || fail "threads changed the bytes"
[[ $(wc -l < one.csv) == 41 ]] || fail "rows"
[[ $(wc -l < one.csv.journal) == 41 ]] || fail "journal lines"

# stop part-way, refuse to start over silently, resume to the same bytes
"$bin" sweep --fake 40:2 --threads 2 -o r.csv --stop-after 11 --quiet
[[ ! -e r.csv ]] || fail "output written for an incomplete sweep"
[[ $(wc -l < r.csv.journal) == 12 ]] || fail "journal after --stop-after 11"
expect_exit 2 "$bin" sweep --fake 40:2 -o r.csv
grep -q -- "--resume" err || fail "no hint to resume"
"$bin" sweep --fake 40:2 --threads 2 -o r.csv --resume 2> resume.log
grep -q "11 from the journal, 29 evaluated" resume.log || { cat resume.log; fail "resume counts"; }
cmp one.csv r.csv || fail "resumed output differs"

# kill -9 part-way, then resume: nothing finished is lost or counted twice
"$bin" sweep --fake 60:40 --threads 2 -o k.csv --quiet &
bgpid=$!
for _ in $(seq 1 600); do
  [[ -f k.csv.journal && $(wc -l < k.csv.journal) -ge 9 ]] && break
  sleep 0.05
done
kill -9 $bgpid 2>/dev/null || true
wait $bgpid 2>/dev/null || true
bgpid=
kept=$(( $(wc -l < k.csv.journal) - 1 ))
[[ $kept -ge 8 && $kept -lt 60 ]] || fail "killed sweep kept $kept points"
[[ ! -e k.csv ]] || fail "a killed sweep wrote its output"
"$bin" sweep --fake 60:40 --threads 2 -o k.csv --resume 2> kresume.log
grep -q "$kept from the journal, $(( 60 - kept )) evaluated" kresume.log || { cat kresume.log; fail "kill resume counts"; }
"$bin" sweep --fake 60:40 --threads 4 -o k-ref.csv --quiet
cmp k.csv k-ref.csv || fail "output after kill -9 and resume differs"

# ---- a real grid: 4 layers x 64 experts synthetic trace
"$bin" gen --model deepseek-v2-lite --layers 4 --requests 30 --prompt-mean 120 --decode 0 --seed 5 -o tr --quiet >/dev/null
cat > spec.json <<JSON
{"traces": [{"path": "tr", "label": "syn"}],
 "algorithms": ["eplb", "replicate"],
 "routes": ["round-robin", "least-loaded"],
 "clusters": ["2x8"], "slots": [2, 6], "batches": [1024],
 "options": {"cost_model": "roofline", "hw": "h100-sxm"}}
JSON
"$bin" sweep spec.json -o grid.csv --threads 1 --quiet
"$bin" sweep spec.json -o grid2.csv --threads 2 --quiet
cmp grid.csv grid2.csv || fail "threads changed the grid's bytes"
"$bin" sweep spec.json -o grid.json --threads 2 --quiet
# point 7 = eplb? no: traces x algos x routes x clusters x slots x batches -> index
# ((a*2 + r)*1 + c)*2 + s: replicate (1), least-loaded (1), slots 6 (1) = 7
"$bin" place tr --algo replicate --rows 2 --cols 8 --slots 6 -o p.json --quiet >/dev/null
"$bin" simulate tr --placement p.json --cost-model roofline --hw h100-sxm --batch prefill --batch-tokens 1024 \
  --route least-loaded --format json -o sim.json --quiet
"$py" - grid.json grid.csv sim.json <<'PY'
import csv, json, sys
g = json.load(open(sys.argv[1])); rows = list(csv.DictReader(open(sys.argv[2])))
assert len(g["rows"]) == len(rows) == 8, len(rows)
for r in g["rows"]:
    if r["slots"] == 2:
        assert "slot budget too small" in r["error"] and r["imbalance_mean"] is None, r
    else:
        assert r["error"] == "" and r["imbalance_mean"] >= 1, r
p = g["rows"][7]
assert (p["algorithm"], p["route"], p["slots"]) == ("replicate", "least-loaded", 6), p
s = json.load(open(sys.argv[3]))["summary"]
for col, key in [("imbalance_mean", ("imbalance", "mean")), ("imbalance_p99", ("imbalance", "p99")),
                 ("layer_us_p99", ("layer_us", "p99"))]:
    want = s[key[0]][key[1]]
    assert abs(p[col] - want) <= 1e-9 * abs(want), (col, p[col], want)
assert abs(p["tokens_per_second"] - s["tokens_per_second"]) <= 1e-9 * s["tokens_per_second"]
assert abs(float(rows[7]["imbalance_mean"]) - p["imbalance_mean"]) < 1e-12
print("sweep point 7 agrees with moesim simulate:", p["imbalance_mean"])
PY

# ---- replay points: a trace whose popularity shifts at request 30, three intervals
"$bin" gen --model deepseek-v2-lite --layers 4 --requests 60 --prompt-mean 60 --decode 4 --seed 5 --shift 30 \
  -o sh --quiet >/dev/null
cat > replay.json <<JSON
{"traces": [{"path": "sh", "label": "shift"}], "clusters": ["2x8"], "slots": [6], "batches": ["per-request"],
 "routes": ["least-loaded"],
 "replay": {"policies": ["static", "periodic-eplb", "incremental", "oracle"], "every": [5, 10, "400tokens"],
            "max_moves": [8, 32], "after_request": 30}}
JSON
"$bin" sweep replay.json -o rp.csv --threads 1 --quiet
"$bin" sweep replay.json -o rp2.csv --threads 2 --quiet
cmp rp.csv rp2.csv || fail "threads changed the replay points' bytes"
"$bin" sweep replay.json -o rp.json --threads 2 --quiet
"$bin" replay sh --cluster 2x8x6 --batch per-request --route least-loaded --rebalance-every 5,10,400tokens \
  --max-moves 8,32 --after-request 30 --format csv -o rp-cli.csv --quiet
"$py" - rp.json rp.csv rp-cli.csv <<'PY'
import csv, json, sys
g = json.load(open(sys.argv[1]))["rows"]; rows = list(csv.DictReader(open(sys.argv[2])))
cli = list(csv.DictReader(open(sys.argv[3])))
assert len(g) == len(rows) == len(cli) == 1 + 3 * 4, (len(g), len(cli))   # static + 3 x (eplb, 2 incremental, oracle)
for p, c in zip(g, cli):
    assert p["kind"] == "replay" and p["error"] == "", p
    assert p["policy"] == c["policy"], (p["policy"], c["policy"])
    if p["policy"] == "static":
        assert p["every"] is None and p["max_moves"] is None and p["migration"] == "", p
    else:
        assert (p["every"], p["every_unit"]) == (int(c["every"]), c["every_unit"]), (p, c)
    if p["policy"] == "incremental":
        assert p["max_moves"] == int(c["max_moves"]), (p, c)
    for col, key in [("total_us", "total_us"), ("serve_us", "serve_us"), ("migration_us", "migration_us"),
                     ("bytes_moved", "bytes_moved"), ("imbalance_mean", "imbalance"),
                     ("imbalance_before", "imbalance_before"), ("imbalance_after", "imbalance_after"),
                     ("layer_us_mean", "layer_us"), ("replicas_moved", "replicas_moved"),
                     ("replacements", "replacements"), ("batches", "steps"), ("tokens", "tokens")]:
        want = float(c[key])
        assert abs(p[col] - want) <= 1e-9 * max(1.0, abs(want)), (p["point"], col, p[col], want)
best = min((r for r in g if r["policy"] != "oracle"), key=lambda r: r["total_us"])
oracle = min(r["total_us"] for r in g if r["policy"] == "oracle")
assert oracle <= best["total_us"] * (1 + 1e-12), (oracle, best)
assert abs(float(rows[3]["total_us"]) - g[3]["total_us"]) <= 1e-9 * g[3]["total_us"]
print("replay points agree with moesim replay; best:", best["policy"], best["every"], best["every_unit"])
PY
echo '{"traces": ["sh"], "clusters": ["2x8"], "slots": [6], "replay": {"every": [0]}}' > bad-replay.json
expect_exit 2 "$bin" sweep bad-replay.json -o never.csv
grep -q "replay.every\[0\]" err || fail "error does not name the replay key"

# ---- MPI: two ranks give the same bytes (skipped when mpirun is absent)
if ! command -v mpirun >/dev/null || ! "$bin" sweep --help | grep -q "MPI available"; then
  echo "mpirun or MPI build absent: skipping the MPI checks"; exit 0
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0   # Open MPI's own allocations
mpi=(mpirun -np 2 --oversubscribe --allow-run-as-root)
"${mpi[@]}" "$bin" sweep --fake 40:2 -o mpi.csv 2> mpi.log || { cat mpi.log; fail "mpirun fake sweep"; }
grep -q "(2 processes)" mpi.log || { cat mpi.log; fail "did not run on 2 ranks"; }
cmp one.csv mpi.csv || fail "MPI output differs (fake)"
"${mpi[@]}" "$bin" sweep spec.json -o grid-mpi.csv --quiet
cmp grid.csv grid-mpi.csv || fail "MPI output differs (grid)"
"${mpi[@]}" "$bin" sweep replay.json -o rp-mpi.csv --quiet
cmp rp.csv rp-mpi.csv || fail "MPI output differs (replay)"
# MPI stop + MPI resume
"${mpi[@]}" "$bin" sweep --fake 40:2 -o mr.csv --stop-after 9 --quiet
[[ $(wc -l < mr.csv.journal) == 10 ]] || fail "MPI journal after --stop-after 9"
"${mpi[@]}" "$bin" sweep --fake 40:2 -o mr.csv --resume --quiet
cmp one.csv mr.csv || fail "MPI resumed output differs"
# a bad spec under MPI: every rank exits 2
set +e; "${mpi[@]}" "$bin" sweep bad.json -o never.csv >/dev/null 2>&1; rc=$?; set -e
[[ $rc != 0 ]] || fail "bad spec under MPI exited 0"
echo "sweep test ok"
