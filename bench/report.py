#!/usr/bin/python3
"""Turn the raw measurements of bench/run into Markdown tables.

The input is tab-separated: round, target, test, key, value. bench/run
writes one row per counter: wrk's summary fields, CPU clock ticks of the
server, of the upstream and of all CPUs, wrk's own CPU seconds, and
memory figures. Each figure in the first table is the median over the
rounds.
"""

import argparse
import statistics
import sys
from collections import defaultdict

TARGETS = ("upstream", "pullgate", "peer")
GIB = 1 << 30
MIB = 1 << 20
ERROR_KEYS = (
    "connect_errors",
    "read_errors",
    "write_errors",
    "status_errors",
    "timeouts",
)


def load(path):
    """Return {(round, target, test): {key: float}} from the raw file."""
    rows = defaultdict(dict)
    with open(path) as raw:
        for line_number, line in enumerate(raw, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 5:
                sys.exit(f"report.py: {path}:{line_number}: expected 5 fields")
            round_id, target, test, key, value = fields
            rows[(round_id, target, test)][key] = float(value)
    return rows


def per_round_figures(rows, blob_bytes, clk_tck):
    """Return {target: [figures of round 1, round 2, ...]}."""
    rounds = sorted({key[0] for key in rows if key[0].isdigit()}, key=int)
    figures = defaultdict(list)
    for round_id in rounds:
        for target in TARGETS:
            blob = rows.get((round_id, target, "blob"))
            manifest = rows.get((round_id, target, "manifest"))
            if blob is None or manifest is None:
                continue
            blob_seconds = blob["duration_us"] / 1e6
            blob_gib = blob["bytes"] / GIB
            manifest_seconds = manifest["duration_us"] / 1e6
            figure = {
                "round": int(round_id),
                # bytes per microsecond is 10^6 bytes per second.
                "blob_mb_s": blob["bytes"] / blob["duration_us"],
                "blob_complete_mb_s": blob["requests"] * blob_bytes
                / blob["duration_us"],
                "blob_requests": blob["requests"],
                "cpu_s_per_gib": blob["server_ticks"] / clk_tck / blob_gib,
                "wrk_cpu_s_per_gib": blob["wrk_cpu_s"] / blob_gib,
                "machine_cpu_s_per_gib": blob["machine_busy_ticks"]
                / clk_tck
                / blob_gib,
                "machine_busy_percent": 100
                * blob["machine_busy_ticks"]
                / blob["machine_total_ticks"],
                "manifest_rps": manifest["requests"] / manifest_seconds,
                "manifest_cpu_us": manifest["server_ticks"]
                / clk_tck
                / manifest["requests"]
                * 1e6,
                "p50_ms": manifest["p50_us"] / 1000,
                "p99_ms": manifest["p99_us"] / 1000,
                "errors": sum(blob[k] + manifest[k] for k in ERROR_KEYS),
                "rss_mib": rows.get((round_id, target, "memory"), {}).get(
                    "vm_rss_kib", float("nan")
                )
                * 1024
                / MIB,
            }
            if target != "upstream":
                figure["upstream_cpu_s"] = (
                    blob["upstream_ticks"] + manifest["upstream_ticks"]
                ) / clk_tck
            figures[target].append(figure)
    return figures


def median(figures, target, key):
    values = [f[key] for f in figures.get(target, []) if key in f]
    return statistics.median(values) if values else None


def format_number(value, digits):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def median_table(rows, figures):
    lines = [
        ("Blob throughput, MB/s (bytes read / duration)", "blob_mb_s", 0),
        ("Blob throughput, MB/s (complete responses × size)", "blob_complete_mb_s", 0),
        ("Server CPU per GiB of blob sent, s", "cpu_s_per_gib", 3),
        ("wrk CPU per GiB of blob read, s", "wrk_cpu_s_per_gib", 3),
        ("All CPUs' busy time per GiB of blob, s", "machine_cpu_s_per_gib", 3),
        ("All CPUs busy during the blob test, %", "machine_busy_percent", 0),
        ("Manifest GETs by digest, requests/s", "manifest_rps", 0),
        ("Server CPU per manifest GET, µs", "manifest_cpu_us", 1),
        ("Manifest latency p50, ms", "p50_ms", 2),
        ("Manifest latency p99, ms", "p99_ms", 2),
        ("Upstream CPU while the proxy was measured, s", "upstream_cpu_s", 2),
        ("wrk errors (connect, read, write, status, timeout)", "errors", 0),
    ]
    out = [
        "| figure (median of rounds) | upstream | pullgate | peer | pullgate / peer |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, key, digits in lines:
        values = [median(figures, target, key) for target in TARGETS]
        ratio = "–"
        if values[1] is not None and values[2]:
            ratio = f"{values[1] / values[2]:.2f}"
        cells = " | ".join(format_number(v, digits) for v in values)
        out.append(f"| {label} | {cells} | {ratio} |")

    for label, key in (
        ("Peak RSS during the timed runs, MiB", "hwm_timed_kib"),
        ("Peak RSS since start, with warm-up, MiB", "hwm_total_kib"),
    ):
        values = [rows.get(("all", t, "memory"), {}).get(key) for t in TARGETS]
        values = [None if v is None else v * 1024 / MIB for v in values]
        ratio = "–"
        if values[1] is not None and values[2]:
            ratio = f"{values[1] / values[2]:.2f}"
        cells = " | ".join(format_number(v, 1) for v in values)
        out.append(f"| {label} | {cells} | {ratio} |")
    return out


def round_table(figures):
    out = [
        "| round | server | blob MB/s | blob GETs | CPU s/GiB | CPUs busy % "
        "| manifest req/s | p50 ms | p99 ms | errors | RSS after round, MiB |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    rounds = sorted({f["round"] for fs in figures.values() for f in fs})
    columns = (
        ("blob_mb_s", 0),
        ("blob_requests", 0),
        ("cpu_s_per_gib", 3),
        ("machine_busy_percent", 0),
        ("manifest_rps", 0),
        ("p50_ms", 2),
        ("p99_ms", 2),
        ("errors", 0),
        ("rss_mib", 1),
    )
    for round_number in rounds:
        for target in TARGETS:
            for figure in figures.get(target, []):
                if figure["round"] != round_number:
                    continue
                cells = [str(round_number), target]
                cells += [format_number(figure[key], d) for key, d in columns]
                out.append("| " + " | ".join(cells) + " |")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", help="tab-separated measurements of bench/run")
    parser.add_argument(
        "--blob-bytes", type=int, required=True, help="size of the blob in bytes"
    )
    parser.add_argument(
        "--clk-tck", type=int, required=True, help="clock ticks per second"
    )
    parser.add_argument(
        "--table",
        choices=("median", "rounds"),
        required=True,
        help="median: the figures with ratios; rounds: every round",
    )
    args = parser.parse_args()

    rows = load(args.raw)
    figures = per_round_figures(rows, args.blob_bytes, args.clk_tck)
    if args.table == "median":
        lines = median_table(rows, figures)
    else:
        lines = round_table(figures)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
