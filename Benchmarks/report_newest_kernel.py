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

import benchtargets

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


environment = benchtargets.read_environment(raw)
declared = benchtargets.Declarations("newest-kernel")
rows, judged = [], []


def add(row_id, a, b, result, metric=None, verdict=None, target=None):
    row = declared.row(row_id)
    judged.append((row.get("label", row_id), result))
    rows.append(f"| {row_id} | {metric or row['metric']} | {a} | {b} | {result.ratio_text()} | {result.interval_text()} | "
                f"{target or declared.target_text(row_id)} | {verdict or result.verdict} |")


def not_measured(row_ids, why):
    for row_id in row_ids:
        add(row_id, "-", "-", declared.measure(row_id, a=[], b=[]), verdict=f"not measured: {why}")


tails = []
for n in (1, 16, 64):
    ds, cs = plain_numbers(f"revocation.daxpin.{n}.txt"), plain_numbers(f"revocation.c.{n}.txt")
    add(f"nk-rev-{n}", us(median(ds)), us(median(cs)), declared.measure(f"nk-rev-{n}", a=ds, b=cs))
    for samples, side in ((ds, "DaxPin"), (cs, "raw C")):
        tails.append(benchtargets.tail_row(declared.row("nk-tail-revocation")["id"],
                                           f"revocation, {n} region{'s' if n > 1 else ''}", side, samples))

pending = read("on_demand_paging.pending")
if pending:
    not_measured(("nk-odp-tmpfs", "nk-odp-fsdax"), pending.strip())
else:
    pin = {key: labelled("on_demand_paging.pin.txt", *key.split()) for key in
           ("tmpfs pinned", "tmpfs odp", "fsdax odp", "fsdax odp-prefetch", "devdax pinned")}
    m = {key: median(v) for key, v in pin.items()}
    add("nk-odp-tmpfs", ms(m["tmpfs odp"]), ms(m["tmpfs pinned"]), declared.measure("nk-odp-tmpfs", a=pin["tmpfs odp"], b=pin["tmpfs pinned"]))
    add("nk-odp-fsdax", ms(m["fsdax odp"]), ms(m["tmpfs pinned"]), declared.measure("nk-odp-fsdax", a=pin["fsdax odp"], b=pin["tmpfs pinned"]))
    add("nk-odp-fsdax-devdax", ms(m["fsdax odp"]), ms(m["devdax pinned"]),
        declared.measure("nk-odp-fsdax-devdax", a=pin["fsdax odp"], b=pin["devdax pinned"]))
    if m["fsdax odp-prefetch"] is not None:
        add("nk-odp-prefetch-pin", ms(m["fsdax odp-prefetch"]), ms(m["fsdax odp"]),
            declared.measure("nk-odp-prefetch-pin", a=pin["fsdax odp-prefetch"], b=pin["fsdax odp"]))
    for which in ("first", "second"):
        o, p = labelled("on_demand_paging.touch.txt", "odp", which), labelled("on_demand_paging.touch.txt", "pinned", which)
        add(f"nk-touch-{which}", ms(median(o)), ms(median(p)), declared.measure(f"nk-touch-{which}", a=o, b=p))
    for which in ("first", "second"):
        with_prefetch = labelled("on_demand_paging.touch.txt", "odp", which)
        without = labelled("on_demand_paging.touch.txt", "odp-noprefetch", which)
        if with_prefetch and without:
            mapped = [line.split() for line in (read("on_demand_paging.touch.txt") or "").splitlines() if " mapped " in line]
            shown = ", ".join(f"{v} {min(int(f[2]) for f in mapped if f[0] == v)}-{max(int(f[2]) for f in mapped if f[0] == v)}"
                              f"/{mapped[0][3]} pages mapped after the pin"
                              for v in ("odp", "odp-noprefetch") if any(f[0] == v for f in mapped))
            add(f"nk-prefetch-{which}", ms(median(with_prefetch)), ms(median(without)),
                declared.measure(f"nk-prefetch-{which}", a=with_prefetch, b=without),
                metric=declared.row(f"nk-prefetch-{which}")["metric"] + (f" ({shown})" if shown else ""))
    d, o = plain_numbers("odp_rev.daxpin.1.txt"), plain_numbers("odp_rev.daxpin-odp.1.txt")
    add("nk-odp-revocation", us(median(o)), us(median(d)), declared.measure("nk-odp-revocation", a=o, b=d))
    for device in sorted({line.split()[0] for line in (read("on_demand_paging.check.txt") or "").splitlines() if line.strip()}):
        lines = [line.split() for line in (read("on_demand_paging.check.txt") or "").splitlines() if line.startswith(device + " ")]
        samples = [float(fields[2]) * 1e3 for fields in lines]
        verdicts = sorted({fields[3] for fields in lines})
        add("nk-odp-check", ms(median(samples) / 1e3), "-", declared.measure("nk-odp-check", samples=samples),
            metric=f"DaxPin's ODP check on {device}, first pin of a fresh process ({len(lines)} processes), in ms; "
                   f"its verdict: {', '.join(verdicts)}")

