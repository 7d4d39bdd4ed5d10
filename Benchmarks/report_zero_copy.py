#!/usr/bin/env python3
"""Writes RESULTS/zero-copy.md from the raw files of the zero_copy suite (Benchmarks/suites/zero_copy.sh,
one boot of the newest kernel with the fixed rxe), judged against the zero-copy rows of Benchmarks/targets.json:
each row's estimator, interval, direction and threshold come from there, not from this script.

usage: report_zero_copy.py RAW_DIR RESULTS_DIR [TARGETS_JSON]
"""
import json
import os
import statistics
import sys

import benchtargets

raw, results = sys.argv[1], sys.argv[2]
declared = benchtargets.Declarations("zero-copy", sys.argv[3] if len(sys.argv) > 3 else None)
judged = []


def lines(name):
    path = os.path.join(raw, name)
    return [line.split() for line in open(path).read().splitlines() if line.strip()] if os.path.exists(path) else []


table = []


def add_ratio_row(row_id, per_round, a_label, a_values, b_label, b_values, fmt):
    """PER_ROUND: {round: (a, b)}; the row's declared estimator and interval over the rounds' a / b."""
    row = declared.row(row_id)
    result = declared.measure(row_id, rounds=[per_round[r] for r in sorted(per_round)])
    judged.append((row.get("label", row_id), result))
    sides = (f"{a_label} {fmt(statistics.median(a_values)) if a_values else 'n/a'}, "
             f"{b_label} {fmt(statistics.median(b_values)) if b_values else 'n/a'}")
    table.append(f"| {row_id} | {row['metric']} | {sides} | {result.n} | "
                 f"{result.ratio_text()} | {result.interval_text()} | {declared.target_text(row_id)} | {result.verdict} |")


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
    per_round = {r: (rate[("odp", r)], rate[("staged", r)]) for r in rounds if ("odp", r) in rate and ("staged", r) in rate}
    add_ratio_row(row_id, per_round, "ODP", [v for (s, _), v in rate.items() if s == "odp"],
                  "staged", [v for (s, _), v in rate.items() if s == "staged"], mib_s)

# Pin: "pin <fsdax|tmpfs> <odp|staged|pinned> <round> <seconds>"; ratio = ODP time over the other side's.
pin_times = {}
for fields in lines("zero_copy.pin.txt"):
    pin_times[(fields[1], fields[2], int(fields[3]))] = float(fields[4])
for row_id, medium, other in (("pin_fsdax", "fsdax", "staged"), ("pin_tmpfs", "tmpfs", "pinned")):
    rounds = sorted({r for (m, _, r) in pin_times if m == medium})
    per_round = {r: (pin_times[(medium, "odp", r)], pin_times[(medium, other, r)]) for r in rounds
                 if (medium, "odp", r) in pin_times and (medium, other, r) in pin_times}
    add_ratio_row(row_id, per_round, "ODP", [v for (m, s, _), v in pin_times.items() if m == medium and s == "odp"],
                  other, [v for (m, s, _), v in pin_times.items() if m == medium and s == other], ms)

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
    per_round = {r: (total("prefetch", r), total("noprefetch", r)) for r in rounds
                 if total("prefetch", r) is not None and total("noprefetch", r) is not None}
    add_ratio_row(row_id, per_round, "prefetched", [v for r in rounds if (v := total("prefetch", r)) is not None],
                  "not", [v for r in rounds if (v := total("noprefetch", r)) is not None], ms)

# The check: "CHECK <seconds> <verdict> CACHED <seconds>", one line per fresh process.
checks = lines("zero_copy.check.txt")
verdicts = sorted({fields[2] for fields in checks})
for row_id, index in (("check_cost", 1), ("check_cached", 4)):
    row = declared.row(row_id)
    samples = [float(fields[index]) * 1e3 for fields in checks]
    result = declared.measure(row_id, samples=samples)
    judged.append((row.get("label", row_id), result))
    if not samples:
        table.append(f"| {row_id} | {row['metric']} | - | 0 | n/a | n/a | {declared.target_text(row_id)} | not measured |")
        continue
    judged_text = result.verdict if verdicts == ["verified"] else f"failed (verdicts: {', '.join(verdicts)})"
    table.append(f"| {row_id} | {row['metric']} | median {statistics.median(samples):.3f} ms, max {max(samples):.3f} ms | {len(samples)} | "
                 f"{result.ratio_text()} ms | {result.interval_text()} ms | {declared.target_text(row_id)} | {judged_text} |")

left_off = benchtargets.chart(os.path.join(results, "zero-copy.png"),
                              "Zero copy on fs-dax, newest kernel with the fixed rxe (emulated: ratios only)", judged,
                              ylabel="better for the ODP / prefetch side →  (inverted for lower-is-better rows)")
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
    "`Benchmarks/targets.json` (report `zero-copy`), and the method is in `ReadingTheBenchmarks.md`.",
    "",
    f"- commit: {environment.get('commit', '?')}",
    f"- kernel: {environment.get('kernel', '?')}",
    f"- rdma-core: {environment.get('rdma_core', '?')}",
    f"- rxe: {environment.get('rxe', '?')}",
    f"- date: {environment.get('date', '?')}",
    f"- device: {environment.get('device', '?')}; ext4-dax: {environment.get('fsdax', '?')}",
    benchtargets.header_lines(benchtargets.read_environment(raw))[4],   # full or shortened run
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
    "| id | metric | medians | rounds | ratio (median) | interval | target | verdict |",
    "|---|---|---|---|---|---|---|---|",
    *table,
    "",
    f"Pages present after each first-touch pin (`/proc/self/pagemap`): {shown_pages}.",
    f"The check's verdict in every process: {', '.join(verdicts) or 'n/a'}.",
    "",
    "![ratios: above 1 is better for the ODP / prefetch side](zero-copy.png)",
    "",
    "The chart puts every row with a ratio on one axis where above 1 means the row's first side (ODP, or the",
    "prefetch) is better (inverted for lower-is-better rows): dot the estimate coloured by its verdict, whiskers",
    "the declared interval, black dash the threshold." + (f" Not on it (absolute times): {', '.join(left_off)}." if left_off else ""),
    "",
]
open(os.path.join(results, "zero-copy.md"), "w").write("\n".join(md))
print("\n".join(md))
