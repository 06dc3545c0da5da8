#!/usr/bin/env bash
# The Debian package, installed for real: `dpkg -i` of the newest target/debian/*.deb, then the
# installed binary run exactly as its systemd unit runs it (the unit's User=, WorkingDirectory=,
# ExecStart= and AmbientCapabilities=, applied with setpriv since CI has no systemd) against the
# packaged configuration. It checks the user, the permissions, the unit's hardening (systemd's
# own offline analysis), that the unprivileged service receives a real net-snmp trap on port 162
# and stores it, that SIGTERM stops it cleanly, and that purge leaves the data behind.
#
# It installs and purges the package `opsconductor` system-wide, so it needs root (or
# passwordless sudo) and refuses to run where OpsConductor is installed for real.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    echo "package-test: FAIL: $*" >&2
    [[ -n "${log:-}" && -f "$log" ]] && { echo "--- service log:" >&2; tail -n 40 "$log" >&2; }
    exit 1
}
step() { echo "package-test: $*" >&2; }

if [[ "$(id -u)" == 0 ]]; then
    as_root() { "$@"; }
elif sudo -n true 2>/dev/null; then
    as_root() { sudo -n "$@"; }
else
    fail "needs root or passwordless sudo: it installs the package with dpkg -i"
fi

deb="$(ls -t target/debian/opsconductor_*.deb 2>/dev/null | head -n1)"
[[ -n "$deb" ]] || fail "no package in target/debian/: run scripts/package.sh first"
STATE=/var/lib/opsconductor
MARK="$STATE/.installed-by-package-test"
if [[ -d "$STATE" && ! -f "$MARK" ]]; then
    fail "$STATE exists and was not made by this test: OpsConductor is installed here for real"
fi

cleanup() {
    [[ -n "${pid:-}" ]] && as_root kill -KILL "$pid" 2>/dev/null || true
    as_root dpkg --purge opsconductor >/dev/null 2>&1 || true
    as_root rm -rf "$STATE"
}
trap cleanup EXIT
cleanup

step "installing $deb"
as_root dpkg -i "$deb" >/dev/null
as_root touch "$MARK"
# On a machine run by systemd the package has just started the service: stop it, so that the
# run below is the only one.
if [[ -d /run/systemd/system ]]; then as_root systemctl stop opsconductor; fi

unit="$(dpkg -L opsconductor | grep -E '/systemd/system/opsconductor\.service$')" ||
    fail "the package installs no opsconductor.service"
setting() { sed -n "s/^$1=//p" "$unit" | tail -n1; }
user="$(setting User)"
workdir="$(setting WorkingDirectory)"
read -r -a exec_start <<<"$(setting ExecStart)"
config="${exec_start[-1]}"

step "checking the user, the files and the unit"
[[ "$user" == opsconductor ]] || fail "the unit runs as '$user'"
getent passwd opsconductor | grep -q ":$STATE:/usr/sbin/nologin$" ||
    fail "user opsconductor: $(getent passwd opsconductor)"
[[ "$(stat -c '%U:%G %a' "$config")" == "root:opsconductor 640" ]] ||
    fail "$config is $(stat -c '%U:%G %a' "$config"), want root:opsconductor 640"
[[ "$(stat -c '%U:%G %a' "$STATE")" == "opsconductor:opsconductor 750" ]] ||
    fail "$STATE is $(stat -c '%U:%G %a' "$STATE")"
[[ -f /usr/share/opsconductor/addons/if-mib/addon.wasm ]] || fail "the bundled addons are missing"
grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$unit" || fail "no CAP_NET_BIND_SERVICE"
grep -qx 'ProtectSystem=strict' "$unit" || fail "not ProtectSystem=strict"
# The hardening as systemd scores it (0 best, 10 worst): fails above 2.0.
systemd-analyze verify "$unit" || fail "systemd-analyze verify"
systemd-analyze security --offline=true --threshold=20 "$unit" >/dev/null ||
    fail "exposure $(systemd-analyze security --offline=true "$unit" 2>&1 | tail -n1)"

as_service() { # the service's user, in its working directory, without capabilities
    as_root setpriv --reuid=opsconductor --regid=opsconductor --init-groups --no-new-privs \
        env -C "$workdir" OPSCONDUCTOR_CONFIG="$config" "$@"
}
step "opsconductor config check $config, addon install, an API key (as opsconductor)"
as_service /usr/bin/opsconductor config check "$config" >/dev/null || fail "config check"
as_service /usr/bin/opsconductor addon install /usr/share/opsconductor/addons/if-mib >/dev/null
as_service /usr/bin/opsconductor snmp community add devices --community public >/dev/null
key="$(as_service /usr/bin/opsconductor auth api-key create package-test --role viewer)"

step "starting ${exec_start[*]} as the unit does"
log="$(mktemp)"
as_root setpriv --reuid=opsconductor --regid=opsconductor --init-groups --no-new-privs \
    --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
    --bounding-set=-all,+net_bind_service \
    env -C "$workdir" "${exec_start[@]}" >"$log" 2>&1 &
pid=$!
listen="$(sed -n 's/^listen = "\(.*\)"/\1/p' "$config")"
for _ in $(seq 300); do
    grep -q 'receives SNMP traps on udp://0.0.0.0:162' "$log" && break
    kill -0 "$pid" 2>/dev/null || fail "the service exited"
    sleep 0.1
done
grep -q 'receives SNMP traps on udp://0.0.0.0:162' "$log" || fail "no trap listener on port 162"
server="$(pgrep -u opsconductor -x opsconductor)" || fail "no opsconductor process of user opsconductor"
grep -q '^CapEff:[[:space:]]*0000000000000400$' "/proc/$server/status" ||
    fail "capabilities: $(grep Cap "/proc/$server/status")"

step "a net-snmp trap to port 162"
MIBS="" snmptrap -v 2c -c public 127.0.0.1:162 '' 1.3.6.1.6.3.1.1.5.3 \
    1.3.6.1.2.1.2.2.1.1.4242 i 4242 1.3.6.1.2.1.2.2.1.7.4242 i 1 1.3.6.1.2.1.2.2.1.8.4242 i 2
alerts=""
for _ in $(seq 100); do
    alerts="$(curl -sf -H "Authorization: Bearer $key" "http://$listen/api/v1/alerts")" || true
    grep -q 'ifIndex 4242' <<<"$alerts" && break
    sleep 0.1
done
grep -q 'ifIndex 4242' <<<"$alerts" || fail "the trap made no alert: $alerts"

step "SIGTERM"
as_root kill -TERM "$server"
status=0
wait "$pid" || status=$?
pid=""
[[ "$status" == 0 ]] || fail "exit status $status after SIGTERM"
grep -q 'stopped; traps accounted' "$log" || fail "no final accounting line"

step "purge"
as_root dpkg --purge opsconductor >/dev/null
[[ ! -e /usr/bin/opsconductor && ! -e "$config" ]] || fail "purge left the binary or the config"
[[ -f "$STATE/data/opsconductor.db" ]] || fail "purge removed the data"
echo "package-test: ok ($deb)" >&2
