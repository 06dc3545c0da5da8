#!/usr/bin/env bash
# Builds the Debian package (target/debian/opsconductor_<version>-1_<arch>.deb) with cargo-deb,
# installed here when missing. What goes in it is declared in runtime/Cargo.toml
# ([package.metadata.deb]) and runtime/debian/.
#
#   scripts/package.sh          the release binary: what `just package` ships
#   scripts/package.sh --debug  the debug binary the tests already built, for the install test
#                               in `just test` (scripts/package-test.sh): a release build
#                               costs CI ~15 minutes on two cores, and the install test checks
#                               the package's layout, user, unit and permissions, which are
#                               the same whichever profile built the binary
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    echo "package: installing cargo-deb $CARGO_DEB_VERSION" >&2
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi
[[ -f target/bundles/if-mib/manifest.json ]] || scripts/build-addons.sh

case "${1:-}" in
--debug)
    # `just test` has just built it (`cargo test --workspace` builds the binary for the CLI
    # tests); a build of this package alone would resolve features apart and rebuild much.
    [[ -x target/debug/opsconductor ]] || cargo build --workspace --bins
    # cargo-deb packages `target/release/opsconductor` of the target directory it is given
    # and refuses the dev profile: hand it a directory whose release/ holds the debug build.
    staging="$PWD/target/package-debug"
    mkdir -p "$staging/release"
    cp target/debug/opsconductor "$staging/release/opsconductor"
    CARGO_TARGET_DIR="$staging" cargo deb -p opsconductor --no-build --output target/debian/
    ;;
"")
    cargo build --release -p opsconductor
    cargo deb -p opsconductor --no-build --output target/debian/
    ;;
*)
    echo "usage: scripts/package.sh [--debug]" >&2
    exit 2
    ;;
esac
