#!/usr/bin/env python3
"""Turns the raw results of Benchmarks/run-in-testbed into Benchmarks/results/latest.md
(id, metric, DaxPin, peer, ratio, interval, target, verdict + environment) and latest.png (gnuplot).
Every row is declared in Benchmarks/targets.json (estimator, interval, direction, threshold); a row
that is not declared there stops the report. Only ratios are claims: the testbed is emulated.

usage: report.py RAW_DIR RESULTS_DIR"""
import glob, os, re, statistics, sys

import benchtargets

raw, results = sys.argv[1], sys.argv[2]
os.makedirs(results, exist_ok=True)
rows, notes = [], []
declared = benchtargets.Declarations("latest")
judged = []   # (chart label, Result) in table order


def read(name):
    path = os.path.join(raw, name)
    return open(path).read() if os.path.exists(path) else None


def numbers(name, drop_first=True):
    text = read(name)
    if text is None:
        return []
    values = [float(line) for line in text.splitlines() if re.fullmatch(r"[0-9.]+", line.strip())]
    return values[1:] if drop_first and len(values) > 1 else values


def median(values):
    return statistics.median(values) if values else None


def add(row_id, daxpin, peer, result, peer_name="", metric=None, verdict=None):
    """A table row: its metric, target and verdict from the row's declaration and RESULT (its
    declared estimator and interval over the data, benchtargets.Declarations.measure)."""
    row = declared.row(row_id)
    judged.append((row.get("label", row_id), result))
    rows.append((row_id, metric or row["metric"], daxpin, peer if not peer_name else f"{peer} ({peer_name})",
                 result.ratio_text(), result.interval_text(), declared.target_text(row_id), verdict or result.verdict))


