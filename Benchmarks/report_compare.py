#!/usr/bin/env python3
"""Turns Scripts/bench-compare's raw results (suites/compare.sh, one directory per testbed
kernel) into Benchmarks/results/before-after.md and before-after.png: per row, each build's ratio to
its peer judged against the row's declaration in Benchmarks/targets.json (report "before-after"), and
HEAD's ratio over BASE's per round: a change is shown only when 1.0 lies outside the interquartile
range of the per-round HEAD / BASE ratios.

usage: report_compare.py OUT_MD COMMAND BASE_LABEL HEAD_LABEL RAW_DIR...  (RAW_DIR named by kernel)"""
import os, re, statistics, sys

import benchtargets

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


declared = benchtargets.Declarations("before-after")
CHANGE_COLOURS = {"HEAD better": 0x1A9850, "HEAD worse": 0xD73027, "no change shown": 0x8C8C8C}


def change(row_id, per_round):
    """(HEAD / BASE median, IQR low, high, verdict) of the per-round HEAD / BASE ratios: a change only
    when 1.0 lies outside the IQR; better or worse by the row's direction."""
    values = [v for v in per_round if v]
    if len(values) < 2:
        return None, None, None, "n/a (fewer than 2 rounds)"
    low, high = benchtargets.iqr(values)
    if low <= 1.0 <= high:
        return statistics.median(values), low, high, "no change shown"
    faster = high < 1.0   # HEAD / BASE below 1
    better = faster if declared.row(row_id)["direction"] == "lower" else not faster
    return statistics.median(values), low, high, "HEAD better" if better else "HEAD worse"


def r3(x):
    return "n/a" if x is None else f"{x:.3f}"


def judged(result):
    return f"{result.ratio_text()} [{result.interval_text()}] {result.verdict}"


def row(row_id, unit, base, head, rb, rh, per_round, chart):
    """base/head: each build's own figure; rb/rh: each build's Result against its peer; per_round: HEAD / BASE."""
    fig = lambda x: "n/a" if x is None else f"{x:.2f} {unit}"
    hb, low, high, verdict = change(row_id, per_round)
    label = declared.row(row_id).get("label", row_id)
    chart["top"] += [(f"{label} BASE", rb), (f"{label} HEAD", rh)]
    flip = declared.row(row_id)["direction"] == "lower"
    o = lambda v: None if v is None else (1 / v if flip else v)
    chart["bottom"].append((label, o(hb), o(high) if flip else o(low), o(low) if flip else o(high),
                            CHANGE_COLOURS.get(verdict, CHANGE_COLOURS["no change shown"])))
    interval = "n/a" if low is None else f"{low:.3f} – {high:.3f} ({len([v for v in per_round if v])} rounds)"
    return (f"| {row_id} | {declared.row(row_id)['metric']} | {fig(base)} | {fig(head)} | {judged(rb)} | {judged(rh)} | "
            f"{declared.target_text(row_id)} | {r3(hb)} | {interval} | {verdict} |")


