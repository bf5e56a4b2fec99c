#!/usr/bin/env python3
"""Draws drawmesh-load results as PNGs.

Reads a file of BENCH_JSON lines (drawmesh-load's stdout, or the file given to its --json-out;
other lines are skipped) and draws, from the last record that has each scenario:

- hold-memory.png: the server's resident memory against open streams, one line per cycle
  (from the hold samples at 0, 25, 50, 75 and 100% of N);
- relay-latency.png: relay latency p50 and p99 against the delivered rate (from the sweep).

Usage: python3 loadgen/plot.py RESULTS [--out docs/bench]   (needs matplotlib)
"""

import argparse
import json
import os
import sys

PREFIX = "BENCH_JSON "


def records(path):
    """Every JSON record in the file, in order."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith(PREFIX):
                line = line[len(PREFIX):]
            elif not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"skipping a malformed line: {e}", file=sys.stderr)
    return out


def last_with(recs, scenario):
    """The last record whose scenario ran without error."""
    for rec in reversed(recs):
        s = rec.get("scenarios", {}).get(scenario)
        if s and "error" not in s:
            return rec, s
    return None, None


def caption(rec):
    m = rec.get("machine", {})
    load = m.get("loadavg_start") or [None]
    return (f"commit {rec.get('git_commit') or '?'}, {m.get('nproc', '?')} cores, "
            f"load avg at start {load[0]}")


def plot_hold(plt, rec, hold, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    base = hold["baseline"]["rss_kib"]
    by_cycle = {}
    for cycle in hold["cycles"]:
        for s in cycle["samples"]:
            by_cycle.setdefault(s["cycle"], []).append((s["open_streams"], s["rss_kib"] / 1024))
    for c, points in sorted(by_cycle.items()):
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=f"cycle {c}")
    ax.axhline(base / 1024, color="grey", linestyle=":", label="baseline")
    first = hold["cycles"][0]
    ax.set_title(f"drawmesh-server resident memory vs open SSE streams\n"
                 f"first cycle: {first['per_stream_kib']:.1f} KiB/stream; {caption(rec)}",
                 fontsize=9)
    ax.set_xlabel("open streams")
    ax.set_ylabel("VmRSS (MiB)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "hold-memory.png")
    fig.savefig(path, dpi=120)
    print(path)


def plot_relay(plt, rec, relay, out):
    sweep = [p for p in relay.get("sweep", []) if p.get("delivered_per_sec")]
    if not sweep:
        print("no relay sweep to plot", file=sys.stderr)
        return
    xs = [p["delivered_per_sec"] for p in sweep]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(xs, [p["p50_us"] / 1000 for p in sweep], marker="o", label="p50")
    ax.plot(xs, [p["p99_us"] / 1000 for p in sweep], marker="s", label="p99")
    # Label each step with its target: above saturation the delivered rate falls short of it.
    for p in sweep:
        ax.annotate(f"{p['target_rate']}/s", (p["delivered_per_sec"], p["p99_us"] / 1000),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7,
                    color="grey")
    top = relay.get("max")
    if top:
        ax.scatter([top["delivered_per_sec"]], [top["latency"]["p99_us"] / 1000], marker="x",
                   color="red", label="p99, unpaced (as fast as allowed)")
        ax.scatter([top["delivered_per_sec"]], [top["latency"]["p50_us"] / 1000], marker="+",
                   color="red", label="p50, unpaced")
    ax.set_title(f"relay latency (POST start -> SSE event) vs delivered rate, "
                 f"{relay['pairs']} pairs\n{caption(rec)}", fontsize=9)
    ax.set_xlabel("delivered messages / s (all pairs); grey: the step's target rate")
    ax.set_ylabel("latency (ms)")
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "relay-latency.png")
    fig.savefig(path, dpi=120)
    print(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="file of BENCH_JSON lines")
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "..", "docs", "bench"),
                        help="directory for the PNGs (default: docs/bench)")
    args = parser.parse_args()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = records(args.results)
    if not recs:
        sys.exit(f"no BENCH_JSON records in {args.results}")
    os.makedirs(args.out, exist_ok=True)
    drew = False
    rec, hold = last_with(recs, "hold")
    if hold:
        plot_hold(plt, rec, hold, args.out)
        drew = True
    rec, relay = last_with(recs, "relay")
    if relay:
        plot_relay(plt, rec, relay, args.out)
        drew = True
    if not drew:
        sys.exit("no hold or relay results to plot")


if __name__ == "__main__":
    main()
