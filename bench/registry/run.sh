#!/usr/bin/env bash
# Runs the registry benchmark (bench/registry/bench.ts): bundles it with esbuild and runs it with node.
# Needs skopeo and docker-registry on PATH. BENCH_RUNS=1 for a quick pass.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/node_modules/.cache/slipway-bench/registry-bench.mjs"
"$root/node_modules/.bin/esbuild" "$root/bench/registry/bench.ts" --bundle --platform=node --format=esm --target=node20 \
  --packages=external --log-level=error --outfile="$out"
exec node "$out"
