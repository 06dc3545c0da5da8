#!/usr/bin/env bash
# Builds the bundled addons (addons/) and the sandbox test guests (tests/guests/) for
# wasm32-wasip2, then lays out one bundle directory per addon:
#
#   target/bundles/<id>/{manifest.json,addon.wasm,fixtures/}   bundled addons
#   target/bundles/<id>/{manifest.json,fixtures/}              rules addons (no crate, docs/rules.md)
#   target/test-bundles/<id>/{manifest.json,addon.wasm}        test guests, never shipped
#   target/rules-engine/rules_engine.wasm                      the rules engine the runtime embeds
#
# <id> is the addon's directory name, which must equal the manifest's "id". The wasm file is
# named after the crate (dashes become underscores), e.g. opsconductor_addon_prtg.wasm.
#
# The two workspaces build outside the root one (see the root Cargo.toml), so `cargo test` of
# the runtime never starts a nested wasm build; run this first and tests find the bundles at
# the paths above. Set CARGO_TARGET_DIR to build somewhere other than <repo>/target.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" # so rust-toolchain.toml picks the pinned toolchain
TARGET=wasm32-wasip2
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM_DIR="$TARGET_DIR/$TARGET/release"

die() {
    echo "build-addons: $*" >&2
    exit 1
}

# rustc 1.82+ emits components for wasm32-wasip2 directly (via wasm-component-ld), so the
# target's standard library is the only extra piece; say how to get it rather than let cargo
# fail with "can't find crate for `core`".
if [[ ! -d "$(rustc --print sysroot)/lib/rustlib/$TARGET" ]]; then
    die "the $TARGET target is not installed for $(rustc --version); run: rustup target add $TARGET"
fi

# Panic locations embed source paths: remap the checkout and the cargo home to fixed names so
# that bundles do not carry the builder's directories. (Byte-identical output still needs the
# same checkout path: cargo hashes the path of path dependencies into symbol names.) Encoded
# flags (0x1f-separated) survive paths with spaces; with --target, cargo applies them to the
# wasm crates only, not to build scripts and proc macros.
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$ROOT=/opsconductor"$'\x1f'"--remap-path-prefix=$CARGO_HOME_DIR=/cargo"

build() { # <workspace manifest> [cargo package selection...]
    local manifest="$1"
    shift
    echo "build-addons: building $manifest ${*:---workspace} for $TARGET" >&2
    cargo build --manifest-path "$manifest" --target "$TARGET" --release --target-dir "$TARGET_DIR" "${@:---workspace}"
}

# The crate's name from the first `name = "..."` of its Cargo.toml (the [package] table).
crate_name() { # <crate dir>
    local name
    name="$(sed -n 's/^name[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$1/Cargo.toml" | head -n1)"
    [[ -n "$name" ]] || die "$1/Cargo.toml has no package name"
    echo "${name//-/_}"
}

# A component starts with the wasm magic and version 0x0d, layer 1; a core module (what an
# older toolchain or a wasm32-unknown-unknown build would leave) has version 1, layer 0.
check_component() { # <wasm>
    local magic
    [[ -f "$1" ]] || die "$1 was not built; is its crate a member of its workspace?"
    magic="$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')"
    [[ "$magic" == "0061736d0d000100" ]] || die "$1 is not a WebAssembly component (header $magic)"
}

bundle() { # <addon dir> <bundle root> <with fixtures: yes|no>
    local dir="$1" out_root="$2" fixtures="$3" id wasm="" out
    id="$(basename "$dir")"
    grep -Eq "\"id\"[[:space:]]*:[[:space:]]*\"$id\"" "$dir/manifest.json" ||
        die "$dir/manifest.json: \"id\" must be \"$id\", the directory's name"
    # A rules addon (docs/rules.md) is a manifest and fixtures, without a crate: the rules
    # engine inside the runtime runs it.
    if [[ -f "$dir/Cargo.toml" ]]; then
        wasm="$WASM_DIR/$(crate_name "$dir").wasm"
        check_component "$wasm"
    fi
    if [[ "$fixtures" == yes ]]; then
        # Webhook fixtures are <name>.input.json, trap fixtures <name>.input.trap.json, poll
        # fixtures <name>.input.poll.json.
        compgen -G "$dir/fixtures/*.input.json" >/dev/null ||
            compgen -G "$dir/fixtures/*.input.trap.json" >/dev/null ||
            compgen -G "$dir/fixtures/*.input.poll.json" >/dev/null ||
            die "$dir has no fixtures/*.input.json, *.input.trap.json or *.input.poll.json"
    fi

    out="$out_root/$id"
    rm -rf "$out"
    mkdir -p "$out"
    cp "$dir/manifest.json" "$out/manifest.json"
    if [[ "$fixtures" == yes ]]; then
        # -L: a converted addon's fixtures may be a link to the compiled addon's own.
        cp -RL "$dir/fixtures" "$out/fixtures"
    fi
    if [[ -z "$wasm" ]]; then
        printf '  %-28s rules\n' "${out#"$TARGET_DIR"/}" >&2
        return
    fi
    cp "$wasm" "$out/addon.wasm"
    printf '  %-28s %8d bytes  sha256 %s\n' "${out#"$TARGET_DIR"/}" "$(wc -c <"$wasm")" \
        "$(sha256sum "$wasm" | cut -d' ' -f1)" >&2
}

# The rules engine builds on its own: cargo unifies a dependency's features across everything
# one command builds, and the engine's grok patterns switch on regex's Unicode tables and fast
# engines, which would double every other addon's size (prtg: 0.49 MB → 1.18 MB).
build "$ROOT/addons/Cargo.toml" --workspace --exclude opsconductor-rules-engine
build "$ROOT/addons/Cargo.toml" -p opsconductor-rules-engine
build "$ROOT/tests/guests/Cargo.toml"

# The rules engine is no bundle: the runtime embeds it (release) or reads it from here (debug),
# at the path runtime/src/sandbox.rs names, whatever CARGO_TARGET_DIR is.
engine="$WASM_DIR/opsconductor_rules_engine.wasm"
check_component "$engine"
mkdir -p "$ROOT/target/rules-engine"
cp "$engine" "$ROOT/target/rules-engine/rules_engine.wasm"
printf '  %-28s %8d bytes\n' "rules engine" "$(wc -c <"$engine")" >&2

echo "build-addons: bundles in $TARGET_DIR" >&2
for manifest in "$ROOT"/addons/*/manifest.json; do
    bundle "$(dirname "$manifest")" "$TARGET_DIR/bundles" yes
done
for manifest in "$ROOT"/tests/guests/*/manifest.json; do
    bundle "$(dirname "$manifest")" "$TARGET_DIR/test-bundles" no
done
