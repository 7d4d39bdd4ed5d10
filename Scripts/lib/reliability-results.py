#!/usr/bin/env python3
"""Writes a generated reliability results file from a Scripts/reliability log, with the commit,
the date, each testbed kernel and the counts the run printed (issue 30 item 8: figures come from a
run at a named commit, never typed into an article).

usage: reliability-results.py soak|trials LOG OUT_MD
"""
import datetime
import re
import subprocess
import sys

mode, log_path, out = sys.argv[1:4]
log = open(log_path, errors="replace").read().splitlines()


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()


# The commit the measured binaries were built from: Scripts/reliability logs it before it builds
# ("== built at <commit>[ (with uncommitted changes)]"); the tree may have moved on by now.
built = next((m.group(1) for m in (re.match(r"^== built at (.+)$", line) for line in log) if m), None)
commit = built or git("rev-parse", "HEAD")
dirty = "" if built else (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")

rows, where = [], "host"
for line in log:
    section = re.match(r"^== (?:soak|reliability) in the testbed, (\w+) kernel", line)
    if section:
        where = f"testbed, {section.group(1)} kernel"
        continue
    if re.match(r"^== soak on the host", line):
        where = "host"
        continue
    kernel = re.match(r"^(?:guest kernel )?(\d+\.\d+\S*)$", line.strip())
    if kernel and where.startswith("testbed"):
        where = re.sub(r" \(Linux [^)]*\)$", "", where) + f" (Linux {kernel.group(1)})"
        continue
    if mode == "soak" and line.startswith("soak:"):
        rows.append((where, line[len("soak:"):].strip()))
    elif mode == "trials" and re.match(r"^(fault trials|kill -9 trials|1000 leases)", line):
        rows.append((where, line.strip()))
    elif mode == "trials" and re.search(r"Test run with \d+ tests.*(passed|failed)", line):
        rows.append((where, re.sub(r"^\W+", "", line.strip())))

# A run of some kernels only (DAXPIN_SOAK_KERNELS, DAXPIN_RELIABILITY_KERNELS) keeps the earlier
# file's rows for the places it did not measure, each with the commit and date it came from.
short = commit[:10]
rows = [(w, r, f"{short}, {date}") for w, r in rows]
measured = {re.sub(r" \(Linux [^)]*\)$", "", w) for w, _, _ in rows}
try:
    earlier = open(out).read().splitlines()
except FileNotFoundError:
    earlier = []
earlier_commit = next((l[len("- commit: "):].split()[0][:10] for l in earlier if l.startswith("- commit: ")), "?")
earlier_date = next((l[len("- date: "):] for l in earlier if l.startswith("- date: ")), "?")
kept = []
for line in earlier:
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")] if line.startswith("| ") else []
    if len(cells) < 2 or cells[0] in ("where", "---"):
        continue
    if re.sub(r" \(Linux [^)]*\)$", "", cells[0]) not in measured:
        kept.append((cells[0], cells[1], cells[2] if len(cells) > 2 else f"{earlier_commit}, {earlier_date}"))
rows = kept + rows

title = {"soak": "The soak", "trials": "Fault, kill and scale trials"}[mode]
command = {"soak": "Scripts/reliability --soak", "trials": "Scripts/reliability"}[mode]
md = [f"# {title}: generated results", "",
      f"Written by `{command}` from its log; the method is in the Reliability article of the DocC catalog.",
      "", f"- commit: {commit}{dirty}", f"- date: {date}",
      "- testbed: QEMU TCG software emulation (no KVM), 2 vCPUs", "",
      "Each row names the commit and date of the run it comes from: a run of some kernels only keeps",
      "the earlier rows of the others.", "",
      "| where | result | measured at |", "|---|---|---|",
      *[f"| {w} | {r.replace('|', '/')} | {m} |" for w, r, m in rows], ""]
if not rows:
    md.insert(-1, "No counts were found in the log: the run failed before printing any.")
open(out, "w").write("\n".join(md))
print("\n".join(md))
