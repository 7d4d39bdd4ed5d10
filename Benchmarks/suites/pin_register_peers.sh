# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Pin + register 256 MiB on tmpfs and device-dax against the raw C peer (mmap + populate +
# ibv_reg_mr) and librpma's rpma_mr_reg (peers/pin_register.c).
#   paired (the gated rows): DaxPinBench pin-paired runs DaxPin's pin and both C sequences
#            (peers/pin_register.c built as pin_register.so) in one process, one of each per
#            iteration in a rotating order, PIN_ITERATIONS per medium after one unrecorded
#            each: "<tmpfs|devdax> <DAXPIN|RAW|RPMA> <seconds>" lines in pin.paired.txt.
#            The emulator has slow and fast spells lasting seconds to minutes (one boot: the
#            C peer's device-dax runs near 55 ms for a while, near 90 ms for another), and
#            series measured one after the other took whichever spell they met.
#   separate processes (context), PIN_ROUNDS rounds: package-benchmark's pin benchmarks (9
#            iterations after a warm-up, percentiles in package-benchmark-pin/round.N/) and
#            each peer as its own process (10 runs, the first dropped), appended to
#            pin.{raw,rpma}.{tmpfs,devdax}.txt.
PIN_ITERATIONS=${DAXPIN_BENCH_PIN_ITERATIONS:-25}
PIN_ROUNDS=${DAXPIN_BENCH_PIN_ROUNDS:-1}

# pin_peer MODE TARGET FILE: one peer run of 10, its first (a cold start) dropped.
pin_peer() {
    "$PEERS/pin_register" "$1" "$2" $((256 << 20)) 10 "$DEV" "$DAXPIN_RDMA_ADDR" | tail -n +2 >>"$OUT/$3"
}

# pin_paired FILE: one DaxPinBench pin-paired run (the gated rows) to $OUT/FILE (also suites/compare.sh).
pin_paired() {
    timeout -k 10 600 "$DAXPINBENCH" pin-paired "$PEERS/pin_register.so" "$TMP" "$DAXPIN_DEVDAX_PATH" $((256 << 20)) \
        "$PIN_ITERATIONS" "$DEV" "$DAXPIN_RDMA_ADDR" >"$OUT/$1"
}

suite_pin_register_peers() {
    local round mode
    say "pin+register paired in one process: DaxPin, raw C, librpma x $PIN_ITERATIONS (tmpfs, device-dax)"
    pin_paired pin.paired.txt || return 1
    for mode in raw rpma; do : >"$OUT/pin.$mode.tmpfs.txt"; : >"$OUT/pin.$mode.devdax.txt"; done
    for ((round = 1; round <= PIN_ROUNDS; round++)); do
        say "pin+register separate processes, round $round/$PIN_ROUNDS: DaxPin (package-benchmark), raw C, librpma"
        package_benchmark_run "package-benchmark-pin/round.$round" 'pin.*' || return 1
        for mode in raw rpma; do
            pin_peer "$mode" "$TMP/peer-pin" "pin.$mode.tmpfs.txt" || return 1
            rm -f "$TMP/peer-pin"
            pin_peer "$mode" "$DAXPIN_DEVDAX_PATH" "pin.$mode.devdax.txt" || return 1
        done
    done
}
