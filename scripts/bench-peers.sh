#!/usr/bin/env bash
# `just bench-peers`: OpsConductor beside the peers operators compare it with, on this box, in
# one run — Prometheus Alertmanager (webhooks) and net-snmp's snmptrapd (traps) — with the same
# generators (wrk + Lua, one UDP sender). Installs the peers and wrk from Debian's packages when
# missing (root installs them, anyone else is told the command), starts PostgreSQL as the tests
# do, builds the release binaries, then runs tests/src/bin/bench-peers.rs with the arguments.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null ||
    missing+=(prometheus-alertmanager)
[[ -x /usr/sbin/snmptrapd ]] || command -v snmptrapd >/dev/null || missing+=(snmptrapd)
command -v wrk >/dev/null || missing+=(wrk)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ "$(id -u)" != 0 ]]; then
        echo "bench-peers: missing packages; run: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "bench-peers: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts the packaged daemons; the benchmark starts its own on free ports.
for unit in prometheus-alertmanager snmptrapd; do
    systemctl stop "$unit" 2>/dev/null || service "$unit" stop 2>/dev/null || true
done
scripts/test-peers.sh >/dev/null

cargo build --release -p opsconductor --bin opsconductor -p opsconductor-tests --bin bench-peers
exec target/release/bench-peers "$@"
