# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Revocation latency: how long another process's truncate() stays blocked. The same
# breaker (peers/breaker.c) times DaxPin's holder and the raw C holder, alternating.
# ROUNDS rounds (run-in-testbed) alternate the two holders, so that drift in the emulator's
# speed during the suite falls on both series alike; each holder's first break is a warm-up
# (see breaker.c), and each break comes 20 ms after the holder said READY, on an idle holder
# (before that pause the C holder was broken while its CPU was still busy from printing READY,
# which made it 2-3x faster than the same holder broken idle). With 1 region a third holder
# runs the C holder's own code inside DaxPinBench (hold-c): the raw sequence with a Swift
# process and DaxPin's watcher around it, which tells the cost of the process from the cost
# of DaxPin's path.

suite_revocation() {
    local n round
    for ((round = 1; round <= ROUNDS; round++)); do
        for n in 1 16 64; do
            say "revocation, $n regions, round $round/$ROUNDS"
            "$PEERS/breaker" -- "$BIN/DaxPinBench" hold "$TMP" 1 "$n" 65536 $((REPS + 1)) "$DEV" >>"$LOCAL/revocation.daxpin.$n.txt" 2>>"$LOCAL/holders.log"
            "$PEERS/breaker" -- "$PEERS/lease_holder" "$TMP" "$n" 65536 $((REPS + 1)) "$DEV" >>"$LOCAL/revocation.c.$n.txt" 2>>"$LOCAL/holders.log"
            [[ $n -ne 1 ]] || "$PEERS/breaker" -- "$BIN/DaxPinBench" hold-c "$PEERS/lease_holder.so" "$TMP" "$n" 65536 $((REPS + 1)) "$DEV" \
                >>"$LOCAL/revocation.cswift.$n.txt" 2>>"$LOCAL/holders.log"
        done
    done
    keep_local
}
