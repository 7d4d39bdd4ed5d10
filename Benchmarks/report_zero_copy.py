#!/usr/bin/env python3
"""Writes RESULTS/zero-copy.md from the raw files of the zero_copy suite (Benchmarks/suites/zero_copy.sh,
one boot of the newest kernel with the fixed rxe), judged against Benchmarks/targets-zero-copy.json:
each row's estimator, interval, direction and threshold come from there, not from this script.

usage: report_zero_copy.py RAW_DIR RESULTS_DIR [TARGETS_JSON]
"""
import json
import os
import statistics
import sys

raw, results = sys.argv[1], sys.argv[2]
targets_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets-zero-copy.json")
targets = {row["id"]: row for row in json.load(open(targets_path))["rows"]}


def lines(name):
    path = os.path.join(raw, name)
    return [line.split() for line in open(path).read().splitlines() if line.strip()] if os.path.exists(path) else []


def iqr(values):
    if len(values) < 2:
        return (values[0], values[0]) if values else (None, None)
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def verdict(row, low, high):
    """met: the whole interval on the right side of the threshold; missed: wholly on the wrong side."""
    threshold = row.get("threshold")
    if threshold is None:
        return "context"
    if low is None:
        return "not measured"
    good = (lambda v: v >= threshold) if row["direction"] == "higher" else (lambda v: v <= threshold)
    if good(low) and good(high):
        return "met"
    if not good(low) and not good(high):
        return "**missed**"
    return "inconclusive"


def target_text(row):
    threshold = row.get("threshold")
    if threshold is None:
        return "context"
    unit = " ms" if row.get("threshold_unit") == "ms" else ""
    return f"{'≥' if row['direction'] == 'higher' else '≤'} {threshold:g}{unit}"


table = []


def add_ratio_row(row_id, per_round, a_label, a_values, b_label, b_values, fmt):
    row = targets[row_id]
    values = [per_round[r] for r in sorted(per_round)]
    med = statistics.median(values) if values else None
    low, high = iqr(values)
    interval = "n/a" if low is None else f"{low:.3f} – {high:.3f}"
    sides = (f"{a_label} {fmt(statistics.median(a_values)) if a_values else 'n/a'}, "
             f"{b_label} {fmt(statistics.median(b_values)) if b_values else 'n/a'}")
    table.append(f"| {row_id} | {row['metric']} | {sides} | {len(values)} | "
                 f"{'n/a' if med is None else f'{med:.3f}'} | {interval} | {target_text(row)} | {verdict(row, low, high)} |")


def mib_s(value):
    return f"{value / 1048576:.2f} MiB/s"


def ms(value):
    return f"{value * 1e3:.1f} ms"


# Throughput rows: "<row> <odp|staged> <round> <seconds> <bytes>"; ratio = ODP bytes/s over staged bytes/s.
for row_id, name in (("write64k", "write"), ("durable4k", "durable")):
    rate = {}
    for fields in lines(f"zero_copy.{name}.txt"):
        rate[(fields[1], int(fields[2]))] = float(fields[4]) / float(fields[3])
    rounds = sorted({r for (_, r) in rate})
    per_round = {r: rate[("odp", r)] / rate[("staged", r)] for r in rounds if ("odp", r) in rate and ("staged", r) in rate}
    add_ratio_row(row_id, per_round, "ODP", [v for (s, _), v in rate.items() if s == "odp"],
                  "staged", [v for (s, _), v in rate.items() if s == "staged"], mib_s)

# First touch: "touch <prefetch|noprefetch> <round> <pin|first|second> <seconds>" and "... mapped N PAGES".
touch, mapped = {}, {}
for fields in lines("zero_copy.touch.txt"):
    if fields[3] == "mapped":
        mapped.setdefault(fields[1], []).append((int(fields[4]), int(fields[5])))
    else:
        touch[(fields[1], int(fields[2]), fields[3])] = float(fields[4])
