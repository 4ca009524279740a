#!/bin/sh
# Install the Debian 12 packages llmfleet needs to build, test and benchmark.
# Idempotent: a no-op when every package is already present. Uses sudo only
# when not root. Node.js and npm are needed by the SDK fidelity test.
set -eu

PKGS="build-essential pkg-config libhiredis-dev libcurl4-openssl-dev
libevent-dev libjsmn-dev redis-server redis-tools libcmocka-dev jq curl wrk
valgrind clang libclang-rt-14-dev python3-redis stunnel4 openssl iproute2 iptables"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -z "$missing" ]; then
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
