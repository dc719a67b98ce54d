#!/bin/sh
# Client commands run on Bun when the build found it working (src/cli/launcher.sh), so the client's unit tests
# (src/sdk, src/cli, src/core, digests) run on Bun too, after the whole suite has run on Node. vitest runs on either.
set -e
cd "$(dirname "$0")/.."
bun=$(sed -n 's/^BUN=//p' dist/cli/slipway)
if [ -z "$bun" ]; then
  echo "client tests on Bun skipped: the build found no working Bun (optional dependency @oven/bun-linux-x64)"
  exit 0
fi
echo "client tests on Bun $("dist/cli/$bun" --version):"
exec "dist/cli/$bun" node_modules/vitest/vitest.mjs run src/sdk src/cli src/core src/oci/digest.test.ts