rounds = sorted({r for (_, r, _) in touch})
for row_id, parts in (("first_touch", ("first",)), ("first_touch_with_pin", ("pin", "first")), ("second_touch", ("second",))):
    def total(variant, r):
        keys = [(variant, r, part) for part in parts]
        return sum(touch[k] for k in keys) if all(k in touch for k in keys) else None
    per_round = {r: total("prefetch", r) / total("noprefetch", r) for r in rounds
                 if total("prefetch", r) is not None and total("noprefetch", r) is not None}
    add_ratio_row(row_id, per_round, "prefetched", [v for r in rounds if (v := total("prefetch", r)) is not None],
                  "not", [v for r in rounds if (v := total("noprefetch", r)) is not None], ms)

# The check: "CHECK <seconds> <verdict> CACHED <seconds>", one line per fresh process.
checks = lines("zero_copy.check.txt")
verdicts = sorted({fields[2] for fields in checks})
for row_id, index in (("check_cost", 1), ("check_cached", 4)):
    row = targets[row_id]
    samples = [float(fields[index]) * 1e3 for fields in checks]
    if not samples:
        table.append(f"| {row_id} | {row['metric']} | - | 0 | n/a | n/a | {target_text(row)} | not measured |")
        continue
    low, high = min(samples), max(samples)
    judged = verdict(row, low, high) if verdicts == ["verified"] else f"failed (verdicts: {', '.join(verdicts)})"
    table.append(f"| {row_id} | {row['metric']} | median {statistics.median(samples):.3f} ms, max {high:.3f} ms | {len(samples)} | "
                 f"{statistics.median(samples):.3f} ms | {low:.3f} – {high:.3f} ms | {target_text(row)} | {judged} |")

environment = dict(fields.split(" ", 1) for fields in
                   (open(os.path.join(raw, "zero_copy.environment.txt")).read().splitlines()
                    if os.path.exists(os.path.join(raw, "zero_copy.environment.txt")) else []) if " " in fields)
pending = os.path.join(raw, "zero_copy.pending")
shown_pages = "; ".join(f"{variant}: {min(p for p, _ in v)}–{max(p for p, _ in v)} of {v[0][1]} pages"
                        for variant, v in sorted(mapped.items())) or "n/a"
md = [
    "# Zero copy on fs-dax: On-Demand Paging against staged, first touch, the check's cost",
    "",
    "Generated by `Scripts/bench` (`DAXPIN_BENCH_KERNELS=newest-fixed-rxe`) with `Benchmarks/report_zero_copy.py`",
    "from the raw series in `raw-zero-copy/`; the rows, estimators and targets are declared in",
    "`Benchmarks/targets-zero-copy.json`, and the method is in `ReadingTheBenchmarks.md`.",
    "",
    f"- commit: {environment.get('commit', '?')}",
    f"- kernel: {environment.get('kernel', '?')}",
    f"- rdma-core: {environment.get('rdma_core', '?')}",
    f"- rxe: {environment.get('rxe', '?')}",
    f"- date: {environment.get('date', '?')}",
    f"- device: {environment.get('device', '?')}; ext4-dax: {environment.get('fsdax', '?')}",
    "",
    "Every side of a row ran in one process of one boot, alternating; the ratio column is the median",
    "of the per-round ratios and the interval their interquartile range (for the check: the median and",
    "the range of its fresh processes, in emulated time). The testbed is emulated (QEMU TCG): the",
    "absolute figures in the third column only show what the ratios are made of.",
    "",
]
if os.path.exists(pending):
    md += [f"Not measured: {open(pending).read().strip()}", ""]
md += [
    "| row | metric | medians | rounds | ratio (median) | interval | target | verdict |",
    "|---|---|---|---|---|---|---|---|",
    *table,
    "",
    f"Pages present after each first-touch pin (`/proc/self/pagemap`): {shown_pages}.",
    f"The check's verdict in every process: {', '.join(verdicts) or 'n/a'}.",
    "",
]
open(os.path.join(results, "zero-copy.md"), "w").write("\n".join(md))
print("\n".join(md))
