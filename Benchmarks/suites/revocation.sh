# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Revocation latency: how long another process's truncate() stays blocked. The same
# breaker (peers/breaker.c) times DaxPin's holder and the raw C holder, alternating.
suite_revocation() {
    local n
    for n in 1 16 64; do
        say "revocation, $n regions"
        "$PEERS/breaker" -- "$BIN/DaxPinBench" hold "$TMP" 1 "$n" 65536 "$REPS" "$DEV" >"$LOCAL/revocation.daxpin.$n.txt" 2>>"$LOCAL/holders.log"
        "$PEERS/breaker" -- "$PEERS/lease_holder" "$TMP" "$n" 65536 "$REPS" "$DEV" >"$LOCAL/revocation.c.$n.txt" 2>>"$LOCAL/holders.log"
    done
    keep_local
}
