#!/usr/bin/env bash
# What `just run` and `just test` need before building, installed when missing so that a fresh
# machine needs no step of its own: the wasm32-wasip2 target (addons build for it) and the
# dashboard's npm packages (as pinned by dashboard/package-lock.json). Quick when all is there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TARGET=wasm32-wasip2
if [[ ! -d "$(rustc --print sysroot)/lib/rustlib/$TARGET" ]]; then
    echo "setup: installing the $TARGET target for $(rustc --version)" >&2
    rustup target add "$TARGET"
fi

if ! command -v npm >/dev/null; then
    echo "setup: the dashboard needs Node.js 20 or later with npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
# npm records what it installed in node_modules/.package-lock.json: reinstall only when the
# lock file is newer (a pull changed the dependencies) or nothing is installed yet.
lock=dashboard/package-lock.json
installed=dashboard/node_modules/.package-lock.json
if [[ ! -f "$installed" || "$lock" -nt "$installed" ]]; then
    echo "setup: installing the dashboard's packages (npm ci)" >&2
    (cd dashboard && npm ci --no-audit --no-fund)
fi
