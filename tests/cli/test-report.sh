#!/usr/bin/env bash
# moesim report end to end: results of gen/stats/place/simulate/compare/power/
# scale/sweep/replay -> one HTML page + standalone SVGs; static checks (well-formed
# SVG, no scripts, no network, every section), then real headless Chromium:
# the page loads without console errors, its DOM holds every chart with
# content, every standalone chart paints (pixels counted in a screenshot), and
# a screenshot of the page is kept in $MOESIM_TMP/report-screenshot.png.
# Exit 77 (skipped) at the end when chromium is absent.
set -euo pipefail
bin=${MOESIM_BIN:?}; tmp=$(mktemp -d "${MOESIM_TMP:-/tmp}/cli-report.XXXXXX")
keep=${MOESIM_TMP:-/tmp}
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code, then command
  local want=$1; shift
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?; set -e
  [[ $got == "$want" ]] || { cat "$tmp/err"; fail "exit $got, wanted $want: $*"; }
}

"$bin" --help | grep -q report
"$bin" report --help | grep -q -- "--svg-dir"
expect_exit 2 "$bin" report
expect_exit 2 "$bin" report --layer x a.json
echo '{not json' > "$tmp/bad.json"
expect_exit 2 "$bin" report "$tmp/bad.json" -o "$tmp/never.html"
grep -q "bad.json" "$tmp/err" || fail "error does not name the file"
[[ $(wc -l < "$tmp/err") == 1 ]] || fail "error is not one line"
[[ ! -e "$tmp/never.html" ]] || fail "half-written report left behind"

# ---- results to report on (a small synthetic trace: 4 layers x 64 experts, top-6)
cd "$tmp"
"$bin" gen --model deepseek-v2-lite --layers 4 --requests 40 --prompt-mean 150 --decode 0 --seed 7 -o tr --quiet >/dev/null
"$bin" stats tr --format json -o stats.json --quiet
"$bin" place tr --algo eplb --rows 2 --cols 8 --slots 6 -o eplb.json --quiet >/dev/null
"$bin" place tr --algo replicate --rows 2 --cols 8 --slots 6 -o rep.json --quiet >/dev/null
sim=(--cost-model roofline --batch prefill --batch-tokens 1024 --quiet)
"$bin" simulate tr --placement eplb.json --route round-robin "${sim[@]}" --format json --details -o sim-eplb.json
"$bin" simulate tr --placement rep.json --route least-loaded "${sim[@]}" --format json --details -o sim-rep.json
"$bin" compare tr --placement eplb.json --placement rep.json --route round-robin,least-loaded "${sim[@]}" \
  --format json -o cmp.json
inputs=(stats.json eplb.json rep.json sim-eplb.json sim-rep.json cmp.json)
if "$bin" power --help >/dev/null 2>&1; then
  "$bin" power tr --placement eplb.json --placement rep.json "${sim[@]}" --route round-robin --timeline \
    --format json -o power.json && inputs+=(power.json)
fi
if "$bin" scale --help >/dev/null 2>&1; then
  "$bin" scale --format json -o scale.json && inputs+=(scale.json)
fi
"$bin" sweep --fake 6 -o sweep.json --quiet
# a Pareto answer (place --pareto): the front chart with the algorithms as points
"$bin" place tr --algo search --pareto time,peak-power --rows 2 --cols 8 --slots 6 "${sim[@]}" --route least-loaded \
  --iterations 400 --pareto-searches 3 --pareto-algos eplb,replicate,pair -o front.json > /dev/null
# a replay of the trace and its shifted copy (re-placement over time, how often to rebalance)
"$bin" replay "tr+tr@permute=3" --placement eplb.json --batch prefill --batch-tokens 512 --cost-model roofline \
  --rebalance-every 2,4,8 --max-moves 16 --after-request 40 --format json -o replay.json --quiet
inputs+=(front.json sweep.json replay.json tr)

