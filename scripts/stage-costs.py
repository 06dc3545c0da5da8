#!/usr/bin/env python3
"""Per-stage CPU cost of ingest, from a `perf record --call-graph dwarf` of `opsconductor serve`.

    stage-costs.py PERF_DATA FREQUENCY UNITS [LABEL]

Reads `perf script` of PERF_DATA (sampled at FREQUENCY Hz on every thread of the server) and
gives each sample to one stage: the innermost frame of our own code on its stack decides the
stage (the handler, the sandbox, the engine, the writer, the store, the bus), refined by the
library frames below it (JSON parsing under the webhook handler is the JSON check; SQLite's
WAL write and fsync under the store are the commit). Samples with none of our frames go to the
runtime's machinery they are in (hyper, tokio, sqlx's worker thread, the kernel). Prints a
Markdown table of microseconds of CPU per unit (alert or trap) and the share of samples.

Used by `bench-peers --perf DIR`; the method and the tables are in docs/performance.md.
"""

import re
import subprocess
import sys
from collections import Counter

# (stage, pattern on a frame's symbol), tried from the innermost frame outwards: the first of
# our own frames that matches decides, unless a library frame below it refines it.
OWN = [
    ("webhook handler (headers, body read)", r"opsconductor::api::webhook::"),
    ("HTTP server (hyper, axum, guard)", r"opsconductor::(http_server|api::guard|api::)"),
    ("sandbox call (guest parse, copy in/out)", r"opsconductor::sandbox::"),
    ("trap listener (receive, decode, route)", r"opsconductor::inbound::trap"),
    ("alert engine (rules, fingerprint)", r"opsconductor_model::engine|opsconductor::ingest::"),
    ("store: SQL statements", r"opsconductor::store::"),
    ("writer (queueing, silences, batching)", r"opsconductor::writer::"),
    ("event bus (render, publish)", r"opsconductor::bus::"),
]
# Library frames below our innermost frame that say more precisely what it was doing.
REFINE = [
    ("store: commit (WAL write, fsync)",
     r"sqlite3WalFrames|walWriteToLog|sqlite3PagerCommitPhase|fdatasync|fsync|sqlite3WalSync"),
    ("JSON check (host serde_json)", r"^serde_json::"),
]
# Samples with none of our frames: which machinery they are in.
MACHINERY = [
    ("store: commit (WAL write, fsync)", REFINE[0][1]),
    ("store: SQL statements", r"sqlite3|sqlx_sqlite|sqlx_postgres|sqlx_core"),
    ("sandbox call (guest parse, copy in/out)", r"wasmtime|cranelift|wasm\[|wasm-function"),
    ("HTTP server (hyper, axum, guard)", r"hyper::|axum::|h2::|tower"),
    ("tokio runtime (scheduling, I/O driver)", r"tokio::"),
]


def frames(sample):
    for line in sample[1:]:
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            # "addr symbol+0xoff (dso)"
            sym = re.sub(r"\+0x[0-9a-f]+ \(.*\)$", "", parts[1])
            sym = re.sub(r" \(.*\)$", "", sym)
            yield sym


def stage_of(stack):
    below = []
    for sym in stack:
        for stage, pattern in OWN:
            if re.search(pattern, sym):
                # Refinements only apply where they make sense.
                for refined, rpattern in REFINE:
                    if any(re.search(rpattern, b) for b in below):
                        if refined.startswith("store") and not stage.startswith("store"):
                            continue
                        if refined.startswith("JSON") and not stage.startswith("webhook"):
                            continue
                        return refined
                return stage
        below.append(sym)
    for stage, pattern in MACHINERY:
        if any(re.search(pattern, s) for s in stack):
            return stage
    if stack and all(s.startswith("[unknown]") or "kernel" in s for s in stack[:1]):
        return "kernel and unattributed"
    return "other (allocator, std, unattributed)"


def main():
    data, frequency, units = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    label = sys.argv[4] if len(sys.argv) > 4 else data
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso", "--no-inline"],
        capture_output=True, text=True, check=True,
    ).stdout
    counts = Counter()
    total = 0
    for block in out.split("\n\n"):
        lines = [l for l in block.splitlines() if l.strip()]
        if not lines:
            continue
        counts[stage_of(list(frames(lines)))] += 1
        total += 1
    if total == 0:
        print(f"{label}: no samples")
        return
    print(f"\n{label}: {total} samples at {frequency:.0f} Hz over {units:.0f} units\n")
    print("| stage | µs CPU per unit | share |")
    print("|---|---|---|")
    for stage, n in counts.most_common():
        us = n / frequency / units * 1e6
        print(f"| {stage} | {us:.1f} | {100 * n / total:.0f}% |")
    print(f"| **total** | **{total / frequency / units * 1e6:.1f}** | 100% |")


if __name__ == "__main__":
    main()
