# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# 64 B RDMA WRITE latency, post to completion, in LAT_ROUNDS rounds (fresh processes each).
# The emulator has slow and fast spells that can last a process's whole run: measured in
# separate processes one after the other, DaxPin / C read anywhere from 0.70 to 2.72 on the
# same code. So the gated comparison is paired, in one process:
#   paired:  DaxPinBench write-latency alternates DaxPin's QueuePair.write and the raw C
#            sequence of peers/write_lat.c (loaded as write_lat.so) in batches of 50, 5000
#            each after 200 warm-up ones: "DAXPIN <ns>" / "C <ns>" lines in write_lat.paired.N.txt.
# and, as context, each in its own process:
#   DaxPin:  package-benchmark's "rdma write 64B" (200 warm-up, 5000 measured iterations),
#            percentiles in package-benchmark-rdma/round.N/;
#   C peer:  peers/write_lat (two RC QPs in one process, one signaled 64 B RDMA WRITE,
#            busy-poll the CQ; 5000 measured after 200 warm-up), to write_lat.c.N.txt;
#   perftest's ib_write_lat on the same device (server + client), to ib_write_lat.N.txt.
LAT_ROUNDS=${DAXPIN_BENCH_LAT_ROUNDS:-5}

# ib_write_lat_once FILE: one perftest run, 2000 iterations; the client's report goes to $OUT/FILE.
ib_write_lat_once() {
    ib_write_lat -d "$DEV" -s 64 -n 2000 -F >"$OUT/ib_write_lat.server.txt" 2>&1 &
    local server=$!
    sleep 2
    timeout -k 10 60 ib_write_lat -d "$DEV" -s 64 -n 2000 -F "$DAXPIN_RDMA_ADDR" >"$OUT/$1" 2>&1 \
        || { cat "$OUT/$1" >&2; stop_process "$server" 10 TERM; return 1; }
    stop_process "$server" 30 || true
}

# write_latency_paired FILE: one DaxPinBench write-latency run (the gated row) to $OUT/FILE
# (also suites/compare.sh).
write_latency_paired() {
    timeout -k 10 120 "$DAXPINBENCH" write-latency "$PEERS/write_lat.so" "$DEV" "$TMP" 5000 200 50 >"$OUT/$1"
}

suite_write_latency() {
    local round
    rm -f "$OUT"/write_lat.c.*.txt "$OUT"/write_lat.paired.*.txt "$OUT"/ib_write_lat.*.txt
    for ((round = 1; round <= LAT_ROUNDS; round++)); do
        say "64 B RDMA WRITE round $round/$LAT_ROUNDS: DaxPin and raw verbs C paired, DaxPin (package-benchmark), C, ib_write_lat"
        write_latency_paired "write_lat.paired.$round.txt" || return 1
        package_benchmark_run "package-benchmark-rdma/round.$round" 'rdma.*' || return 1
        "$PEERS/write_lat" "$DEV" "$TMP/peer-write-lat" 5000 200 >"$OUT/write_lat.c.$round.txt" \
            || { rm -f "$TMP/peer-write-lat"; return 1; }
        rm -f "$TMP/peer-write-lat"
        ib_write_lat_once "ib_write_lat.$round.txt" || return 1
    done
}
