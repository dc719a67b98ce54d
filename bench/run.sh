#!/usr/bin/env bash
# Runs every benchmark; each prints a table comparing Slipway with its peers measured in the same run.
#   bench/run.sh               all of them
#   bench/run.sh build deploy  only these
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || node scripts/build.mjs
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(build deploy registry compression)
for b in "${names[@]}"; do
  echo "== bench/$b"
  if [ -f "bench/$b/run.sh" ]; then bash "bench/$b/run.sh"; else node "bench/$b/index.mjs"; fi
done
