# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Peer for the 64 B write: perftest's ib_write_lat on the same device (server + client).
suite_ib_write_lat() {
    say "ib_write_lat 64 B"
    ib_write_lat -d "$DEV" -s 64 -n 2000 -F >"$OUT/ib_write_lat.server.txt" 2>&1 &
    local server=$!
    sleep 2
    ib_write_lat -d "$DEV" -s 64 -n 2000 -F "$DAXPIN_RDMA_ADDR" >"$OUT/ib_write_lat.txt" 2>&1 || { cat "$OUT/ib_write_lat.txt" >&2; return 1; }
    wait "$server" || true
}
