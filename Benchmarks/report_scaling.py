#!/usr/bin/env python3
"""Writes RESULTS/scaling.md (and scaling.png) from the raw files of the revocation_scaling suite
(Benchmarks/suites/revocation_scaling.sh, one boot of the stable kernel): revocation latency as a
lease grows in regions and in region size, DaxPin's holder against the raw C holder, with the tails
of each series, and the memory per region of a lease of many regions. Every row is judged by its
declaration in Benchmarks/targets.json (report scaling).

usage: report_scaling.py RAW_DIR RESULTS_DIR [TARGETS_JSON]
"""
import os
import re
import sys

import benchtargets

raw, results = sys.argv[1], sys.argv[2]
declared = benchtargets.Declarations("scaling", sys.argv[3] if len(sys.argv) > 3 else None)


def read(name):
    path = os.path.join(raw, name)
    return open(path).read() if os.path.exists(path) else None


def breaks(name):
    """The breaks' truncate times in ns (the breaker writes warm-ups as comments)."""
    return [float(line) for line in (read(name) or "").splitlines() if re.fullmatch(r"[0-9.]+", line.strip())]


def tails(values):
    """p50, p90, p99 (only with 100 breaks or more) and max, in µs."""
    if not values:
        return "n/a"
    s = sorted(values)
    parts = [f"p50 {benchtargets.percentile(s, 0.5) / 1e3:.0f}", f"p90 {benchtargets.percentile(s, 0.9) / 1e3:.0f}"]
    if len(s) >= 100:
        parts.append(f"p99 {benchtargets.percentile(s, 0.99) / 1e3:.0f}")
    parts.append(f"max {s[-1] / 1e3:.0f}")
    return ", ".join(parts) + " µs"


judged, table = [], []


def cpu_per_break(name):
    """The holder's "CPU <ns>" of each measured break (the breaker passes it on as "# CPU"; the
    one after a "# warm-up" line belongs to the warm-up break)."""
    values, warm = [], None
    for line in (read(name) or "").splitlines():
        line = line.strip()
        if line.startswith("# warm-up"):
            warm = True
        elif re.fullmatch(r"[0-9.]+", line):
            warm = False
        elif line.startswith("# CPU ") and warm is False:
            values.append(float(line.split()[2]))
    return values


def revocation_row(row_id, regions, region_bytes, series=None):
    row = declared.row(row_id)
    series = series or f"{regions}x{region_bytes}"
    daxpin = breaks(f"scaling.daxpin.{series}.txt")
    c = breaks(f"scaling.c.{series}.txt")
    result = declared.measure(row_id, a=daxpin, b=c)
    judged.append((row.get("label", row_id), result))
    table.append(f"| {row_id} | {row['metric']} | {tails(daxpin)} | {tails(c)} | {result.n} | {result.ratio_text()} | "
                 f"{result.interval_text()} | {declared.target_text(row_id)} | {result.verdict} |")


for n in (1, 4, 16, 64, 256, 1024):
    revocation_row(f"scale-regions-{n}", n, 65536)
for size in (4096, 1 << 20, 64 << 20, 256 << 20):
    revocation_row(f"scale-bytes-{size}", 1, size)
revocation_row("scale-concurrent-4", 16, 65536, series="concurrent")
traffic_row = declared.row("scale-traffic-16")
traffic, idle = breaks("scaling.traffic.16x65536.txt"), breaks("scaling.daxpin.16x65536.txt")
traffic_result = declared.measure("scale-traffic-16", a=traffic, b=idle)
judged.append((traffic_row.get("label", "scale-traffic-16"), traffic_result))
writes = [int(w) for w in re.findall(r"^# WRITES (\d+)", read("scaling.traffic.16x65536.txt") or "", re.M)]
table.append(f"| scale-traffic-16 | {traffic_row['metric']} (WRITEs landed before each break: "
             f"{'median ' + str(int(benchtargets.median(writes))) if writes else 'n/a'}) | {tails(traffic)} | {tails(idle)} (idle) | "
             f"{traffic_result.n} | {traffic_result.ratio_text()} | {traffic_result.interval_text()} | "
             f"{declared.target_text('scale-traffic-16')} | {traffic_result.verdict} |")

cpu_table = []
for n in (16, 256, 1024):
    row_id = f"scale-cpu-{n}"
    row = declared.row(row_id)
    daxpin = [v / n for v in cpu_per_break(f"scaling.daxpin.{n}x65536.txt")]
    c = [v / n for v in cpu_per_break(f"scaling.c.{n}x65536.txt")]
    result = declared.measure(row_id, a=daxpin, b=c)
    judged.append((row.get("label", row_id), result))
    med = lambda v: f"{benchtargets.median(v) / 1e3:.1f} µs" if v else "n/a"
    cpu_table.append(f"| {row_id} | {row['metric']} | {med(daxpin)} | {med(c)} | {result.n} | {result.ratio_text()} | "
                     f"{result.interval_text()} | {declared.target_text(row_id)} | {result.verdict} |")

