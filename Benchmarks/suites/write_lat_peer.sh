# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Strict peer for the 64 B write: peers/write_lat.c does what DaxPin's "rdma write 64B"
# benchmark does (two RC QPs in one process, one signaled 64 B RDMA WRITE, busy-poll the
# CQ) with raw libibverbs; 5000 measured post-to-completion times after 200 warm-up ones.
suite_write_lat_peer() {
    say "64 B RDMA WRITE, raw verbs C peer"
    "$PEERS/write_lat" "$DEV" "$TMP/peer-write-lat" 5000 200 >"$OUT/write_lat.c.txt" || { rm -f "$TMP/peer-write-lat"; return 1; }
    rm -f "$TMP/peer-write-lat"
}
