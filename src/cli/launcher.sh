#!/bin/sh
# The `slipway` command: runs the CLI (main.js beside this file). scripts/build.mjs writes this file into dist/cli
# with BUN set to Bun's path relative to it, or empty when Bun is not installed or does not run on this machine.
# Client commands run on Bun: it starts in ~8 ms where Node takes 60-80 ms, which is most of an unchanged build.
# `server` and `gc` open the SQLite metadata through better-sqlite3, a Node addon, so they always run on Node.
# SLIPWAY_RUNTIME=node runs every command on Node, as does a Bun removed since the build.
BUN=@BUN@
self=$0
[ -L "$self" ] && self=$(readlink -f "$self")
case $self in
  */*) dir=${self%/*} ;;
  *) dir=. ;;
esac
case "$1" in
  server | gc) ;;
  *) [ -n "$BUN" ] && [ "${SLIPWAY_RUNTIME:-}" != node ] && [ -x "$dir/$BUN" ] && exec "$dir/$BUN" "$dir/main.js" "$@" ;;
esac
exec node "$dir/main.js" "$@"
