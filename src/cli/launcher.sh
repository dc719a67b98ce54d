#!/bin/sh
# The `slipway` command: runs the CLI (main.js beside this file). scripts/build.mjs writes this file into dist/cli
# with BUN set to Bun's path relative to it, or empty when Bun is not installed or does not run on this machine, and
# CLIENT to the compiled client beside it (the same bundle made one Bun executable with bytecode), or empty.
# Client commands run on Bun: it starts in ~8 ms where Node takes 60-80 ms, which is most of an unchanged build; the
# compiled client also skips parsing and linking the bundle (~9 ms of a ~45 ms unchanged build).
# `server` and `gc` open the SQLite metadata through better-sqlite3, a Node addon, so they always run on Node.
# SLIPWAY_RUNTIME=node runs every command on Node, as does a Bun removed since the build. As on Node, a .env file or
# bunfig.toml in the directory a command runs in changes nothing (Bun reads both by default).
BUN=@BUN@
CLIENT=@CLIENT@
self=$0
[ -L "$self" ] && self=$(readlink -f "$self")
case $self in
  */*) dir=${self%/*} ;;
  *) dir=. ;;
esac
case "$1" in
  server | gc) ;;
  *)
    if [ "${SLIPWAY_RUNTIME:-}" != node ]; then
      [ -n "$CLIENT" ] && [ -x "$dir/$CLIENT" ] && exec "$dir/$CLIENT" "$@"
      [ -n "$BUN" ] && [ -x "$dir/$BUN" ] && exec "$dir/$BUN" --no-env-file --config="$dir/bunfig.toml" "$dir/main.js" "$@"
    fi
    ;;
esac
exec node "$dir/main.js" "$@"