"$bin" report "${inputs[@]}" -o report.html --svg-dir svg --title "moesim test report" --format json > summary.json
"$bin" report "${inputs[@]}" -o report2.html --title "moesim test report" --quiet > /dev/null
cmp report.html report2.html || fail "same inputs gave different bytes"

# ---- static checks
"$py" - report.html svg summary.json "${inputs[@]}" <<'PY'
import glob, json, re, sys, xml.etree.ElementTree as ET
html, svgdir, summary = sys.argv[1:4]
text = open(html, encoding="utf-8").read()
s = json.load(open(summary))
kinds = [i["kind"] for i in s["inputs"]]
assert kinds[:6] == ["stats", "placement", "placement", "sim", "sim", "compare"], kinds
assert "sweep" in kinds, kinds
assert "<script" not in text.lower(), "scripts in the page"
urls = set(re.findall(r'(?:src|href)\s*=\s*"([^"#][^"]*)"', text))
assert not urls, f"external references: {urls}"
assert not [u for u in re.findall(r"https?://[^\"' )]+", text) if u != "http://www.w3.org/2000/svg"], "network URLs"
svgs = re.findall(r"<svg .*?</svg>", text, re.S)
files = sorted(glob.glob(svgdir + "/*.svg"))
assert len(svgs) == len(files) == s["svg_files"] >= 14, (len(svgs), len(files), s["svg_files"])
for sv in svgs:
    root = ET.fromstring(sv)
    assert len(root) > 5, "an empty chart"
    assert root.find("{http://www.w3.org/2000/svg}title") is not None
for f in files:
    ET.parse(f)
need = ["summary", "grid", "distributions", "layers", "traffic", "experts"]
if "power" in kinds or "scale" in kinds:
    need.append("power")
assert "pareto" in kinds, kinds
need.append("pareto")
assert "Layer time against peak power" in text and "Energy per token against peak power" in text
assert "eplb (init)" in text, "EPLB is not a point of the front chart"
assert "replay" in kinds, kinds
need += ["replay", "how-often"]
rp = json.load(open("replay.json"))
for every in sorted({r["every"]["n"] for r in rp["runs"] if r["policy"] != "static"}):
    assert f"Imbalance over time, re-placing every {every} steps" in text, every
assert "Total time against the re-placement interval" in text and ">from request 40</text>" in text
# a mark per re-placement (three intervals: every one drawn), a ring per policy's best interval
assert text.count('class="xmark"') == sum(len(r["events"]) for r in rp["runs"]), "re-placement marks"
assert text.count('class="ring"') == 2, "best intervals"
for pol in ["periodic-eplb", "incremental"]:
    best = min((r for r in rp["runs"] if r["policy"] == pol), key=lambda r: r["summary"]["total_us"])
    assert f"best for {pol}: every {best['every']['n']} steps" in text, pol
for sec in need:
    assert f'<section id="{sec}">' in text, f"section {sec} missing"
for words in ["mean imbalance", "p99 imbalance", "p99 layer time", "tokens/s", "energy per token", "trace digest"]:
    assert words in text, words
# charts carry axis titles with units
assert "layer time (µs)" in text and "fraction of records" in text and "row (node)" in text
# every simulated run's mean imbalance appears in the summary table (4 significant digits)
for f in ["sim-eplb.json", "sim-rep.json"]:
    m = json.load(open(f))["summary"]["imbalance"]["mean"]
    assert f"<td>{m:.4g}</td>" in text, (f, m)
print("static checks ok:", len(svgs), "charts")
PY

# ---- headless Chromium
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $chrome ]]; then
  echo "chromium absent: skipping the browser checks"; exit 77
fi
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --hide-scrollbars)
run_chrome() { local prof; prof=$(mktemp -d "$tmp/prof.XXXXXX"); timeout 120 "$chrome" "${flags[@]}" --user-data-dir="$prof" "$@"; }

