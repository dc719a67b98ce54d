#!/usr/bin/env bash
# Installs what the host needs from Debian's archive. Idempotent: does nothing when everything is present.
#   scripts/host-setup.sh          everything (the test suite's interoperability peers included)
#   scripts/host-setup.sh --demo   only what the server and the demo need
set -euo pipefail

quiet=0
mode=full
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --demo) mode=demo ;;
    *) echo "host-setup: unknown option $arg" >&2; exit 2 ;;
  esac
done

# package:command pairs; the command tells whether the package is already there.
demo_pkgs=(runc:runc debootstrap:debootstrap attr:getfattr zstd:zstd iproute2:ip)
test_pkgs=(busybox-static:busybox skopeo:skopeo podman:podman buildah:buildah docker.io:dockerd docker-registry:docker-registry sox:sox espeak-ng:espeak-ng pigz:pigz openssl:openssl python3:python3)

wanted=("${demo_pkgs[@]}")
[ "$mode" = full ] && wanted+=("${test_pkgs[@]}")

missing=()
for pair in "${wanted[@]}"; do
  pkg=${pair%%:*}
  cmd=${pair#*:}
  if [ "$pkg" = docker.io ]; then
    [ -x /usr/bin/docker ] && [ -x /usr/sbin/dockerd ] || missing+=("$pkg")
  elif ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  [ $quiet = 1 ] || echo "host-setup: everything is installed"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "host-setup: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "host-setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "host-setup: done" >&2
