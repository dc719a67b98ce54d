#!/usr/bin/env bash
# The main demo, end to end: install what the host needs, start the server (data in ./.slipway), deploy
# examples/podcast, invoke it, and write episode.wav. The server keeps running afterwards for more commands.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/host-setup.sh --demo
[ -f dist/cli/main.js ] || node scripts/build.mjs

export SLIPWAY_DATA="$PWD/.slipway"
export SLIPWAY_URL="${SLIPWAY_URL:-http://127.0.0.1:7700}"
slipway() { dist/cli/slipway "$@"; }

healthy() {
  node -e 'fetch(process.env.SLIPWAY_URL + "/api/v1/health").then((r) => r.json()).then((j) => process.exit(j.ok === true ? 0 : 1), () => process.exit(1))'
}

if healthy; then
  echo "demo: using the server already running at $SLIPWAY_URL"
else
  port="${SLIPWAY_URL##*:}"
  mkdir -p "$SLIPWAY_DATA"
  nohup dist/cli/slipway server --port "$port" --data "$SLIPWAY_DATA" >"$SLIPWAY_DATA/server.log" 2>&1 &
  echo $! >"$SLIPWAY_DATA/server.pid"
  for _ in $(seq 1 100); do healthy && break; sleep 0.2; done
  healthy || { echo "demo: the server did not start; see $SLIPWAY_DATA/server.log" >&2; tail -20 "$SLIPWAY_DATA/server.log" >&2; exit 1; }
  echo "demo: server started (pid $(cat "$SLIPWAY_DATA/server.pid"), log $SLIPWAY_DATA/server.log)"
fi

echo "demo: deploying examples/podcast (the first build debootstraps Debian bookworm: about a minute)"
slipway deploy examples/podcast/app.ts

echo "demo: invoking podcast/render"
slipway invoke podcast/render --input '{"text":"Welcome to the Slipway podcast. Push code and it runs.","eq":{"bassDb":6,"trebleDb":-2,"gainDb":-1}}' > episode.wav

bytes=$(stat -c %s episode.wav)
head -c 4 episode.wav | grep -q RIFF || { echo "demo: episode.wav is not a WAV file" >&2; exit 1; }
echo "demo: wrote episode.wav ($bytes bytes)"
echo
echo "Next: dist/cli/slipway versions podcast | history podcast | invoke podcast/render --input '{\"text\":\"Hi\"}' > hi.wav"
echo "Stop the server: kill \$(cat .slipway/server.pid)"