# 1. the page loads without console errors; screenshot kept for people to look at
height=$("$py" -c "import re,sys; t=open(sys.argv[1]).read(); print(min(16000, 1500 + sum(int(h)+60 for h in re.findall(r'<svg [^>]*height=\"(\d+)\"', t))*3//4))" report.html)
run_chrome --enable-logging=stderr --v=0 --window-size=1400,"$height" \
  --screenshot="$keep/report-screenshot.png" "file://$tmp/report.html" > chrome1.out 2> chrome1.log || true
[[ -s $keep/report-screenshot.png ]] || { tail -20 chrome1.log; fail "no screenshot"; }
if grep -E "CONSOLE|Uncaught|Failed to load resource|net::ERR" chrome1.log | grep -v "dbus" | grep -q .; then
  grep -E "CONSOLE|Uncaught|Failed to load resource|net::ERR" chrome1.log; fail "console errors"
fi
echo "screenshot: $keep/report-screenshot.png"

# 2. the DOM Chromium built holds every chart with its content
run_chrome --dump-dom "file://$tmp/report.html" > dom.html 2> chrome2.log || true
"$py" - dom.html report.html <<'PY'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.depth = 0; self.svgs = []; 
    def handle_starttag(self, tag, attrs):
        if tag == "svg": self.svgs.append(0); self.depth += 1
        elif self.depth: self.svgs[-1] += 1
    def handle_endtag(self, tag):
        if tag == "svg": self.depth -= 1
def count(path):
    p = P(); p.feed(open(path, encoding="utf-8").read()); return p.svgs
dom, src = count(sys.argv[1]), count(sys.argv[2])
assert len(dom) == len(src) and len(dom) > 0, (len(dom), len(src))
assert all(n > 5 for n in dom), dom
assert dom == src, "Chromium dropped elements"
print("DOM ok:", len(dom), "charts,", sum(dom), "elements")
PY

# 3. every standalone chart paints: a gallery of <img>s at known places, one
#    screenshot, pixels counted per cell (a broken image is a tiny grey icon)
"$py" - svg gallery.html <<'PY'
import glob, sys
files = sorted(glob.glob(sys.argv[1] + "/*.svg"))
cells = []
for i, f in enumerate(files):
    x, y = (i % 2) * 740, (i // 2) * 760
    cells.append(f'<img src="{f}" style="position:absolute;left:{x}px;top:{y}px;width:720px;height:740px;object-fit:contain;object-position:left top">')
open(sys.argv[2], "w").write("<!DOCTYPE html><html><body style='margin:0;background:#fff'>" + "".join(cells) + "</body></html>")
print(len(files))
PY
n=$(ls svg/*.svg | wc -l)
rows=$(( (n + 1) / 2 ))
run_chrome --window-size=1480,$(( rows * 760 )) --screenshot="$tmp/gallery.png" "file://$tmp/gallery.html" \
  > chrome3.out 2> chrome3.log || true
[[ -s gallery.png ]] || { tail -20 chrome3.log; fail "no gallery screenshot"; }
"$py" - gallery.png "$n" <<'PY'
import struct, sys, zlib
def png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and inter == 0, (depth, ctype, inter)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT": idat += body
    raw = zlib.decompress(idat); stride = w * bpp; rows = []; prev = bytearray(stride); i = 0
    for _ in range(h):
        f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    return w, h, bpp, rows
w, h, bpp, rows = png(sys.argv[1]); n = int(sys.argv[2])
for i in range(n):
    x0, y0 = (i % 2) * 740, (i // 2) * 760
    ink, colours = 0, set()
    for y in range(y0, min(h, y0 + 740), 3):
        r = rows[y]
        for x in range(x0, min(w, x0 + 720), 3):
            px = r[x * bpp:x * bpp + 3]
            if px != b"\xff\xff\xff": ink += 1; colours.add(px)
    total = (740 // 3) * (720 // 3)
    assert ink > 0.01 * total and len(colours) >= 8, f"chart {i + 1} did not paint: {ink} pixels, {len(colours)} colours"
print("every chart paints:", n)
PY
echo "report test ok"
