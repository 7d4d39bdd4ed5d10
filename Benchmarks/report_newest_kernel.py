#!/usr/bin/env python3
"""Writes RESULTS/newest-kernel.md from the raw files of the newest-kernel boot of Scripts/bench
(revocation and On-Demand Paging rows). Ratios of medians, measured side by side in one boot;
absolute numbers under emulation are no claims.

usage: report_newest_kernel.py RAW_DIR RESULTS_DIR
"""
import os
import re
import statistics
import sys

raw, results = sys.argv[1], sys.argv[2]


def read(name):
    path = os.path.join(raw, name)
    return open(path).read() if os.path.exists(path) else None


def median(values):
    return statistics.median(values) if values else None


def plain_numbers(name):
    text = read(name) or ""
    return [float(line) for line in text.splitlines() if re.fullmatch(r"[0-9.]+", line.strip())]


def labelled(name, *labels):
    """Values of the lines that start with LABELS (space-separated words), last field a number."""
    text = read(name) or ""
    prefix = " ".join(labels) + " "
    return [float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)]


def ratio(a, b):
    return None if not a or not b else a / b


def r3(value):
    return "n/a" if value is None else f"{value:.3f}"


def ms(value):
    return "n/a" if value is None else f"{value * 1e3:.1f} ms"


def us(value):
    return "n/a" if value is None else f"{value / 1e3:.0f} µs"


environment = dict(line.split(" ", 1) for line in (read("environment.txt") or "").splitlines() if " " in line)
rows = []


def add(metric, a, b, value, target, ok):
    verdict = "context" if ok is None else ("met" if ok else "**MISSED**")
    rows.append(f"| {metric} | {a} | {b} | {value} | {target} | {verdict} |")


for n in (1, 16, 64):
    d, c = median(plain_numbers(f"revocation.daxpin.{n}.txt")), median(plain_numbers(f"revocation.c.{n}.txt"))
    r = ratio(d, c)
    add(f"revocation latency, {n} region{'s' if n > 1 else ''}, DaxPin / raw C", us(d), us(c), r3(r), "≤ 1.10",
        None if r is None else r <= 1.10)

pending = read("on_demand_paging.pending")
if pending:
    rows.append(f"| On-Demand Paging | - | - | - | - | not measured: {pending.strip()} |")
else:
    pin = {key: median(labelled("on_demand_paging.pin.txt", *key.split())) for key in
           ("tmpfs pinned", "tmpfs odp", "fsdax odp", "devdax pinned")}
    r = ratio(pin["tmpfs odp"], pin["tmpfs pinned"])
    add("pin + register 256 MiB tmpfs, ODP / pinned", ms(pin["tmpfs odp"]), ms(pin["tmpfs pinned"]), r3(r), "≤ 0.10",
        None if r is None else r <= 0.10)
    r = ratio(pin["fsdax odp"], pin["tmpfs pinned"])
    add("pin + register 256 MiB ext4-dax (MAP_SYNC), ODP / tmpfs pinned (fs-dax cannot be pinned)",
        ms(pin["fsdax odp"]), ms(pin["tmpfs pinned"]), r3(r), "≤ 0.10", None if r is None else r <= 0.10)
    r = ratio(pin["fsdax odp"], pin["devdax pinned"])
    add("pin + register 256 MiB, ext4-dax ODP / device-dax pinned", ms(pin["fsdax odp"]), ms(pin["devdax pinned"]),
        r3(r), "context", None)
    for which in ("first", "second"):
        o = median(labelled("on_demand_paging.touch.txt", "odp", which))
        p = median(labelled("on_demand_paging.touch.txt", "pinned", which))
        add(f"{which} pass of 4 KiB WRITEs over 16 MiB (rxe3, path MTU 4096), ODP / pinned", ms(o), ms(p), r3(ratio(o, p)),
            "context (first touch: ODP faults every page in)" if which == "first" else "context", None)
    for which in ("first", "second"):
        with_prefetch = median(labelled("on_demand_paging.touch.txt", "odp", which))
        without = median(labelled("on_demand_paging.touch.txt", "odp-noprefetch", which))
        if with_prefetch is not None and without is not None:
            mapped = [line.split() for line in (read("on_demand_paging.touch.txt") or "").splitlines() if " mapped " in line]
            shown = ", ".join(f"{v} {min(int(f[2]) for f in mapped if f[0] == v)}-{max(int(f[2]) for f in mapped if f[0] == v)}"
                              f"/{mapped[0][3]} pages mapped after the pin"
                              for v in ("odp", "odp-noprefetch") if any(f[0] == v for f in mapped))
            add(f"{which} pass of 4 KiB WRITEs over 16 MiB, ODP prefetched at pin / not prefetched", ms(with_prefetch), ms(without),
                r3(ratio(with_prefetch, without)), f"context ({shown})", None)
    d, o = median(plain_numbers("odp_rev.daxpin.1.txt")), median(plain_numbers("odp_rev.daxpin-odp.1.txt"))
    add("revocation latency, 1 region, ODP / pinned", us(o), us(d), r3(ratio(o, d)), "context", None)
    for device in sorted({line.split()[0] for line in (read("on_demand_paging.check.txt") or "").splitlines() if line.strip()}):
        lines = [line.split() for line in (read("on_demand_paging.check.txt") or "").splitlines() if line.startswith(device + " ")]
        seconds = median([float(fields[2]) for fields in lines])
        verdicts = sorted({fields[3] for fields in lines})
        add(f"DaxPin's ODP check on {device}, first pin of a fresh process ({len(lines)} processes)", ms(seconds), "-",
            "-", f"verdict: {', '.join(verdicts)}", None)

pending = read("durable_flush.pending")
if pending:
    rows.append(f"| durable 4 KiB writes with RDMA FLUSH | - | - | - | - | not measured: {pending.strip()} |")
elif plain_numbers("durable.daxpin-flush.txt"):
    f = median(plain_numbers("durable.daxpin-flush.txt"))
    for other, name, target in (("rpma", "librpma (rpma_write + rpma_flush)", "≥ 1.0"),
                                ("daxpin", "DaxPin read after write", "context")):
        o = median(plain_numbers(f"durable.{other}.txt"))
        r = ratio(f, o)
        add(f"durable 4 KiB writes, queue depth 1, device-dax: DaxPin native FLUSH / {name} (separate processes)",
            "-" if f is None else f"{f / 1048576:.2f} MiB/s", "-" if o is None else f"{o / 1048576:.2f} MiB/s", r3(r), target,
            None if target == "context" or r is None else r >= 1.0)

md = [
    "# Benchmarks on the newest kernel",
    "",
    f"Generated by `Scripts/bench` from its boot of the newest Debian kernel (raw series in `raw-newest/`).",
    f"Kernel {environment.get('kernel', '?')}, CPU {environment.get('cpu', '?')}, {environment.get('cpus', '?')} vCPUs.",
    "Ratios of medians measured side by side in one boot; the testbed is emulated (TCG), so absolute",
    "numbers mean nothing. rxe's On-Demand Paging fails DaxPin's check on this kernel, so the ODP rows",
    "pass over it (testing only) and write page-aligned 4 KiB blocks at path MTU 4096, which land right.",
    "",
    "| metric | DaxPin | against | ratio | target | verdict |",
    "|---|---|---|---|---|---|",
    *rows,
    "",
]
open(os.path.join(results, "newest-kernel.md"), "w").write("\n".join(md))
print("\n".join(md))
