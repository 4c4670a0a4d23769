#!/usr/bin/env bash
# moesim compare --details -> moesim power -> moesim report: the report draws
# the CDFs and one worst-batch heatmap per compared run from the compare file
# alone, and its summary shows each power result's energy per token on the
# run with the same placement file and route (n/a on the others).
set -euo pipefail
bin=${MOESIM_BIN:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-cmprep.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3

"$bin" gen --model mixtral-8x7b --requests 12 --tokens 600 --seed 5 --force --quiet -o "$tmp/trace"
for a in eplb contiguous; do
  "$bin" place "$tmp/trace@train" --algo $a --rows 2 --cols 2 --slots 3 --quiet -o "$tmp/$a.json" > /dev/null
done
sim=(--cost-model roofline --batch prefill --batch-tokens 64 --hw h100-sxm --model mixtral-8x7b --quiet)
"$bin" compare "$tmp/trace@eval" --placement "$tmp/eplb.json" --placement "$tmp/contiguous.json" \
  --route round-robin,least-loaded "${sim[@]}" --details --format json -o "$tmp/compare.json"
"$bin" power "$tmp/trace@eval" --placement "$tmp/contiguous.json" --placement "$tmp/eplb.json" \
  --route least-loaded "${sim[@]}" --format json -o "$tmp/power.json"
"$bin" report "$tmp/compare.json" "$tmp/power.json" -o "$tmp/report.html" --quiet > /dev/null
"$py" - "$tmp/compare.json" "$tmp/power.json" "$tmp/report.html" <<'PY'
import html, json, re, sys
c = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2])); h = open(sys.argv[3]).read()
assert len(c["runs"]) == 4 and all(len(r["records"]) > 0 for r in c["runs"])
assert '<section id="distributions">' in h and '<section id="grid">' in h
assert h.count(": worst batch") >= 4, h.count(": worst batch")
for r in c["runs"]:
    assert r["algorithm"] + " / " + r["route"] + ": worst batch" in h, r["algorithm"]
# the summary's energy per token (7th column), rendered with 4 significant digits
def fmt(v):
    return "%.4g" % v
energy = {}
for run in p["runs"]:
    f = run["label"].split(" (")[0]
    energy[f] = run["energy_per_token_j"]
rows = re.findall(r'<tr><td class="l">([^<]*)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>', h)
summary = {}
for lab, cells in rows:
    tds = re.findall(r'<td[^>]*>([^<]*)</td>', cells)
    if len(tds) == 9 and html.unescape(lab) not in summary:
        summary[html.unescape(lab)] = tds[5]
for r in c["runs"]:
    lab = r["algorithm"] + " / " + r["route"]
    want = fmt(energy[r["placement"]]) if r["route"] == "least-loaded" else "n/a"
    assert summary.get(lab) == want, (lab, summary.get(lab), want)
PY
echo OK
