#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each on a copy of its
# committed corpus (fuzz/corpus/NAME); new inputs stay out of the repository.
set -euo pipefail
dir=${1:?build dir}; secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
n=0
for bin in "$dir"/fuzz-*; do
  [[ -x $bin ]] || continue
  name=$(basename "$bin")
  work=$(mktemp -d)
  cp -r "$root/fuzz/corpus/${name#fuzz-}/." "$work/" 2>/dev/null || true
  echo "fuzzing $name for ${secs}s"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=0 "$work" 2>"$work.log" || { tail -40 "$work.log"; exit 1; }
  grep -E "^(#[0-9]+ *DONE|Done)" "$work.log" | tail -1 || true
  rm -rf "$work" "$work.log"
  n=$((n+1))
done
echo "fuzz targets run: $n"
