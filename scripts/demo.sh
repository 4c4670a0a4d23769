#!/usr/bin/env bash
# The end-to-end example of `make demo`, on data moesim makes itself: a
# synthetic DeepSeek-V3-shaped trace (58 MoE layers x 256 experts, top-8,
# group-limited routing) served by 128 GPUs as 16 rows x 8 with 3 expert slots
# each (the seed's target scheme). Placements are computed on half of the
# requests and evaluated on the other half.
set -euo pipefail
bin=${1:-build/moesim}
out=${DEMO_OUT:-demo-out}
mkdir -p "$out"
say() { printf '\n=== %s\n' "$*"; }

say "1. a synthetic DeepSeek-V3 trace (moesim gen)"
"$bin" gen --model deepseek-v3 --requests 400 --tokens 80000 --seed 7 --force --quiet -o "$out/trace"
"$bin" info "$out/trace" --quiet

say "2. expert load statistics (first layers; moesim stats)"
# (to a file first: `| head` would close the pipe early and pipefail would fail the demo)
"$bin" stats "$out/trace" --quiet --pairs 3 > "$out/stats.txt"
head -12 "$out/stats.txt"
"$bin" stats "$out/trace" --quiet --format json -o "$out/stats.json"

say "3. placements on the training half (moesim place), 16 x 8 GPUs, 3 slots each"
grid=(--rows 16 --cols 8 --slots 3)
algos=(contiguous replicate eplb tail coact)
printf '%-11s %14s %14s %13s %14s %9s   (mean over layers; load split evenly over replicas)\n' \
  algorithm max_load mean_load balancedness lower_bound max/bound
for algo in "${algos[@]}"; do
  "$bin" place "$out/trace@train" --algo "$algo" "${grid[@]}" --quiet -o "$out/place-$algo.json" > "$out/place-$algo.txt"
  printf '%-11s %s\n' "$algo" "$(grep '^ *mean ' "$out/place-$algo.txt" | sed 's/^ *mean //')"
done

say "4. the held-out half through each placement and routing policy (moesim compare)"
places=()
for algo in "${algos[@]}"; do places+=(--placement "$out/place-$algo.json"); done
sim=(--cost-model roofline --batch prefill --batch-tokens 8192 --hw h100-sxm --model deepseek-v3 --quiet)
# --details: every (batch, layer) with its per-device loads, for the report's CDFs and heatmaps
"$bin" compare "$out/trace@eval" "${places[@]}" --route round-robin,least-loaded "${sim[@]}" --details \
  --format json -o "$out/compare.json"
"$bin" compare "$out/trace@eval" "${places[@]}" --route round-robin,least-loaded "${sim[@]}"

say "5. energy and power: EPLB vs the contiguous baseline, least-loaded routing (moesim power)"
# the same placement files and route as compare's runs: the report's summary shows their energy per token
pw=(--placement "$out/place-eplb.json" --placement "$out/place-contiguous.json" --route least-loaded "${sim[@]}")
"$bin" power "$out/trace@eval" "${pw[@]}" --timeline --format json -o "$out/power.json"
"$bin" power "$out/trace@eval" "${pw[@]}" > "$out/power.txt"
head -24 "$out/power.txt"

say "6. how power grows with model size, and the power wall (moesim scale)"
"$bin" scale --format json -o "$out/scale.json"
"$bin" scale > "$out/scale.txt"
tail -5 "$out/scale.txt"

say "7. the report"
"$bin" report "$out/stats.json" "$out/place-eplb.json" "$out/place-contiguous.json" "$out/compare.json" \
  "$out/power.json" "$out/scale.json" -o "$out/report.html" --quiet
echo "open $out/report.html in a browser: device heatmaps, imbalance CDFs, load profiles, power, scaling"
