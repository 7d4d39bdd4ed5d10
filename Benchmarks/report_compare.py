#!/usr/bin/env python3
"""Turns Scripts/bench-compare's raw results (suites/compare.sh, one directory per testbed
kernel) into Benchmarks/results/before-after.md: per gated row, each build's ratio to its peer
against the row's target (the targets of report.py) and HEAD's ratio over BASE's.

usage: report_compare.py OUT_MD COMMAND BASE_LABEL HEAD_LABEL RAW_DIR...  (RAW_DIR named by kernel)"""
import os, re, statistics, sys

out_md, command, base_label, head_label, raw_dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
median = lambda v: statistics.median(v) if v else None


def read(raw, name):
    path = os.path.join(raw, name)
    return open(path).read() if os.path.exists(path) else ""


def processes(raw, name):
    """The breaks of each holder process (one per round), in order: a process starts at its "# warm-up" line."""
    runs = []
    for line in read(raw, name).splitlines():
        if line.startswith("# warm-up"):
            runs.append([])
        elif re.fullmatch(r"[0-9]+", line.strip()) and runs:
            runs[-1].append(float(line))
    return runs


def labelled(raw, name):
    """{label tuple: [values]} of DaxPinBench's paired output lines ("LABEL... VALUE")."""
    series = {}
    for line in read(raw, name).splitlines():
        f = line.split()
        if len(f) >= 2 and re.fullmatch(r"[0-9.e-]+", f[-1]):
            series.setdefault(tuple(f[:-1]), []).append(float(f[-1]))
    return series


def rounds(raw, prefix):
    n = 1
    while os.path.exists(os.path.join(raw, f"{prefix}.{n}.txt")):
        n += 1
    return range(1, n)


def spread(values):
    """The middle half of the per-round HEAD/BASE ratios: how much two adjacent runs differ anyway."""
    values = [v for v in values if v]
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=4, method="inclusive")
    return f"{q[0]:.3f}–{q[2]:.3f} ({len(values)} rounds)"


def r3(x):
    return "n/a" if x is None else f"{x:.3f}"


def verdict(r, target):
    if r is None:
        return "n/a"
    ok = r <= target[1] if target[0] == "≤" else r >= target[1]
    return f"{r:.3f} {'met' if ok else '**MISSED**'}"


def row(metric, unit, base, head, rb, rh, per_round, target):
    """base/head: each build's own figure; rb/rh: each build's ratio to the peer; HEAD/BASE is rh / rb."""
    hb = rh / rb if rb and rh else None
    fig = lambda x: "n/a" if x is None else f"{x:.2f} {unit}"
    return (f"| {metric} | {fig(base)} | {fig(head)} | {verdict(rb, target)} | {verdict(rh, target)} | "
            f"{target[0]} {target[1]:.2f} | {r3(hb)} | {spread(per_round)} |")


