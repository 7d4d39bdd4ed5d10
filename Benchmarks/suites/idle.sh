# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Idle cost: 100 leases held for 10 s; CPU ticks of the watcher thread meanwhile.
suite_idle() {
    say "idle, 100 leases for 10 s"
    "$DAXPINBENCH" idle "$TMP" 100 10 "$DEV" >"$OUT/idle.txt"
}
