# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Scripts/bench-compare's suite (not in run-in-testbed's default list): the gated revocation,
# pin and write-latency rows for two builds of DaxPinBench, $BUILD/base/release and
# $BUILD/head/release, in one boot. Each round runs every series of both builds, in an order
# that changes from round to round, so that the emulator's slow and fast spells fall on both.
# Files: revocation.{base,head}.daxpin.N.txt and revocation.c.N.txt (one holder process per
# round, each starting with the breaker's "# warm-up" line), pin.paired.{base,head}.R.txt,
# write_lat.paired.{base,head}.R.txt; Benchmarks/report_compare.py reads them.
COMPARE_REV_ROUNDS=${DAXPIN_BENCH_COMPARE_REV_ROUNDS:-21}  # breaks: REV1_REPS per holder process
COMPARE_PIN_ROUNDS=${DAXPIN_BENCH_COMPARE_PIN_ROUNDS:-3}   # PIN_ITERATIONS per process
# About 1 s a run; many, because a process's DaxPin / C can land in either of two modes (7.2: near
# 1.05 or near 1.35, for BASE and HEAD alike) and 5 rounds let one build draw 3 high ones.
COMPARE_LAT_ROUNDS=${DAXPIN_BENCH_COMPARE_LAT_ROUNDS:-15}

# compare_use BUILD: the suites' DaxPinBench is BUILD's (base or head).
compare_use() { DAXPINBENCH="$BUILD/$1/release/DaxPinBench"; }

suite_compare() {
    local round n h builds=(base head) order=(base head c base head)
    local DAXPINBENCH=$DAXPINBENCH   # set by compare_use; bash scoping restores it on return
    for h in base head; do [[ -x "$BUILD/$h/release/DaxPinBench" ]] || { say "no $h build"; return 1; }; done
    for ((round = 0; round < COMPARE_REV_ROUNDS; round++)); do
        say "compare: revocation round $((round + 1))/$COMPARE_REV_ROUNDS (1, 16, 64 regions)"
        for n in 1 16 64; do
            # The three holders starting at index round mod 3: none always follows another.
            for h in "${order[@]:$((round % 3)):3}"; do
                if [[ $h == c ]]; then revocation_break c "$n" "$REV1_REPS" || return 1
                else compare_use "$h"; revocation_break daxpin "$n" "$REV1_REPS" "revocation.$h" || return 1; fi
            done
        done
    done
    keep_local
    for ((round = 1; round <= COMPARE_PIN_ROUNDS; round++)); do
        for h in "${builds[@]}"; do
            say "compare: pin+register paired, $h, round $round/$COMPARE_PIN_ROUNDS"
            compare_use "$h"; pin_paired "pin.paired.$h.$round.txt" || return 1
        done
        builds=("${builds[1]}" "${builds[0]}")   # the other build first next round
    done
    for ((round = 1; round <= COMPARE_LAT_ROUNDS; round++)); do
        for h in "${builds[@]}"; do
            say "compare: 64 B WRITE paired, $h, round $round/$COMPARE_LAT_ROUNDS"
            compare_use "$h"; write_latency_paired "write_lat.paired.$h.$round.txt" || return 1
        done
        builds=("${builds[1]}" "${builds[0]}")
    done
    echo "$COMPARE_REV_ROUNDS $REV1_REPS $COMPARE_PIN_ROUNDS $PIN_ITERATIONS $COMPARE_LAT_ROUNDS" >"$OUT/compare.rounds.txt"
}