def kernel_section(raw):
    env = dict(l.split(None, 1) for l in read(raw, "environment.txt").splitlines() if " " in l)
    lines = [f"## {os.path.basename(raw)} kernel: {env.get('kernel', '?')}", "",
             "| row | BASE | HEAD | BASE / peer | HEAD / peer | target | HEAD / BASE | HEAD / BASE per round, middle half |",
             "|---|---|---|---|---|---|---|---|"]
    # Revocation: time truncate() stays blocked; the C holder's series is shared by both builds.
    for n in (1, 16, 64):
        b, h, c = (processes(raw, f"revocation{p}.{n}.txt") for p in (".base.daxpin", ".head.daxpin", ".c"))
        mb, mh, mc = (median([x for run in s for x in run]) for s in (b, h, c))
        per_round = [median(y) / median(x) for x, y in zip(b, h) if x and y]
        lines.append(row(f"revocation, {n} region{'s' if n > 1 else ''} (vs raw C holder)", "µs",
                         mb and mb / 1e3, mh and mh / 1e3, mb and mc and mb / mc, mh and mc and mh / mc,
                         per_round, ("≤", 1.10)))
    # Pin + register 256 MiB, paired in one process: throughput ratio = median over iterations of peer time / DaxPin time.
    GIB = 256 / 1024
    runs = {k: [labelled(raw, f"pin.paired.{k}.{i}.txt") for i in rounds(raw, f"pin.paired.{k}")] for k in ("base", "head")}
    for medium, label in (("tmpfs", "tmpfs"), ("devdax", "device-dax")):
        for peer, peer_name, target in (("RAW", "raw C", ("≥", 0.95)), ("RPMA", "librpma", ("≥", 1.00))):
            def ratio(series_list):
                d = [x for s in series_list for x in s.get((medium, "DAXPIN"), [])]
                p = [x for s in series_list for x in s.get((medium, peer), [])]
                return median([pp / dd for dd, pp in zip(d, p) if dd > 0])
            def gibs(series_list):
                m = median([x for s in series_list for x in s.get((medium, "DAXPIN"), [])])
                return m and GIB / m
            rb, rh = ratio(runs["base"]), ratio(runs["head"])
            per_round = [ratio([y]) / ratio([x]) for x, y in zip(runs["base"], runs["head"]) if ratio([x]) and ratio([y])]
            lines.append(row(f"pin + register 256 MiB, {label}, paired (vs {peer_name})", "GiB/s",
                             gibs(runs["base"]), gibs(runs["head"]), rb, rh, per_round, target))
    # 64 B RDMA WRITE, paired in one process. A build's ratio is the median of its processes' own
    # DaxPin / C (report.py divides the medians of the rounds' medians instead): on 7.2 a process's
    # ratio is near 1.05 or near 1.35 for either build, and a slow spell can triple both series of one
    # process; the per-process ratio is what the pairing protects from both.
    lat = {}
    for k in ("base", "head"):
        meds = [labelled(raw, f"write_lat.paired.{k}.{i}.txt") for i in rounds(raw, f"write_lat.paired.{k}")]
        lat[k] = [(median(s.get(("DAXPIN",), [])), median(s.get(("C",), []))) for s in meds]
    build = {k: (median([d for d, _ in v if d]), median([c for _, c in v if c])) for k, v in lat.items()}
    rb, rh = (median([d / c for d, c in lat[k] if d and c]) for k in ("base", "head"))
    per_round = [(h[0] / h[1]) / (b[0] / b[1]) for b, h in zip(lat["base"], lat["head"]) if all(b) and all(h)]
    lines.append(row("64 B RDMA WRITE latency, paired (vs raw verbs C)", "µs",
                     build["base"][0] and build["base"][0] / 1e3, build["head"][0] and build["head"][0] / 1e3,
                     rb, rh, per_round, ("≤", 1.20)))
    counts = read(raw, "compare.rounds.txt").split()
    if len(counts) == 5:
        lines += ["", f"Revocation: {counts[0]} rounds, each one holder process per build and one C holder per region "
                  f"count, {counts[1]} breaks each after a warm-up. Pin: {counts[2]} round(s) of {counts[3]} iterations "
                  f"per medium and build. 64 B WRITE: {counts[4]} round(s) of 5000 writes per build."]
    lines += ["", "Suites: " + ", ".join(read(raw, "suites.txt").split("\n")).strip(", "), ""]
    return lines


md = ["# Before and after: BASE against HEAD in one testbed boot per kernel", "",
      "Written by `Scripts/bench-compare`:", "", "```", command, "```", "",
      f"- BASE: {base_label}", f"- HEAD: {head_label}",
      f"- emulated: {os.environ.get('DAXPIN_BENCH_ACCEL', 'unknown')}", "",
      "The testbed is emulated: only ratios are claims. Rounds alternate the two builds so that the "
      "emulator's drift falls on both. A build's ratio to its peer is the gated figure of "
      "`Benchmarks/results/latest.md` (same target); HEAD / BASE is HEAD's ratio divided by BASE's, "
      "in the direction of the target (revocation and write latency: below 1 is faster; pin throughput: "
      "above 1 is faster). The last column is the middle half of the per-round HEAD / BASE ratios "
      "(adjacent runs of the two builds): how much that ratio moves from round to round, the scale "
      "against which a HEAD / BASE away from 1 is a change or noise. "
      "The BASE and HEAD columns are each build's own medians (absolute numbers, no claims).", ""]
for raw in raw_dirs:
    md += kernel_section(raw)
open(out_md, "w").write("\n".join(md))
print("\n".join(md))
