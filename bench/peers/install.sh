#!/usr/bin/env bash
# install.sh: installs what `make bench` needs from Debian if it is missing:
# the peer IRC servers (inspircd, ngircd) and gnuplot for the plots. Their
# packaged services are kept from starting (a policy-rc.d that says no, for
# the length of the install), so they never take port 6667 from `make run`;
# bench/run.py starts its own instances on free loopback ports.
set -eu

PACKAGES=(inspircd ngircd gnuplot-nox)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "bench: missing ${missing[*]} and not root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

echo "bench: installing ${missing[*]} from Debian"
apt-cache policy "${missing[@]}" | grep -E '^[a-z]|Candidate' || true
if apt-cache policy "${missing[@]}" | grep -q 'Candidate: (none)'; then
  $SUDO apt-get update -q
fi

POLICY=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  made_policy=1
fi
# (an `if`: with `[ ] &&`, a policy-rc.d that was there before made the
# trap's status, and so the script's, 1)
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
