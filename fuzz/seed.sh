#!/bin/sh
# Seeds the `datagram` corpus with the net-snmp captures the unit tests use.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/datagram
for f in ../runtime/crates/snmp/src/testdata/*.hex; do
    grep -v '^#' "$f" | tr -d '\n' | xxd -r -p > "corpus/datagram/$(basename "$f" .hex)"
done
echo "seeded $(ls corpus/datagram | wc -l) inputs"
