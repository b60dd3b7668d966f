#!/usr/bin/env bash
# deps.sh: installs the Debian packages chorus needs to build, run and test
# (irctest's too), if any is missing. Runs apt-get update once, only when
# something is missing.
# Needs root (or sudo) to install; otherwise it names what is missing and fails.
set -eu

PACKAGES=(
  build-essential cmake pkg-config clang
  libuv1-dev libsqlite3-dev libconfig-dev libssl-dev uthash-dev libncurses-dev libmicrohttpd-dev
  corosync libcpg-dev libquorum-dev libvotequorum-dev
  python3 python3-pytest
  python3-pytest-xdist python3-ecdsa python3-filelock
  iproute2 nftables tmux openssl
  systemd dpkg-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "deps: missing packages and not root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
