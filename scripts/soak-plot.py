#!/usr/bin/env python3
"""Draws a soak run's CSV (tests/src/bin/soak.rs) as one PNG of four stacked panels over
minutes: RSS; open descriptors and threads; webhook p50/p99 and API read p99; queue depths and
the error counters, which should all stay 0.

Usage: soak-plot.py SOAK_CSV OUT_PNG. Installs matplotlib with pip when it is missing.
"""

import csv
import subprocess
import sys

# The columns soak.rs writes before its error counters; every column after these is one.
NOT_ERRORS = {
    "elapsed_s", "rss_kib", "open_fds", "threads", "cpu_percent", "webhook_requests",
    "webhook_p50_ms", "webhook_p99_ms", "api_reads", "api_p99_ms", "traps_sent", "polls_seen",
    "ws_events", "ws_reconnects", "open_alerts", "trap_queue", "writer_queue",
}


def import_pyplot():
    try:
        import matplotlib
    except ImportError:
        print("soak-plot: installing matplotlib", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
        import matplotlib
    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    return plt


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"soak-plot: {path} has no rows")
    columns = {name: [float(r[name]) if r[name] else float("nan") for r in rows] for name in rows[0]}
    return columns


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = read(sys.argv[1])
    plt = import_pyplot()
    minutes = [s / 60 for s in data["elapsed_s"]]
    errors = [name for name in data if name not in NOT_ERRORS]

    fig, (rss, fds, latency, queues) = plt.subplots(4, 1, sharex=True, figsize=(10, 12))
    fig.suptitle("OpsConductor soak")
    rss.plot(minutes, [k / 1024 for k in data["rss_kib"]], label="RSS")
    rss.set_ylabel("MiB")
    rss.set_ylim(bottom=0)

    fds.plot(minutes, data["open_fds"], label="open descriptors")
    fds.plot(minutes, data["threads"], label="threads")
    fds.set_ylabel("count")
    fds.set_ylim(bottom=0)

    latency.plot(minutes, data["webhook_p50_ms"], label="webhook p50")
    latency.plot(minutes, data["webhook_p99_ms"], label="webhook p99")
    latency.plot(minutes, data["api_p99_ms"], label="API read p99")
    latency.set_ylabel("ms, per 10 s window")
    latency.set_ylim(bottom=0)

    queues.plot(minutes, data["trap_queue"], label="trap queue")
    queues.plot(minutes, data["writer_queue"], label="writer queue")
    # Counters that stayed 0 share one line, so that the legend lists only what went wrong.
    risen = [name for name in errors if any(v > 0 for v in data[name])]
    for name in risen:
        queues.plot(minutes, data[name], linestyle="--", label=f"{name} (total)")
    if len(risen) < len(errors):
        queues.plot(minutes, [0] * len(minutes), linestyle=":", color="green",
                    label=f"{len(errors) - len(risen)} error counters, all 0")
    queues.set_ylabel("depth / count")
    queues.set_xlabel("minutes")
    queues.set_ylim(bottom=0)

    for panel in (rss, fds, latency, queues):
        panel.grid(alpha=0.3)
        panel.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"soak-plot: wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
