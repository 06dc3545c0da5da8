#!/usr/bin/env bash
# The real peers `just test` talks to, installed or started when missing (Debian packages; root
# installs them, anyone else is told the command): net-snmp's tools and agent, OpenSSH's server,
# OpenLDAP, PostgreSQL, Prometheus, an OpenID Connect provider (npm), and Debian's chromium with chromedriver for the dashboard's browser
# tests. Quick when everything is there already.
set -euo pipefail

missing=()
command -v snmptrap >/dev/null && command -v snmpinform >/dev/null || missing+=(snmp)
[[ -x /usr/sbin/snmpd ]] || missing+=(snmpd)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
[[ -x /usr/sbin/slapd ]] || missing+=(slapd ldap-utils)
command -v pg_isready >/dev/null || missing+=(postgresql postgresql-client)
# Prometheus itself scrapes /metrics in the metrics test (tests/src/prometheus.rs).
[[ -x /usr/bin/prometheus ]] || missing+=(prometheus)
# Playwright's and puppeteer's own browser downloads cannot be reached from here; Debian's
# chromium and its chromedriver can.
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
[[ -x /usr/bin/chromedriver ]] || missing+=(chromium-driver)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ "$(id -u)" != 0 ]]; then
        echo "test-peers: missing packages; run: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "test-peers: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The SSH tests log in as this user, with a key and with this password (tests/src/sshd.rs).
if [[ "$(id -u)" == 0 ]]; then
    if ! id opsconductor-test >/dev/null 2>&1; then
        useradd -m -s /bin/sh opsconductor-test
        echo 'opsconductor-test:opsconductor-test-password' | chpasswd
    fi
    mkdir -p /run/sshd
fi

# The OpenID Connect provider of the single sign-on tests (tests/src/oidc_provider.rs): npm's
# `oidc-provider`, as pinned by its package-lock.json; reinstalled only when the lock changed.
provider="$(dirname "${BASH_SOURCE[0]}")/../tests/oidc-provider"
if [[ ! -f "$provider/node_modules/.package-lock.json" ||
    "$provider/package-lock.json" -nt "$provider/node_modules/.package-lock.json" ]]; then
    echo "test-peers: installing the test OpenID Connect provider (npm ci)" >&2
    (cd "$provider" && npm ci --no-audit --no-fund)
fi

# PostgreSQL with trust auth on loopback (each test creates and drops its own database).
url="${OPSCONDUCTOR_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "test-peers: PostgreSQL is down; starting it" >&2
    for version in $(ls /etc/postgresql 2>/dev/null); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! psql "$url" -qAtc 'select 1' >/dev/null; then
    echo "test-peers: cannot reach PostgreSQL at $url (the tests need it with trust auth;" >&2
    echo "start it with: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)" >&2
    exit 1
fi
# Databases left by an interrupted run.
psql "$url" -qAtc "select datname from pg_database where datname like 'opsconductor_test_%'" |
    while read -r db; do psql "$url" -qc "drop database if exists \"$db\" with (force)"; done