pending = read("durable_flush.pending")
if pending:
    not_measured(("nk-flush-c", "nk-flush-rpma"), pending.strip())
else:
    # DaxPinBench flush-paired: "<round> DAXPIN|C <bytes/s of a batch>", the pairs in order per round.
    paired = {}
    for line in (read("durable_flush.paired.txt") or "").splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in ("DAXPIN", "C", "DAXPIN_BLOCK", "C_BLOCK"):
            paired.setdefault((fields[0], fields[1]), []).append(float(fields[2]))
    for label, side in (("DAXPIN_BLOCK", "DaxPin"), ("C_BLOCK", "raw-verbs C")):
        tails.append(benchtargets.tail_row(declared.row("nk-tail-flush")["id"], "durable 4 KiB WRITE + FLUSH", side,
                                           [v for key, values in sorted(paired.items()) if key[1] == label for v in values]))
    pairs, round_ratios = [], []
    for rnd in sorted({key[0] for key in paired}, key=int):
        d, c = paired.get((rnd, "DAXPIN"), []), paired.get((rnd, "C"), [])
        pairs += list(zip(d, c))
        round_ratios.append(median([x / y for x, y in zip(d, c) if y]))
    if pairs:
        d, c = median([x for x, _ in pairs]), median([y for _, y in pairs])
        per_round = ", ".join("n/a" if r is None else f"{r:.3f}" for r in round_ratios)
        add("nk-flush-c", f"{d / 1048576:.2f} MiB/s", f"{c / 1048576:.2f} MiB/s", declared.measure("nk-flush-c", pairs=pairs),
            metric=declared.row("nk-flush-c")["metric"] + f" ({len(pairs)} batch pairs; per round: {per_round})")
    elif plain_numbers("durable.daxpin-flush.txt"):
        not_measured(("nk-flush-c",), "no durable_flush.paired.txt (a run from before the paired FLUSH row)")
if not pending and plain_numbers("durable.daxpin-flush.txt"):
    fs = plain_numbers("durable.daxpin-flush.txt")
    for row_id, other in (("nk-flush-rpma", "rpma"), ("nk-flush-raw", "daxpin")):
        os_ = plain_numbers(f"durable.{other}.txt")
        f, o = median(fs), median(os_)
        add(row_id, "-" if f is None else f"{f / 1048576:.2f} MiB/s", "-" if o is None else f"{o / 1048576:.2f} MiB/s",
            declared.measure(row_id, a=fs, b=os_))

left_off = benchtargets.chart(os.path.join(results, "newest-kernel.png"),
                              "Newest kernel: DaxPin against its peers (one testbed boot; emulated: ratios only)", judged)
md = [
    "# Benchmarks on the newest kernel",
    "",
    "Generated by `Scripts/bench` (`Benchmarks/report_newest_kernel.py`) from its boot of the newest Debian kernel",
    "(raw series in `raw-newest/`).",
    "",
    *benchtargets.header_lines(environment, [f"- CPU: {environment.get('cpu', '?')}, {environment.get('cpus', '?')} vCPUs"]),
    "",
    "Measured side by side in one boot; the testbed is emulated (TCG), so absolute numbers mean nothing.",
    "Every row, its estimator, interval, direction and threshold are declared in `Benchmarks/targets.json`.",
    "Verdict: met when the whole interval is on the right side of the threshold, missed when wholly on the",
    "wrong side, inconclusive otherwise. rxe's On-Demand Paging fails DaxPin's check on this kernel, so the ODP",
    "rows pass over it (testing only) and write page-aligned 4 KiB blocks at path MTU 4096, which land right.",
    "The native FLUSH row is paired: DaxPin's client and a raw-verbs C client (peers/flush_durable.c, the same",
    "WRITE + FLUSH batch and completion wait, the same rdma-core) in one process, alternating batches against one",
    "daxpin-server export on device-dax. librpma 1.2 has no native FLUSH (WRITE, then an 8-byte READ): its row is",
    "context, as separate processes.",
    "",
    "| id | metric | DaxPin | against | ratio | interval | target | verdict |",
    "|---|---|---|---|---|---|---|---|",
    *rows,
    "",
    "![ratios: above 1 is better for DaxPin](newest-kernel.png)",
    "",
    "The chart puts every row with a ratio on one axis where above 1 means DaxPin (the first side of the row) is",
    "better (the other side / DaxPin for lower-is-better rows): dot the estimate coloured by its verdict, whiskers",
    "the declared interval, black dash the threshold." + (f" Not on it (not ratios): {', '.join(left_off)}." if left_off else ""),
    "",
    "## Tails",
    "",
    "Percentiles of every recorded sample, DaxPin and its peer side by side: revocation, each break's blocked",
    "`truncate()`; native FLUSH, each block of the paired run, timed from the end of the block before. A percentile",
    "the sample count cannot support (p99 below 100 samples, p99.9 below 1,000) is n/a.",
    "",
    *((benchtargets.TAIL_TABLE + [t for t in tails if t]) if any(tails) else ["No samples: the suites did not run."]),
    "",
]
open(os.path.join(results, "newest-kernel.md"), "w").write("\n".join(md))
print("\n".join(md))
