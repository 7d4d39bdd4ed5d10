# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Revocation latency: how long another process's truncate() stays blocked. The same
# breaker (peers/breaker.c) times DaxPin's holder and the raw C holder, alternating.
# Rounds (ROUNDS of REPS breaks, see run-in-testbed; for 1 region REV1_ROUNDS of REV1_REPS)
# alternate the holders, so that drift in the emulator's speed during the suite falls on all
# series alike; each holder's first break is a warm-up
# (see breaker.c), and each break comes 20 ms after the holder said READY, on an idle holder
# (before that pause the C holder was broken while its CPU was still busy from printing READY,
# which made it 2-3x faster than the same holder broken idle). With 1 region a third holder
# runs the C holder's own code inside DaxPinBench (hold-c): the raw sequence with a Swift
# process and DaxPin's watcher around it, which tells the cost of the process from the cost
# of DaxPin's path.

# The 1-region series alternate in more, shorter rounds: their breaks are short enough that
# the spread between processes and rounds outweighs the difference being measured (one run:
# the same C code inside DaxPinBench against the C program, 7 rounds, per-round ratios 0.88
# to 1.79; the 1-region row read 0.95 to 1.46 across boots). Same number of breaks.
REV1_ROUNDS=${DAXPIN_BENCH_REV1_ROUNDS:-21}
REV1_REPS=${DAXPIN_BENCH_REV1_REPS:-7}

# revocation_break HOLDER N BREAKS [PREFIX]: one holder process of kind HOLDER (daxpin,
# daxpin-odp, c, cswift) with N regions, broken BREAKS times after a warm-up break; appends to
# PREFIX.HOLDER.N.txt (PREFIX: revocation; suites/compare.sh: revocation.base, revocation.head).
revocation_break() {
    local cmd
    case $1 in
        daxpin) cmd=("$DAXPINBENCH" hold "$TMP" 1 "$2" 65536 $(($3 + 1)) "$DEV") ;;
        daxpin-odp) cmd=("$DAXPINBENCH" hold-odp "$TMP" 1 "$2" 65536 $(($3 + 1)) "$DEV") ;;
        c) cmd=("$PEERS/lease_holder" "$TMP" "$2" 65536 $(($3 + 1)) "$DEV") ;;
        cswift) cmd=("$DAXPINBENCH" hold-c "$PEERS/lease_holder.so" "$TMP" "$2" 65536 $(($3 + 1)) "$DEV") ;;
    esac
    # A holder that never prints READY would leave the breaker waiting: bounded.
    timeout -k 10 600 "$PEERS/breaker" -- "${cmd[@]}" >>"$LOCAL/${4:-revocation}.$1.$2.txt" 2>>"$LOCAL/holders.log"
}

suite_revocation() {
    local n round h
    for ((round = 1; round <= ROUNDS; round++)); do
        for n in 16 64; do
            say "revocation, $n regions, round $round/$ROUNDS"
            revocation_break daxpin $n $REPS
            revocation_break c $n $REPS
        done
    done
    # 1 region: the three holders in a rotating order, so that none always follows another
    # (round r runs the three starting at index r mod 3).
    local holders=(daxpin c cswift daxpin c)
    for ((round = 0; round < REV1_ROUNDS; round++)); do
        say "revocation, 1 region, round $((round + 1))/$REV1_ROUNDS"
        for h in "${holders[@]:$((round % 3)):3}"; do revocation_break $h 1 $REV1_REPS; done
    done
    echo "1 $REV1_ROUNDS $REV1_REPS 16 $ROUNDS $REPS 64 $ROUNDS $REPS" >"$LOCAL/revocation.rounds.txt"
    keep_local
}
