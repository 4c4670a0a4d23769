#!/usr/bin/env bash
# The end-to-end example of `make demo` (grows as stages land).
set -euo pipefail
bin=${1:-build/moesim}
"$bin" --help