def kernel_section(raw):
    env = dict(l.split(None, 1) for l in read(raw, "environment.txt").splitlines() if " " in l)
    chart = {"top": [], "bottom": []}
    lines = [f"## {os.path.basename(raw)} kernel: {env.get('kernel', '?')}", "",
             *benchtargets.header_lines(benchtargets.read_environment(raw)), "",
             "| id | row | BASE | HEAD | BASE / peer [interval] verdict | HEAD / peer [interval] verdict | target | "
             "HEAD / BASE (median of rounds) | HEAD / BASE per round, IQR | change |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    # Revocation: time truncate() stays blocked; the C holder's series is shared by both builds.
    for n in (1, 16, 64):
        b, h, c = (processes(raw, f"revocation{p}.{n}.txt") for p in (".base.daxpin", ".head.daxpin", ".c"))
        fb, fh, fc = ([x for run in s for x in run] for s in (b, h, c))
        mb, mh = median(fb), median(fh)
        per_round = [median(y) / median(x) for x, y in zip(b, h) if x and y]
        rid = f"ba-rev-{n}"
        lines.append(row(rid, "µs", mb and mb / 1e3, mh and mh / 1e3, declared.measure(rid, a=fb, b=fc),
                         declared.measure(rid, a=fh, b=fc), per_round, chart))
    # Pin + register 256 MiB, paired in one process: throughput ratio = median over iterations of peer time / DaxPin time.
    GIB = 256 / 1024
    runs = {k: [labelled(raw, f"pin.paired.{k}.{i}.txt") for i in rounds(raw, f"pin.paired.{k}")] for k in ("base", "head")}
    for medium, label in (("tmpfs", "tmpfs"), ("devdax", "device-dax")):
        for peer, rid in (("RAW", f"ba-pin-{medium}-c"), ("RPMA", f"ba-pin-{medium}-rpma")):
            def ratio(series_list):
                d = [x for s in series_list for x in s.get((medium, "DAXPIN"), [])]
                p = [x for s in series_list for x in s.get((medium, peer), [])]
                return median([pp / dd for dd, pp in zip(d, p) if dd > 0])
            def gibs(series_list):
                m = median([x for s in series_list for x in s.get((medium, "DAXPIN"), [])])
                return m and GIB / m
            def pairs(series_list):   # (peer time, DaxPin time): the throughput ratio of an iteration
                return [(pp, dd) for s in series_list for dd, pp in zip(s.get((medium, "DAXPIN"), []), s.get((medium, peer), []))]
            per_round = [ratio([y]) / ratio([x]) for x, y in zip(runs["base"], runs["head"]) if ratio([x]) and ratio([y])]
            lines.append(row(rid, "GiB/s", gibs(runs["base"]), gibs(runs["head"]),
                             declared.measure(rid, pairs=pairs(runs["base"])), declared.measure(rid, pairs=pairs(runs["head"])),
                             per_round, chart))
    # 64 B RDMA WRITE, paired in one process. A build's ratio is the median of its processes' own
    # DaxPin / C (report.py divides the medians of the rounds' medians instead): on 7.2 a process's
    # ratio is near 1.05 or near 1.35 for either build, and a slow spell can triple both series of one
    # process; the per-process ratio is what the pairing protects from both.
    lat = {}
    for k in ("base", "head"):
        meds = [labelled(raw, f"write_lat.paired.{k}.{i}.txt") for i in rounds(raw, f"write_lat.paired.{k}")]
        lat[k] = [(median(s.get(("DAXPIN",), [])), median(s.get(("C",), []))) for s in meds]
    build = {k: (median([d for d, _ in v if d]), median([c for _, c in v if c])) for k, v in lat.items()}
    per_round = [(h[0] / h[1]) / (b[0] / b[1]) for b, h in zip(lat["base"], lat["head"]) if all(b) and all(h)]
    lines.append(row("ba-write64", "µs",
                     build["base"][0] and build["base"][0] / 1e3, build["head"][0] and build["head"][0] / 1e3,
                     declared.measure("ba-write64", rounds=lat["base"]), declared.measure("ba-write64", rounds=lat["head"]),
                     per_round, chart))
    counts = read(raw, "compare.rounds.txt").split()
    if len(counts) == 5:
        lines += ["", f"Revocation: {counts[0]} rounds, each one holder process per build and one C holder per region "
                  f"count, {counts[1]} breaks each after a warm-up. Pin: {counts[2]} round(s) of {counts[3]} iterations "
                  f"per medium and build. 64 B WRITE: {counts[4]} round(s) of 5000 writes per build."]
    lines += ["", "Suites: " + ", ".join(read(raw, "suites.txt").split("\n")).strip(", "), ""]
    png = os.path.join(os.path.dirname(os.path.abspath(out_md)), f"before-after.{os.path.basename(raw)}.png")
    if benchtargets.two_panel_chart(
            png, f"{os.path.basename(raw)} kernel: each build against its peer (above 1: better for DaxPin)",
            chart["top"], chart["bottom"], "better for DaxPin →  (peer / build for lower-is-better rows)",
            "HEAD better →  (BASE / HEAD for lower-is-better rows)", CHANGE_COLOURS) is not None:
        lines += [f"![{os.path.basename(raw)} kernel](before-after.{os.path.basename(raw)}.png)", "",
                  "Top: each build's ratio to its peer on an axis where above 1 is better for DaxPin, dot coloured by "
                  "its verdict, whiskers the declared interval, black dash the threshold. Bottom: HEAD / BASE on an "
                  "axis where above 1 is better for HEAD, whiskers the IQR of the per-round ratios, green or red when "
                  "1.0 lies outside them.", ""]
    return lines


md = ["# Before and after: BASE against HEAD in one testbed boot per kernel", "",
      "Written by `Scripts/bench-compare`:", "", "```", command, "```", "",
      f"- BASE: {base_label}", f"- HEAD: {head_label}",
      f"- emulated: {os.environ.get('DAXPIN_BENCH_ACCEL', 'unknown')}", "",
      "The testbed is emulated: only ratios are claims. Rounds alternate the two builds so that the "
      "emulator's drift falls on both. Each row is declared in `Benchmarks/targets.json` (report "
      "`before-after`): a build's ratio to its peer is judged as in `latest.md`, met or missed only when "
      "the whole declared interval lies on one side of the threshold, inconclusive otherwise. HEAD / BASE "
      "is taken per round (adjacent runs of the two builds; revocation and write latency: below 1 is "
      "faster; pin throughput: above 1 is faster). **The change rule:** a row shows a change only when "
      "1.0 lies outside the interquartile range of its per-round HEAD / BASE ratios; when 1.0 lies inside, "
      "the rounds do not tell HEAD from BASE. (Asking whether the overall HEAD / BASE lies outside that "
      "range, the rule this report used before, can never flag anything: the median of the per-round "
      "ratios lies inside their IQR by construction.) "
      "The BASE and HEAD columns are each build's own medians (absolute numbers, no claims).", ""]
for raw in raw_dirs:
    md += kernel_section(raw)
open(out_md, "w").write("\n".join(md))
print("\n".join(md))
