# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# 1000 leases on 1000 files (one 4 KiB pin each): memory per lease and break latency,
# against the same holder with a single lease.
suite_many_leases() {
    local round
    for ((round = 1; round <= ROUNDS; round++)); do   # alternating, as in revocation.sh
        say "1000 leases, round $round/$ROUNDS"
        "$PEERS/breaker" -- "$DAXPINBENCH" hold "$TMP" 1000 1 4096 $((REPS + 1)) "$DEV" >>"$LOCAL/many.1000.txt" 2>>"$LOCAL/holders.log"
        "$PEERS/breaker" -- "$DAXPINBENCH" hold "$TMP" 1 1 4096 $((REPS + 1)) "$DEV" >>"$LOCAL/many.1.txt" 2>>"$LOCAL/holders.log"
    done
    keep_local
}
