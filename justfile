# OpsConductor task runner. `just --list` shows every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# PostgreSQL used by the tests (each test creates and drops its own database there).
export OPSCONDUCTOR_TEST_PG_URL := env_var_or_default("OPSCONDUCTOR_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")

default:
    @just --list

# --- run ---

# Build everything, install the bundled addons into ./data (SQLite) and serve the console and API on 127.0.0.1:8080
run: setup build-addons build-dashboard
    cargo build --release -p opsconductor
    ./target/release/opsconductor addon install target/bundles/*
    # Port 162 is privileged: without root, listen for traps on 1162 unless told otherwise.
    if [ "$(id -u)" != 0 ] && [ -z "${OPSCONDUCTOR_TRAP_LISTEN:-}" ]; then export OPSCONDUCTOR_TRAP_LISTEN=0.0.0.0:1162; fi; \
        ./target/release/opsconductor serve

# --- build ---

# Install what building needs when missing: the wasm32-wasip2 target and the dashboard's npm packages
setup:
    scripts/setup.sh

# Build the dashboard (dashboard/) into dashboard/dist, which the runtime embeds and serves at /
build-dashboard: setup
    cd dashboard && npm run build

# Build the bundled addons and the sandbox test guests for wasm32-wasip2 into target/bundles
build-addons: setup
    scripts/build-addons.sh

# --- test ---

# Everything: unit, addon-native, fixture, end-to-end and browser tests on SQLite and PostgreSQL
test: test-peers build-addons build-dashboard
    cd dashboard && npm test
    cargo test --manifest-path addons/Cargo.toml
    cargo test --manifest-path tests/guests/Cargo.toml
    cargo test --workspace
    just test-package

# Build the Debian package of the debug build, install it with dpkg -i (needs root), run the installed service as its unit does, purge it
test-package:
    scripts/package.sh --debug
    scripts/package-test.sh

# Install or start the real peers the tests use when missing (net-snmp, sshd, slapd, PostgreSQL, chromium)
test-peers:
    scripts/test-peers.sh

# Format and lint checks (what CI enforces)
lint: setup
    cargo fmt --all -- --check
    cargo fmt --manifest-path addons/Cargo.toml --all -- --check
    cargo fmt --manifest-path tests/guests/Cargo.toml --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --manifest-path addons/Cargo.toml --all-targets -- -D warnings
    cargo clippy --manifest-path tests/guests/Cargo.toml --all-targets -- -D warnings
    # The pure crates stay pure (ARCHITECTURE.md): no async runtime, database, HTTP or WASM engine below them
    ! cargo tree -p opsconductor-model -p opsconductor-snmp -e normal --prefix none | grep -E '^(tokio|sqlx|wasmtime|hyper|axum|reqwest) '

# What CI runs
ci: lint test

# --- package ---

# The Debian package of a release build, with the bundled addons and the hardened systemd unit, into target/debian/
package: build-addons build-dashboard
    scripts/package.sh

# --- bench ---

# Side by side with Alertmanager (webhooks) and snmptrapd (traps) on this box, same generators, one run; installs them (args: --seconds --connections --trap-seconds --trap-rates --db sqlite,postgres --only webhooks|traps)
bench-peers *ARGS: build-addons
    scripts/bench-peers.sh {{ARGS}}

# Webhook ingest throughput over loopback HTTP (args: --requests --concurrency --distinct --alerts-per-request --db)
bench-webhooks *ARGS: build-addons
    cargo run --release -p opsconductor-tests --bin bench-webhooks -- {{ARGS}}

# What a rules addon costs per event next to the compiled addon it replaces, on the same fixtures in the sandbox (args: --calls N)
bench-rules *ARGS: build-addons
    cargo run --release -p opsconductor-tests --bin bench-rules -- {{ARGS}}

# The write path alone (batching writer and store, no HTTP or sandbox): alerts/s, commits, CPU (args: --seconds --tasks --per-job --distinct --db)
bench-store *ARGS:
    cargo run --release -p opsconductor-tests --bin bench-store -- {{ARGS}}

# Trap ingest: a burst over loopback UDP, fully accounted (args: --count --distinct --rate --db)
bench-traps *ARGS: build-addons
    cargo run --release -p opsconductor-tests --bin bench-traps -- {{ARGS}}

# Polling: N http-json targets against an HTTP peer in-process (args: --targets --interval --seconds --concurrency --db)
bench-polls *ARGS: build-addons
    cargo run --release -p opsconductor-tests --bin bench-polls -- {{ARGS}}

# The console with 100,000 open alerts in a real browser: first render, filter time, a 1,000 events/s burst (args: --alerts --rate --seconds)
bench-console *ARGS: setup build-addons build-dashboard
    cargo run --release -p opsconductor-tests --bin bench-console -- {{ARGS}}

# Soak: the release server under steady mixed load (webhooks, traps, polls, WebSocket clients, API reads) for MINUTES, sampled every 10 s into target/soak/{soak.csv,soak.png,summary.md} (args: --out --webhook-rate --trap-rate --targets --ws-clients --db)
soak MINUTES="30" *ARGS: build-addons build-dashboard
    # One build for both binaries: built apart, each would unify features differently and the
    # runtime would be compiled twice.
    cargo build --release -p opsconductor --bin opsconductor -p opsconductor-tests --bin soak
    # The plot (scripts/soak-plot.py) needs matplotlib.
    python3 -c 'import matplotlib' 2>/dev/null || pip install --quiet matplotlib
    target/release/soak --minutes {{MINUTES}} {{ARGS}}

# Screenshots of every console screen, light and dark, into docs/dashboard/
screenshots: setup build-addons build-dashboard
    cargo run --release -p opsconductor-tests --bin console-screenshots

# Fuzz the SNMP datagram decoder and USM path (needs the nightly toolchain and cargo-fuzz)
fuzz-snmp SECONDS="300":
    cd fuzz && sh seed.sh && cargo +nightly fuzz run datagram -- -max_total_time={{SECONDS}} -max_len=4096 -print_final_stats=1
