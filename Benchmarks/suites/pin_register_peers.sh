# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Pin + register 256 MiB on tmpfs and device-dax: DaxPin (package-benchmark's pin benchmarks,
# 9 iterations after a warm-up, one process per round) alternates with the peers (raw mmap +
# populate + ibv_reg_mr, and librpma's rpma_mr_reg; 10 runs each, the first dropped) in
# PIN_ROUNDS rounds. The emulator's speed drifts by up to 2x within minutes (one boot: the C
# peer's device-dax median 91, 111 and 53 ms in three rounds), so series measured one after
# the other would turn that drift into the ratio. Each round's DaxPin percentiles go to
# package-benchmark-pin/round.N/; the peers' runs are appended to pin.{raw,rpma}.{tmpfs,devdax}.txt.
PIN_ROUNDS=${DAXPIN_BENCH_PIN_ROUNDS:-5}

# pin_peer MODE TARGET FILE: one peer run of 10, its first (a cold start) dropped.
pin_peer() {
    "$PEERS/pin_register" "$1" "$2" $((256 << 20)) 10 "$DEV" "$DAXPIN_RDMA_ADDR" | tail -n +2 >>"$OUT/$3"
}

suite_pin_register_peers() {
    local round mode
    for mode in raw rpma; do : >"$OUT/pin.$mode.tmpfs.txt"; : >"$OUT/pin.$mode.devdax.txt"; done
    for ((round = 1; round <= PIN_ROUNDS; round++)); do
        say "pin+register round $round/$PIN_ROUNDS: DaxPin (package-benchmark), raw C, librpma"
        package_benchmark_run "package-benchmark-pin/round.$round" 'pin.*' || return 1
        for mode in raw rpma; do
            pin_peer "$mode" "$TMP/peer-pin" "pin.$mode.tmpfs.txt" || return 1
            rm -f "$TMP/peer-pin"
            pin_peer "$mode" "$DAXPIN_DEVDAX_PATH" "pin.$mode.devdax.txt" || return 1
        done
    done
}