# Tails of many breaks of one small region (scale-tail-1): every measured break of each holder.
tail_id = declared.row("scale-tail-1")["id"]
tail_table = [line for line in (benchtargets.tail_row(tail_id, "revocation, 1 region of 64 KiB", side, breaks(f"scaling.{kind}.tail.txt"))
                                for kind, side in (("daxpin", "DaxPin"), ("c", "raw C"))) if line]

memory = read("scaling.memory.txt") or ""
settings = (read("scaling.rounds.txt") or "").split()
mem_regions = int(settings[2]) if len(settings) > 2 else None
memory_table = []
for row_id, label in (("mem-rss-per-region", "MEM"), ("mem-vmpin-per-region", "VMPIN")):
    row = declared.row(row_id)
    found = re.findall(rf"^# {label} (-?\d+)", memory, re.M)
    value = int(found[0]) / mem_regions if found and mem_regions else None
    result = declared.measure(row_id, value=value)
    total = f"{int(found[0]) / 1048576:.1f} MiB for {mem_regions} regions" if found and mem_regions else "n/a"
    memory_table.append(f"| {row_id} | {row['metric']} | {total} | {result.ratio_text(0)} bytes | {declared.target_text(row_id)} | {result.verdict} |")

env = benchtargets.read_environment(raw)
left_off = benchtargets.chart(os.path.join(results, "scaling.png"),
                              "Revocation as the lease grows, Linux 6.1 (emulated: ratios only)", judged)
rounds = f"{settings[0]} rounds of {settings[1]} breaks per holder" if len(settings) > 1 else "rounds: not recorded"
tail_rounds = (f"{settings[4]} processes of {settings[5]} breaks per holder, after a warm-up break each"
               if len(settings) > 5 else "blocks not recorded")
md = [
    "# Revocation as the lease grows: regions, region size, memory",
    "",
    "Generated by `Scripts/bench` (`DAXPIN_BENCH_KERNELS=scaling`) with `Benchmarks/report_scaling.py` from the",
    "raw series of the `revocation_scaling` suite; the rows, estimators and targets are declared in",
    "`Benchmarks/targets.json` (report `scaling`), and the method is in `ReadingTheBenchmarks.md`.",
    "",
    *benchtargets.header_lines(env),
    "",
    f"DaxPin's holder and the raw C holder, each its own process, alternating ({rounds}, after a warm-up",
    "break each), timed by the same breaker: how long another process's `truncate()` stays blocked. The",
    "tails are of each holder's own breaks (p99 only from 100 breaks on); the ratio is DaxPin's median over",
    "the C holder's, with its bootstrap 90 % interval. The testbed is emulated (QEMU TCG): only ratios are",
    "claims. One region of 1 GiB is not measured: the guest has 2 GiB, and such a tmpfs region would hold",
    "half of it.",
    "",
    "| id | metric | DaxPin tails | C tails | breaks | ratio | interval | target | verdict |",
    "|---|---|---|---|---|---|---|---|---|",
    *table,
    "",
    "CPU time per revoked MR: each holder's whole-process CPU time (user + system, `CLOCK_PROCESS_CPUTIME_ID`,",
    "every thread) from its READY line to the end of its teardown (DaxPin's including the pin registry's write",
    "of the change), divided by the lease's regions; medians of the measured breaks.",
    "",
    "| id | metric | DaxPin per MR | C per MR | breaks | ratio | interval | target | verdict |",
    "|---|---|---|---|---|---|---|---|---|",
    *cpu_table,
    "",
    f"Tails of many breaks: one lease of one 64 KiB region, {tail_rounds}, the two holders alternating",
    "process by process (which goes first flips each time); p99 from 100 breaks, p99.9 from 1,000.",
    "",
    *(benchtargets.TAIL_TABLE + tail_table if tail_table else ["(no tail series in this run)"]),
    "",
        "Memory of one lease of many regions: what DaxPin's process gains in anonymous memory (`RssAnon`) and in",
    "pinned memory (`VmPin`) while it pins them, per region (context: the raw C holder keeps no per-region",
    "state of its own).",
    "",
    "| id | metric | total | per region | target | verdict |",
    "|---|---|---|---|---|---|",
    *memory_table,
    "",
    "![ratios: above 1 is better for DaxPin](scaling.png)",
    "",
    "The chart puts every revocation row on one axis where above 1 means DaxPin is better (C / DaxPin): dot",
    "the estimate coloured by its verdict, whiskers the declared interval, black dash the threshold."
    + (f" Not on it: {', '.join(left_off)}." if left_off else ""),
    "",
]
open(os.path.join(results, "scaling.md"), "w").write("\n".join(md))
print("\n".join(md))