def fmt(value, unit, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def ratio_text(r):
    # Three decimals: a ratio just over its line (1.201 against ≤ 1.20) must not read as on it.
    return "n/a" if r is None else f"{r:.3f}"


# --- revocation latency ------------------------------------------------------------
for n in (1, 16, 64):
    ds = numbers(f"revocation.daxpin.{n}.txt", drop_first=False)  # warm-ups are comments already
    cs_ = numbers(f"revocation.c.{n}.txt", drop_first=False)
    d, c = median(ds), median(cs_)
    add(f"rev-{n}", fmt(d and d / 1e3, "µs"), fmt(c and c / 1e3, "µs"),
        declared.measure(f"rev-{n}", a=ds, b=cs_), "raw C fcntl + sigwaitinfo")
    if n == 1:
        css = numbers(f"revocation.cswift.{n}.txt", drop_first=False)
        cs = median(css)
        if cs and c:
            add("rev-1-c-in-daxpinbench", fmt(cs / 1e3, "µs"), fmt(c / 1e3, "µs"),
                declared.measure("rev-1-c-in-daxpinbench", a=css, b=cs_), "the same C as its own process")

# Tails of every break (tail-revocation), printed under the main table.
tails = []
for n in (1, 16, 64):
    for kind, side in (("daxpin", "DaxPin"), ("c", "raw C")):
        tails.append(benchtargets.tail_row(declared.row("tail-revocation")["id"], f"revocation, {n} region{'s' if n > 1 else ''}",
                                           side, numbers(f"revocation.{kind}.{n}.txt", drop_first=False)))

# The same holder without and with a metrics backend (suites/revocation_metrics.sh, when run).
_offs = numbers("revocation-metrics.off.daxpin.16.txt", drop_first=False)
_ons = numbers("revocation-metrics.on.daxpin.16.txt", drop_first=False)
_off, _on = median(_offs), median(_ons)
if _off and _on:
    add("rev-16-metrics", fmt(_on / 1e3, "µs"), fmt(_off / 1e3, "µs"),
        declared.measure("rev-16-metrics", a=_ons, b=_offs), "the same holder without a backend")

# --- pin + register throughput ---------------------------------------------------------
GIB = 256 / 1024  # 256 MiB in GiB


def percentile_file(fragment, directory="package-benchmark"):
    for path in glob.glob(os.path.join(raw, directory, "*.tsv")):
        if fragment in os.path.basename(path):
            return path
    return None


def p50_seconds(fragment, directory="package-benchmark"):
    """p50 of a package-benchmark histogramPercentiles export, in seconds."""
    path = percentile_file(fragment, directory)
    if not path:
        return None
    lines = open(path).read().splitlines()
    unit = re.search(r"\(([^)]*)\)\s*\*?\s*$", lines[0])
    scale = {"ns": 1e-9, "μs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}.get(unit.group(1) if unit else "ns", 1e-9)
    for line in lines[1:]:
        p, value = line.split("\t")
        if p == "50":
            return float(value) * scale
    return None


def round_dirs(directory):
    """DIRECTORY/round.N of the suites that run package-benchmark in rounds, relative to raw."""
    return sorted(os.path.relpath(r, raw) for r in glob.glob(os.path.join(raw, directory, "round.*")))


def labelled_values(name):
    """{(label, ...): [value, ...]} of a file of "LABEL... VALUE" lines (DaxPinBench's paired runs)."""
    series = {}
    for line in (read(name) or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and re.fullmatch(r"[0-9.e-]+", fields[-1]):
            series.setdefault(tuple(fields[:-1]), []).append(float(fields[-1]))
    return series


# One directory per alternating round (pin_register_peers.sh); none in a run from before the rounds.
pin_round_dirs = round_dirs("package-benchmark-pin")
pin_rounds = len(pin_round_dirs)


def pin_p50_seconds(fragment):
    """DaxPin's pin time: the median of the alternating rounds' p50s."""
    values = [v for v in (p50_seconds(f"256MiB_{fragment}", r) for r in pin_round_dirs) if v]
    if values:
        return median(values)
    return p50_seconds(f"256MiB_{fragment}") or p50_seconds(f"256MiB {fragment}")  # a run from before the rounds


def pair_ratios(numerators, denominators):
    """Each pair's ratio, in order (pairs with a zero denominator left out)."""
    return [n / d for n, d in zip(numerators or [], denominators or []) if d > 0]


def paired_ratio(daxpin, peer):
    """DaxPin's throughput over the peer's: the median over iterations of peer time / DaxPin time."""
    return median(pair_ratios(peer, daxpin))


# {(medium, DAXPIN|RAW|RPMA): [seconds per iteration]} of DaxPinBench pin-paired.
paired_pin_runs = labelled_values("pin.paired.txt")
paired_pin = {key: median(values) for key, values in paired_pin_runs.items()}
paired_pin_iterations = max((len(v) for v in paired_pin_runs.values()), default=0)
if paired_pin:
    notes.append(f"Pin + register, the gated rows: DaxPinBench pin-paired runs DaxPin's pin and the C "
                 f"sequences of peers/pin_register.c (built as a shared library) in one process, one of "
                 f"each per iteration in a rotating order, {paired_pin_iterations} iterations per medium after one "
                 "unrecorded each. The throughputs are medians; the ratio is the median over iterations of the "
                 "iteration's ratio, the estimator of a paired design (the runs of an iteration share the "
                 "emulator's spell; a single run on device-dax lands at one of two levels at random). Only "
                 "map + populate + register is timed. The -c and -rpma rows compare each side's best policy: "
                 "the peers do the issue's sequence, mmap with MAP_POPULATE "
                 "on one thread, then register; DaxPin does not populate device-dax (the registration's "
                 "long-term pin faults the huge pages in, writable, once; a populate maps them read-only and the "
                 "pin faults each again) and populates a large tmpfs range on every CPU in 32 MiB or larger "
                 "parts (Sources/DaxPin/Memory/Populate.swift). The -same rows compare like with like: the raw C "
                 "sequence with DaxPin's populate policy (mode same: no MAP_POPULATE, then no populate on "
                 "device-dax and MADV_POPULATE_READ in the same parts on a file). Series measured one after the other met the emulator's "
                 "spells unequally; the separate-process rows (package-benchmark's pin benchmarks, 9 "
                 "iterations after a warm-up, and each peer as its own process, 10 runs with the first dropped) "
                 "are context.")

for medium, fragment in (("tmpfs", "tmpfs"), ("devdax", "device-dax")):
    label = "tmpfs" if medium == "tmpfs" else "device-dax"
    d_rounds = [v for v in (p50_seconds(f"256MiB_{fragment}", r) for r in pin_round_dirs) if v] or \
        [v for v in (p50_seconds(f"256MiB_{fragment}") or p50_seconds(f"256MiB {fragment}"),) if v]
    d = median(d_rounds)
    # With rounds the suite has dropped each run's first (cold) result already.
    c_runs = numbers(f"pin.raw.{medium}.txt", drop_first=not pin_rounds)
    c = median(c_runs)
    if paired_pin:
        pd, pc, pl, ps = (GIB / x if x else None for x in (paired_pin.get((medium, k)) for k in ("DAXPIN", "RAW", "RPMA", "SAME")))
        runs = {k: paired_pin_runs.get((medium, k)) or [] for k in ("DAXPIN", "RAW", "RPMA", "SAME")}
        if runs["SAME"]:
            add(f"pin-{medium}-same", fmt(pd, "GiB/s", 2), fmt(ps, "GiB/s", 2),
                declared.measure(f"pin-{medium}-same", pairs=list(zip(runs["SAME"], runs["DAXPIN"]))),
                "raw C with DaxPin's populate policy")
        else:
            add(f"pin-{medium}-same", "-", "-", declared.measure(f"pin-{medium}-same", pairs=[]),
                "raw C with DaxPin's populate policy", verdict="not measured: a run from before the -same peer")
        # Throughput ratio of an iteration: the peer's time over DaxPin's.
        add(f"pin-{medium}-c", fmt(pd, "GiB/s", 2), fmt(pc, "GiB/s", 2),
            declared.measure(f"pin-{medium}-c", pairs=list(zip(runs["RAW"], runs["DAXPIN"]))), "mmap+populate+ibv_reg_mr")
        add(f"pin-{medium}-rpma", fmt(pd, "GiB/s", 2), fmt(pl, "GiB/s", 2),
            declared.measure(f"pin-{medium}-rpma", pairs=list(zip(runs["RPMA"], runs["DAXPIN"]))), "librpma rpma_mr_reg")
    dg, cg = (GIB / x if x else None for x in (d, c))
    # context: package-benchmark and the peer, each in its own process (throughput ratio: C time / DaxPin time)
    add(f"pin-{medium}-separate", fmt(dg, "GiB/s", 2), fmt(cg, "GiB/s", 2),
        declared.measure(f"pin-{medium}-separate", a=c_runs, b=d_rounds), "mmap+populate+ibv_reg_mr, its own process")

# --- 64 B RDMA WRITE latency --------------------------------------------------------------
# write_latency.sh runs LAT_ROUNDS rounds; in each, DaxPinBench write-latency pairs DaxPin and
# the C sequence in one process (the gated row), then each runs in its own process (context).
# A run from before the rounds has one separate series each and no paired one.
lat_round_dirs = round_dirs("package-benchmark-rdma")
lat_rounds = len(lat_round_dirs)


def ib_write_lat_typical(name):
    """t_typical of an ib_write_lat report, in seconds."""
    for line in (read(name) or "").splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0] == "64" and re.fullmatch(r"[0-9.]+", fields[4]):
            return float(fields[4]) * 1e-6
    return None


def rdma_p50_seconds(directory):
    return p50_seconds("rdma_write_64B", directory) or p50_seconds("rdma write 64B", directory)


def paired_medians(name):
    """(DaxPin, C) medians in seconds of a DaxPinBench write-latency output (ns per line)."""
    series = labelled_values(name)
    return tuple(m * 1e-9 if m else None for m in (median(series.get((k,), [])) for k in ("DAXPIN", "C")))


def present(values):
    return [v for v in values if v]


def micros(values):
    return ", ".join("n/a" if v is None else f"{v * 1e6:.1f}" for v in values)


if lat_rounds:
    round_numbers = [d.rsplit(".", 1)[1] for d in lat_round_dirs]
    paired = [paired_medians(f"write_lat.paired.{n}.txt") for n in round_numbers]
    pd_rounds, pc_rounds = [p[0] for p in paired], [p[1] for p in paired]
    d_rounds = [rdma_p50_seconds(d) for d in lat_round_dirs]
    # peers/write_lat.c already drops its 200 warm-up iterations: keep every line.
    c_rounds = [median(numbers(f"write_lat.c.{n}.txt", drop_first=False)) for n in round_numbers]
    t_rounds = [ib_write_lat_typical(f"ib_write_lat.{n}.txt") for n in round_numbers]
else:
    pd_rounds, pc_rounds = [], []
    d_rounds = [rdma_p50_seconds("package-benchmark")]
    c_rounds = [median(numbers("write_lat.c.txt", drop_first=False))]
    t_rounds = [ib_write_lat_typical("ib_write_lat.txt")]
c_rounds = [c * 1e-9 if c else None for c in c_rounds]
pd, pc = median(present(pd_rounds)), median(present(pc_rounds))
d, c = median(present(d_rounds)), median(present(c_rounds))
typical = median(present(t_rounds))
write_samples = {"DAXPIN": [], "C": []}
for name in ([f"write_lat.paired.{n}.txt" for n in round_numbers] if lat_rounds else []):
    for (label,), values in labelled_values(name).items():
        if label in write_samples:
            write_samples[label] += values
for label, side in (("DAXPIN", "DaxPin"), ("C", "raw verbs C")):
    tails.append(benchtargets.tail_row(declared.row("tail-write64")["id"], "64 B WRITE, post to completion", side,
                                       write_samples[label]))
add("write64-paired", fmt(pd and pd * 1e6, "µs"), fmt(pc and pc * 1e6, "µs"),
    declared.measure("write64-paired", rounds=list(zip(pd_rounds, pc_rounds))), "raw verbs C post + poll")
add("write64-separate", fmt(d and d * 1e6, "µs"), fmt(c and c * 1e6, "µs"),
    declared.measure("write64-separate", rounds=list(zip(d_rounds, c_rounds))), "raw verbs C post + poll, its own process")
round_trip = 2 * typical if typical else None
add("write64-ib", fmt(d and d * 1e6, "µs"), fmt(round_trip and round_trip * 1e6, "µs"),
    declared.measure("write64-ib", rounds=[(x, t and 2 * t) for x, t in zip(d_rounds, t_rounds)]),
    "ib_write_lat, 2 × t_typical")
notes.append("64 B RDMA WRITE: the strict peer is peers/write_lat.c, which does what DaxPin's benchmark "
             "does with raw libibverbs (two RC queue pairs in one process on the same device, connected "
             "directly with QueuePair's attributes, a 1 MiB tmpfs target, one signaled 64 B WRITE, "
             "busy-poll of the send CQ with a yield every 64 empty polls); 5000 writes each after "
             "200 warm-up ones. The ib_write_lat row is "
             "context only: it reports half of a ping-pong round (one write seen by the peer's polling) "
             "between two processes, while a signaled WRITE completes when the responder's ACK is back, "
             "so it is shown as 2 × t_typical.")
if lat_rounds:
    notes.append(f"64 B RDMA WRITE, why paired: the emulator has slow and fast spells that can last a whole "
                 f"process run, so two series measured in separate processes, one after the other, differ by "
                 f"the spells they met more than by their code. The gated row therefore alternates DaxPin's "
                 f"QueuePair.write and the C sequence (peers/write_lat.c built as a shared library) in batches "
                 f"of 50 inside one process (DaxPinBench write-latency), timed with the same clock; {lat_rounds} "
                 f"rounds, each figure the median of the rounds' medians. Per round, µs: paired DaxPin "
                 f"{micros(pd_rounds)}; paired C {micros(pc_rounds)}; separate processes: DaxPin "
                 f"(package-benchmark p50) {micros(d_rounds)}, C {micros(c_rounds)}, ib_write_lat 2 × t_typical "
                 f"{micros([t and 2 * t for t in t_rounds])}.")

# --- idle cost ------------------------------------------------------------------------
idle = dict(line.split(None, 1) for line in (read("idle.txt") or "").splitlines() if " " in line)
ticks = int(idle["WATCHER_TICKS"]) if "WATCHER_TICKS" in idle else None
add("idle-ticks", "n/a" if ticks is None else str(ticks), "0", declared.measure("idle-ticks", value=ticks),
    metric=f"idle: watcher CPU ticks, {idle.get('LEASES_HELD', '?')} leases held 10 s")
if "PROCESS_TICKS" in idle:
    notes.append(f"Idle run: the whole process used {idle['PROCESS_TICKS']} ticks in those 10 s "
                 f"(watcher tid {idle.get('WATCHER_TID', '?')}, read from /proc/self/task/<tid>/stat).")

# --- 1000 leases --------------------------------------------------------------------------
manys, ones = numbers("many.1000.txt", drop_first=False), numbers("many.1.txt", drop_first=False)
many, one = median(manys), median(ones)
add("many-1000", fmt(many and many / 1e3, "µs"), fmt(one and one / 1e3, "µs"),
    declared.measure("many-1000", a=manys, b=ones), "DaxPin, 1 lease")
mems = [int(x) for x in re.findall(r"^# MEM (-?\d+)", read("many.1000.txt") or "", re.M)]
mem = median(mems)  # one per round
add("mem-per-lease", fmt(mem is not None and mem / 1024 or None, "KiB"), "",
    declared.measure("mem-per-lease", samples=[m / 1024 for m in mems]))
notes.append("Memory per lease is the growth of the holder's RssAnon (user-space heap: DaxPin's state, "
             "libibverbs' MR objects) divided by 1000; the pinned tmpfs pages and kernel MR state are not in it.")

# --- durable writes ----------------------------------------------------------------------------
# {(round, DAXPIN|RPMA): [bytes/s per batch]} of DaxPinBench durable-paired, pairs in order.
durable_paired_runs = labelled_values("durable.paired.txt")
durable_paired_rounds = sorted({key[0] for key in durable_paired_runs}, key=int)
durable_pair_ratios, durable_round_ratios, durable_pd, durable_pl, durable_pairs = [], [], [], [], []
for rnd in durable_paired_rounds:
    d, l = durable_paired_runs.get((rnd, "DAXPIN"), []), durable_paired_runs.get((rnd, "RPMA"), [])
    ratios = pair_ratios(d, l)   # throughputs: DaxPin / librpma per pair
    durable_pairs += [(x, y) for x, y in zip(d, l)]
    durable_pair_ratios += ratios
    durable_round_ratios.append(median(ratios))
    durable_pd += d
    durable_pl += l
for label, side in (("DAXPIN_BLOCK", "DaxPin"), ("RPMA_BLOCK", "librpma")):
    tails.append(benchtargets.tail_row(declared.row("tail-durable")["id"], "durable 4 KiB write + persist ack", side,
                                       [v for rnd in durable_paired_rounds for v in durable_paired_runs.get((rnd, label), [])]))
durable_paired_r = median(durable_pair_ratios)
if durable_paired_r:
    add("durable-paired", fmt(median(durable_pd) / 2**20, "MiB/s", 2), fmt(median(durable_pl) / 2**20, "MiB/s", 2),
        declared.measure("durable-paired", pairs=durable_pairs),
        "librpma write + persistent flush; both one-sided, read after write")
    batches = len(durable_pair_ratios) // max(1, len(durable_paired_rounds))
    notes.append("Durable writes, the gated row: DaxPinBench durable-paired is one client process of two "
                 "servers, daxpin-server `--direct-write-to-pmem` (the first 64 MiB of device-dax) and "
                 "rpma_durable's (64 MiB from 128 MiB on). It alternates batches of 50 blocks of 4 KiB through "
                 "DaxPin (the WRITE and an 8-byte RDMA READ of it in one post; the READ's completion is the "
                 "ack, as daxpin-client `--persist-method read` does it) with 50 through librpma "
                 "(peers/rpma_durable.c built as a shared library: rpma_write + rpma_flush), in an order that "
                 f"flips every pair; {batches} pairs per round, {len(durable_paired_rounds)} rounds, each with "
                 "its own servers. The throughputs are medians over batches; the ratio is the median over "
                 "pairs of the pair's ratio (per round: "
                 + ", ".join("n/a" if x is None else f"{x:.3f}" for x in durable_round_ratios) + "). Why "
                 "paired: as separate client processes (the context rows below) the ratio moves from boot to "
                 "boot, each process meeting its own spell of the emulator.")
durable_ds, durable_ss, durable_ls = (numbers(f"durable.{k}.txt") for k in ("daxpin", "daxpin-send", "rpma"))
durable_d, durable_s, durable_l = median(durable_ds), median(durable_ss), median(durable_ls)
if durable_d and durable_l:
    add("durable-separate", fmt(durable_d / 2**20, "MiB/s", 2), fmt(durable_l / 2**20, "MiB/s", 2),
        declared.measure("durable-separate", a=durable_ds, b=durable_ls),
        "librpma write + persistent flush; both one-sided, read after write")
    if durable_s:
        add("durable-send", fmt(durable_s / 2**20, "MiB/s", 2), fmt(durable_l / 2**20, "MiB/s", 2),
            declared.measure("durable-send", a=durable_ss, b=durable_ls), "librpma write + persistent flush, one-sided")
    notes.append(("Durable writes as separate client processes (context): " if durable_paired_r else "Durable writes: ") +
                 "one 4 KiB block at a time (queue depth 1) into the first 64 MiB of "
                 "device-dax, each block written and acknowledged durable before the next; DaxPin's client "
                 "runs with `--static-data` (rpma_durable does not generate data per block either). "
                 "The DaxPin row is like for like: daxpin-server `--direct-write-to-pmem` and daxpin-client "
                 "`--persist-method read` (SNIA's appliance persistency method) post an 8-byte RDMA READ "
                 "of the block right after its WRITE, and the READ's completion is the ack; librpma "
                 "(peers/rpma_durable.c) does rpma_write + rpma_flush(RPMA_FLUSH_TYPE_PERSISTENT), which "
                 "librpma 1.2 implements the same way, one-sided, because its server declares "
                 "rpma_peer_cfg_set_direct_write_to_pmem. Both are durable on real hardware only where "
                 "RDMA writes reach the persistence domain (ADR with DDIO off, or eADR), which both servers' "
                 "operators must declare; the server CPU does no cache flush. The context row is DaxPin's "
                 "general-purpose method (`--persist-method send`, correct on any platform): the client "
                 "posts a persist SEND right after the WRITE, daxpin-server flushes the CPU cache lines of "
                 "the range and SENDs the ack: a second message and server CPU work that librpma's "
                 "one-sided flush does not do. All clients are timed from outside as whole processes; "
                 "throughput is blocks × 4 KiB / (time with the blocks − time of the same client writing "
                 "none), so set-up (process start, connect) is not counted on either side.")
    loop_ds, loop_ls = numbers("durable.daxpin.loop.txt"), numbers("durable.rpma.loop.txt")
    loop_d, loop_l = median(loop_ds), median(loop_ls)
    if loop_d and loop_l:
        add("durable-loop", fmt(loop_d / 2**20, "MiB/s", 2), fmt(loop_l / 2**20, "MiB/s", 2),
            declared.measure("durable-loop", a=loop_ds, b=loop_ls), "librpma, rpma_durable's own clock")
        notes.append("The cross-check row times the same runs from inside: each client's monotonic clock around "
                     "its block loop, without process start-up (the two clients take different times to start and "
                     "connect, and the subtraction above carries that jitter).")
    elif loop_l:
        notes.append(f"Cross-check: rpma_durable's own timing of its loop gives {loop_l / 2**20:.2f} MiB/s "
                     f"(median), against {durable_l / 2**20:.2f} MiB/s from the outside timing above.")
if not durable_paired_r:
    text = (read("durable_writes.pending") or "no durable.paired.txt results").strip()
    add("durable-paired", "—", "—", declared.measure("durable-paired", pairs=[]), verdict=f"not measured: {text}")

# --- storage server throughput -------------------------------------------------------------
MIB = 1 << 20
# The series alternate run by run, so the ratio is the median of each round's ratio (as for the
# paired rows); the columns are each series' median.
storage_runs = numbers("storage.daxpin.txt")
d = median(storage_runs)
storage_series_ratios = []
for row_id, peer_file, peer_name in (("storage-ib", "storage.ib_write_bw.txt", "ib_write_bw -s 65536 -t 16"),
                                     ("storage-fio", "storage.fio.txt", "fio ioengine=rdma verb=write iodepth=16")):
    peer_runs = numbers(peer_file)
    p = median(peer_runs)
    if d and p:
        storage_series_ratios.append(f"{peer_file.split('.')[1]} {d / p:.3f}")
    pending = None if d else f"not measured: {(read('storage_throughput.pending') or 'no storage.*.txt results').strip()}"
    add(row_id, fmt(d and d / MIB, "MiB/s"), fmt(p and p / MIB, "MiB/s"),
        declared.measure(row_id, pairs=list(zip(storage_runs, peer_runs))), peer_name,
        verdict=pending if pending and declared.row(row_id).get("threshold") is not None else None)
notes.append("Storage throughput: daxpin-client (`--static-data`: each slot's buffer filled once, as perftest "
             "and fio do not generate data either) writes 4 passes over a 64 MiB tmpfs export of daxpin-server "
             "with 16 RDMA WRITEs in flight, one persist request per pass; its figure is the time of the WRITE "
             "transfers. ib_write_bw and fio move the same 256 MiB per run in 64 KiB WRITEs at depth 16. The "
             "three series alternate run by run (DaxPin, ib_write_bw, fio; each DaxPin run with a server of its "
             "own), so that the emulator's slow and fast spells fall on all three alike; the ratio is the median of "
             "the rounds' ratios (the ratio of the series' medians: " + (", ".join(storage_series_ratios) or "n/a") + ").")

# How the revocation series were split into rounds ("N ROUNDS BREAKS" per region count).
_rounds = (read("revocation.rounds.txt") or "").split()
revocation_rounds = ", ".join(f"{_rounds[i]} region{'s' if _rounds[i] != '1' else ''}: {_rounds[i + 1]} rounds of {_rounds[i + 2]} breaks"
                              for i in range(0, len(_rounds) - 2, 3)) or "see Benchmarks/suites/revocation.sh"

# --- where revocation time goes (the profile of the revocation rows) --------------------------
def stages(kind, n):
    """Medians (µs) of each stage of a break, from the breaker's and the holder's CLOCK_MONOTONIC stamps."""
    lines = (read(f"revocation.{kind}.{n}.txt") or "").splitlines()
    spans = [(l.startswith("# TW "), tuple(map(int, l.split()[2:]))) for l in lines
             if l.startswith("# T ") or l.startswith("# TW ")]
    steps = [tuple(map(int, l.split()[2:])) for l in lines if l.startswith("# TRACE ")]
    pairs = [(span, step) for (warm, span), step in zip(spans, steps) if not warm]  # warm-ups: "# TW"
    if not pairs:
        return None
    cols = [[(t[0] - s) / 1e3, (t[1] - t[0]) / 1e3, (t[2] - t[1]) / 1e3, (t[3] - t[2]) / 1e3,
             (e - t[3]) / 1e3, (e - s) / 1e3] for (s, e), t in pairs]
    return [statistics.median(c[i] for c in cols) for i in range(6)]


declared.row("profile-stages")   # context rows: declared like the others
profile = ["| id | regions | holder | signal → noticed | deregister all | unmap all | F_UNLCK | → breaker returns | total |",
           "|---|---|---|---|---|---|---|---|---|"]
for n in (1, 16, 64):
    for kind, name in (("c", "raw C"), ("cswift", "raw C in DaxPinBench"), ("daxpin", "DaxPin")):
        st = stages(kind, n)
        if st:
            profile.append(f"| profile-stages | {n} | {name} | " + " | ".join(f"{v:.0f} µs" for v in st) + " |")

# --- environment ------------------------------------------------------------------------------
env = benchtargets.read_environment(raw)
emulated = os.environ.get("DAXPIN_BENCH_ACCEL", "unknown")
suites = (read("suites.txt") or "").strip()

left_off = benchtargets.chart(os.path.join(results, "latest.png"), "Linux 6.1: DaxPin against its peers (one testbed boot; emulated: ratios only)", judged)
md = ["# DaxPin benchmark results", "",
      "Written by `Scripts/bench` (`Benchmarks/report.py`) from one testbed boot of Linux 6.1.", ""]
md += benchtargets.header_lines(env) + ["",
      "**The testbed is emulated: absolute numbers are not claims, ratios are.** Every row, its estimator, "
      "interval, direction and threshold are declared in `Benchmarks/targets.json` before the run. "
      "Verdict: met when the whole interval is on the right side of the threshold, missed when it is "
      "wholly on the wrong side, inconclusive otherwise; context rows have no threshold.", "",
      "| id | metric | DaxPin | peer | ratio | interval | target | verdict |", "|---|---|---|---|---|---|---|---|"]
md += [f"| {' | '.join(row)} |" for row in rows]
md += ["", "![ratios: above 1 is better for DaxPin](latest.png)", "",
       "The chart puts every row with a ratio on one axis where above 1 means DaxPin is better (peer / DaxPin "
       "for the lower-is-better rows): the dot is the estimate, coloured by its verdict, the whiskers the "
       "declared interval, the black dash the threshold."
       + (f" Not on it (not ratios): {', '.join(left_off)}." if left_off else ""), "",
       "## Tails", "",
       "Percentiles of every recorded sample of three gated measurements (DaxPin and its peer side by side, "
       "in one boot): revocation, each break's blocked `truncate()`; the 64 B WRITE, each write of the paired "
       "run; durable 4 KiB writes, each block of the paired run, timed from the end of the block before. "
       "A percentile the sample count cannot support (p99 below 100 samples, p99.9 below 1,000) is n/a.", ""]
md += (benchtargets.TAIL_TABLE + [t for t in tails if t]) if any(tails) else ["No samples: the suites did not run."]
md += ["",
       "## Environment", "",
       f"- kernel (guest): {env.get('kernel', '?')}",
       f"- CPU: {env.get('cpu', '?')}, {env.get('cpus', '?')} vCPUs",
       f"- emulated: {emulated}",
       f"- RDMA device: {env.get('rdma_device', '?')} (Soft-RoCE on dummy0), device-dax {env.get('devdax', '?')}",
       f"- lease-break-time: {env.get('lease_break_time', '?')} s",
       f"- repetitions per series: {os.environ.get('DAXPIN_BENCH_REPS', '21')} (1000-lease series: that many breaks in each of {os.environ.get('DAXPIN_BENCH_ROUNDS', '7')} alternating rounds, after a warm-up break each; revocation series: {revocation_rounds}; the breaker truncates 20 ms after the holder's READY line, so every holder is broken idle)", "",
       "## Notes", ""] + [f"- {n}" for n in notes]
# --- instruction counts of the teardown (callgrind, Benchmarks/suites/profile.sh) -------------
def teardown_counts(kind):
    """(up to F_UNLCK, whole) instructions of each teardown that reached F_UNLCK, in order, from
    the dump parts (a revoke of a lease already revoked, as when the holder drops it, has none)."""
    teardowns, current, unlocked = [], 0, None
    for line in (read(f"profile.{kind}.parts.txt") or "").splitlines():
        fields = line.split()
        if len(fields) != 2:
            continue
        current += int(fields[1])
        if fields[0] == "unlocked":
            unlocked = current
        else:
            if unlocked is not None:
                teardowns.append((unlocked, current))
            current, unlocked = 0, None
    return teardowns


counts = dict(zip(*[iter((read("profile.teardowns.txt") or "").split())] * 2))
instructions = []
breaks = int(counts.get("breaks", 0))
for kind, name in (("c", "raw C `teardown()`"), ("daxpin", "DaxPin `LeaseCore.revoke`"),
                   ("daxpin-metrics", "DaxPin `LeaseCore.revoke`, metrics backend bootstrapped")):
    # The first break is a warm-up (first use of every path); DaxPin's holder also drops its
    # last lease at exit, a teardown that is not a break.
    measured = teardown_counts(kind)[1:breaks]
    if measured:
        instructions.append(f"| profile-teardown-instructions | {name} | {median([m[0] for m in measured]):,.0f} | {median([m[1] for m in measured]):,.0f} |")
    elif counts:
        instructions.append(f"| profile-teardown-instructions | {name} | missing: callgrind counted nothing (raw/profile.{kind}.*) | |")

# The metrics of one revocation (LeaseMetrics.revoked, after F_UNLCK, off the watcher thread).
emission = [int(x) for x in (read("profile.metrics.parts.txt") or "").split()]
if emission:
    instructions.append(f"| profile-teardown-instructions | DaxPin metrics of one revocation (`LeaseMetrics.revoked`, after `F_UNLCK`, "
                        f"off the watcher thread; median of {len(emission)} calls) | - | {median(emission):,.0f} |")

durable_profile = (read("profile.durable.txt") or "").split()
per_block = []
if len(durable_profile) == 8:
    fields = dict(zip(durable_profile[0::3], zip(durable_profile[1::3], durable_profile[2::3])))
    blocks = int(durable_profile[7])
    for kind, name in (("rpma", "librpma client (`rpma_durable`)"), ("daxpin", "DaxPin client (`daxpin-client --persist-method read`)")):
        if kind in fields:
            many, none = (int(x) for x in fields[kind])
            per_block.append(f"| profile-durable-instructions | {name} | {(many - none) / blocks:,.0f} |")

if len(profile) > 2:
    md += ["", "## Where revocation time goes", "",
           "Medians per stage of a break, from CLOCK_MONOTONIC stamps: the breaker's around its "
           "`truncate()`, the holder's when it noticed the break and after its last `ibv_dereg_mr`, last "
           "`munmap` and `F_UNLCK` (DaxPin's from its `RevocationTrace`). Stage medians need not add up "
           "to the median total.", ""] + profile
if instructions:
    md += ["", f"User-space instructions per teardown of a lease with {counts.get('regions', '?')} regions "
           f"(callgrind `Ir`, system calls not included; medians of breaks 2 to {breaks}, the first being a "
           "warm-up; up to `F_UNLCK` is what the breaker waits for; listings of one teardown up to `F_UNLCK` "
           "in raw/profile.*.txt):", "",
           "| id | teardown | up to `F_UNLCK` | whole teardown |", "|---|---|---|---|"] + [declared.row("profile-teardown-instructions") and i for i in instructions]
if per_block:
    md += ["", "## Where durable-write time goes", "",
           f"User-space instructions per durable 4 KiB block in the client process (callgrind `Ir`: the difference "
           f"between a run of 300 blocks and one of 100, divided by {durable_profile[7]}; listings in "
           "raw/profile.durable.*.txt):", "",
           "| id | client | instructions per block |", "|---|---|---|"] + [declared.row("profile-durable-instructions") and b for b in per_block]
md += ["", "## Suites", "", "```", suites, "```", ""]
open(os.path.join(results, "latest.md"), "w").write("\n".join(md))

print(open(os.path.join(results, "latest.md")).read())
