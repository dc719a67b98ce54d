#!/usr/bin/env bash
# Runs every benchmark; each prints a table comparing Slipway with its peers measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || node scripts/build.mjs
for b in bench/*/index.mjs; do
  echo "== $b"
  node "$b"
done
