#!/usr/bin/env python3
"""Writes the synthetic raw series of Benchmarks/tests/fixture/ (committed; rerun only to change it).
Numbers are invented and chosen so that test_reports.py knows each gated row's verdict:
rev-16 met, rev-64 missed, rev-1 inconclusive, pin rows met, durable-paired missed, storage-ib met,
nk-flush-c met."""
import os, shutil

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixture")


def write(d, name, lines):
    path = os.path.join(HERE, d, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write("\n".join(str(l) for l in lines) + "\n")


def env(d, kernel):
    write(d, "environment.txt", [f"kernel {kernel}", "cpu synthetic", "cpus 2", "rdma_device rxe0", "devdax /dev/dax0.0",
                                 "lease_break_time 45", "commit fixture", "rdma_core 44.0-2", "date 2026-01-01T00:00Z",
                                 "settings none"])
    write(d, "suites.txt", ["environment ok 0s"])


shutil.rmtree(HERE, ignore_errors=True)
S = "stable"
env(S, "6.1.0-fixture")
spread = [-3, -2, -1, 0, 1, 2, 3]
# revocation (ns): rev-1 straddles 1.10, rev-16 well under, rev-64 well over
write(S, "revocation.daxpin.1.txt", ["# warm-up"] + [int(1e6 * (1.10 + 0.08 * s)) for s in spread])
write(S, "revocation.c.1.txt", ["# warm-up"] + [int(1e6 * (1.0 + 0.001 * s)) for s in spread])
write(S, "revocation.cswift.1.txt", [int(1e6 * (0.9 + 0.01 * s)) for s in spread])
write(S, "revocation.daxpin.16.txt", [int(1e6 * (0.8 + 0.001 * s)) for s in spread])
write(S, "revocation.c.16.txt", [int(1e6 * (1.0 + 0.001 * s)) for s in spread])
write(S, "revocation.daxpin.64.txt", [int(1e6 * (1.5 + 0.001 * s)) for s in spread])
write(S, "revocation.c.64.txt", [int(1e6 * (1.0 + 0.001 * s)) for s in spread])
# pin (seconds per 256 MiB): DaxPin faster than both peers in every iteration
write(S, "pin.paired.txt", [f"{m} {k} {t + 0.001 * s}" for s in spread for m in ("tmpfs", "devdax")
                            for k, t in (("DAXPIN", 0.04), ("RAW", 0.06), ("RPMA", 0.061), ("SAME", 0.05))])
for m, frag in (("tmpfs", "tmpfs"), ("devdax", "device-dax")):
    write(S, f"package-benchmark-pin/round.1/DaxPinBenchmarks.pin_256MiB_{frag}.p90.tsv", ["Percentile\tpin (ms) *", "50\t42", "90\t50"])
    write(S, f"pin.raw.{m}.txt", [0.06 + 0.001 * s for s in spread])
# 64 B WRITE: 3 rounds, DaxPin about 1.05 × C
for r in (1, 2, 3):
    write(S, f"package-benchmark-rdma/round.{r}/DaxPinBenchmarks.rdma_write_64B.p90.tsv", ["Percentile\tw (us) *", "50\t19", "90\t25"])
    write(S, f"write_lat.paired.{r}.txt", [f"DAXPIN {18900 + 10 * s}" for s in spread] + [f"C {18000 + 10 * s}" for s in spread])
    write(S, f"write_lat.c.{r}.txt", [18000 + 10 * s for s in spread])
    write(S, f"ib_write_lat.{r}.txt", [" #bytes #iterations t_min[usec] t_max[usec] t_typical[usec]", f" 64 1000 8.0 30.0 {9.0 + 0.1 * r}"])
write(S, "idle.txt", ["WATCHER_TICKS 0", "LEASES_HELD 100", "PROCESS_TICKS 3", "WATCHER_TID 42"])
write(S, "many.1000.txt", ["# MEM 2048"] + [int(1.1e6 + 1e3 * s) for s in spread])
write(S, "many.1.txt", [int(1.0e6 + 1e3 * s) for s in spread])
# durable: DaxPin slower than librpma in every pair (missed)
write(S, "durable.paired.txt", [f"{r} {k} {v + 1e4 * s}" for r in (1, 2) for s in spread
                                for k, v in (("DAXPIN", 3.0e7), ("RPMA", 3.5e7))] +
      [f"{r} {k} {v + 10 * s}" for r in (1, 2) for s in spread for k, v in (("DAXPIN_BLOCK", 150000), ("RPMA_BLOCK", 140000))])
for k, v in (("daxpin", 3.0e7), ("daxpin-send", 2.0e7), ("rpma", 3.1e7), ("daxpin.loop", 2.9e7), ("rpma.loop", 3.0e7)):
    write(S, f"durable.{k}.txt", [v + 1e4 * s for s in [9] + spread])
# storage (bytes/s, first run a warm-up): DaxPin about ib_write_bw
for k, v in (("daxpin", 5.5e7), ("ib_write_bw", 5.4e7), ("fio", 4.7e7)):
    write(S, f"storage.{k}.txt", [v + 1e5 * s for s in [9] + spread])

# the profile tables: stamps of two breaks per holder at 16 regions, callgrind parts, durable counts
for kind in ("c", "daxpin"):
    with open(os.path.join(HERE, S, f"revocation.{kind}.16.txt"), "a") as f:
        f.write("# T 1000 900000\n# TRACE 100000 300000 500000 700000\n# T 2000 902000\n# TRACE 101000 301000 501000 701000\n")
    write(S, f"profile.{kind}.parts.txt", ["unlocked 500", "rest 300"] * 3)
write(S, "profile.teardowns.txt", ["breaks 3 regions 16"])
write(S, "profile.durable.txt", ["rpma 300000 100000 daxpin 900000 300000 blocks 200"])

N = "newest"
env(N, "7.2.0-fixture")
for n in (1, 16, 64):
    write(N, f"revocation.daxpin.{n}.txt", [int(1e6 * (0.9 + 0.001 * s)) for s in spread])
    write(N, f"revocation.c.{n}.txt", [int(1e6 * (1.0 + 0.001 * s)) for s in spread])
write(N, "on_demand_paging.pin.txt", [f"{k} {v + 0.0001 * s}" for s in spread for k, v in
                                      (("tmpfs pinned", 0.07), ("tmpfs odp", 0.003), ("fsdax odp", 0.0026),
                                       ("fsdax odp-prefetch", 0.049), ("devdax pinned", 0.008))])
write(N, "on_demand_paging.touch.txt", [f"{k} {w} {v + 0.001 * s}" for s in spread for w in ("first", "second")
                                        for k, v in (("odp", 0.5), ("pinned", 0.55), ("odp-noprefetch", 0.7))]
      + ["odp mapped 4096 4096", "odp-noprefetch mapped 0 4096"])
write(N, "odp_rev.daxpin.1.txt", [int(1.7e6 + 1e3 * s) for s in spread])
write(N, "odp_rev.daxpin-odp.1.txt", [int(2.0e6 + 1e3 * s) for s in spread])
write(N, "on_demand_paging.check.txt", [f"rxe0 x {0.045 + 0.001 * s} failed" for s in spread])
for k, v in (("daxpin-flush", 1.6e7), ("rpma", 1.2e7), ("daxpin", 2.0e7)):
    write(N, f"durable.{k}.txt", [v + 1e4 * s for s in spread])
# native FLUSH paired: DaxPin about 0.98 × C in every pair (met against ≥ 0.95)
write(N, "durable_flush.paired.txt", [f"{r} {k} {v + 1e4 * s}" for r in (1, 2) for s in spread
                                      for k, v in (("DAXPIN", 1.57e7), ("C", 1.6e7))] +
      [f"{r} {k} {v + 10 * s}" for r in (1, 2) for s in spread for k, v in (("DAXPIN_BLOCK", 260000), ("C_BLOCK", 250000))])

C = "compare/stable"
env(C, "6.1.0-fixture")
for n in (1, 16, 64):
    for who, base in (("base.daxpin", 1.0), ("head.daxpin", 1.2 if n == 64 else 1.0), ("c", 1.0)):
        # HEAD 20 % slower in every round at 64 regions: a change; the same elsewhere: none
        write(C, f"revocation.{who}.{n}.txt", [l for r in range(5) for l in
                                                ["# warm-up"] + [int(1e6 * (base + 0.01 * s + 0.002 * r)) for s in spread]])
for k in ("base", "head"):
    for i in (1, 2, 3):
        write(C, f"pin.paired.{k}.{i}.txt", [f"{m} {p} {t + 0.0005 * s + 0.001 * i}" for s in spread for m in ("tmpfs", "devdax")
                                            for p, t in (("DAXPIN", 0.04), ("RAW", 0.06), ("RPMA", 0.061))])
        write(C, f"write_lat.paired.{k}.{i}.txt", [f"DAXPIN {18000 + 300 * (i - 2) + 10 * s}" for s in spread] +
              [f"C {18000 + 10 * s}" for s in spread])
write(C, "compare.rounds.txt", ["5 7 3 25 3"])

Z = "zero-copy"
write(Z, "zero_copy.environment.txt", ["kernel 7.2.0-fixture", "rdma_core 65.0", "commit fixture", "date 2026-01-01T00:00Z",
                                       "rxe fixed", "device rxe0", "fsdax /tmp/x"])
write(Z, "zero_copy.write.txt", [f"write64k {k} {r} {t + 0.01 * (r % 3)} 8388608" for r in range(1, 8) for k, t in (("odp", 0.4), ("staged", 0.45))])
write(Z, "zero_copy.durable.txt", [f"durable4k {k} {r} {t + 0.01 * (r % 3)} 2097152" for r in range(1, 8) for k, t in (("odp", 0.2), ("staged", 0.4))])
write(Z, "zero_copy.touch.txt", [f"touch {k} {r} {part} {t + 0.01 * r}" for r in range(1, 6) for k, base in (("prefetch", 0.5), ("noprefetch", 0.8))
                                 for part, t in (("pin", base / 10), ("first", base), ("second", 0.6))]
      + ["touch prefetch 1 mapped 4096 4096", "touch noprefetch 1 mapped 0 4096"])
write(Z, "zero_copy.pin.txt", [f"pin {m} {k} {r} {t + 0.001 * (r % 3)}" for r in range(1, 8)
                               for m, k, t in (("fsdax", "odp", 0.03), ("fsdax", "staged", 0.09), ("tmpfs", "odp", 0.03), ("tmpfs", "pinned", 0.02))])
write(Z, "zero_copy.check.txt", [f"CHECK {0.030 + 0.001 * s} verified CACHED {0.002 + 0.0001 * s}" for s in spread])

G = "scaling"
env(G, "6.1.0-fixture")
# revocation grows with the regions on both sides; DaxPin within 1.1 up to 64 regions, above at 1024
for n, dax in ((1, 1.0), (4, 1.0), (16, 0.9), (64, 0.9), (256, 1.05), (1024, 1.4)):
    # each break followed by its holder's "# CPU" line (the warm-up's a huge one the report must skip)
    write(G, f"scaling.daxpin.{n}x65536.txt", ["# warm-up 1", "# CPU 999999999"] +
          [x for s in spread for x in (int(1e6 * n ** 0.5 * (dax + 0.001 * s)), f"# CPU {int(n * (12000 + 10 * s))}")])
    write(G, f"scaling.c.{n}x65536.txt", ["# warm-up 1", "# CPU 999999999"] +
          [x for s in spread for x in (int(1e6 * n ** 0.5 * (1.0 + 0.001 * s)), f"# CPU {int(n * (8000 + 10 * s))}")])
for size in (4096, 1 << 20, 64 << 20, 256 << 20):
    write(G, f"scaling.daxpin.1x{size}.txt", [int(1e6 * (1.0 + 0.001 * s)) for s in spread])
    write(G, f"scaling.c.1x{size}.txt", [int(1e6 * (1.0 + 0.001 * s)) for s in spread])
# the traffic holder: a little slower than the idle one, 40 WRITEs before each break
write(G, "scaling.traffic.16x65536.txt", ["# warm-up 1", "# WRITES 30"] +
      [x for s in spread for x in (int(1e6 * 4 * (1.0 + 0.001 * s)), "# WRITES 40")])
# four holders broken together: DaxPin's within 1.1 of C's
write(G, "scaling.daxpin.concurrent.txt", ["# warm-up 1"] * 4 + [int(1e6 * (1.05 + 0.001 * s)) for s in spread for _ in range(4)])
write(G, "scaling.c.concurrent.txt", ["# warm-up 1"] * 4 + [int(1e6 * (1.0 + 0.001 * s)) for s in spread for _ in range(4)])
# tails: four processes of 250 breaks per holder, each after a warm-up
for kind, base in (("daxpin", 1.05), ("c", 1.0)):
    write(G, f"scaling.{kind}.tail.txt", [x for block in range(4) for x in
                                         ["# warm-up 1"] + [int(1e6 * (base + 0.0001 * ((block * 250 + i) % 997))) for i in range(250)]])
write(G, "scaling.memory.txt", ["# MEM 20480000", "# VMPIN 40960000"])
write(G, "scaling.rounds.txt", ["3 5 10000 4 4 250"])

