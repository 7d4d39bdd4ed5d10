# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# The revocation row with and without a metrics backend: DaxPin's holder (16 regions) broken
# by the same breaker as in suites/revocation.sh, once as it is and once with
# DAXPIN_BENCH_METRICS=1 (swift-metrics' TestMetrics bootstrapped), alternating round by round
# and swapping which goes first, so that the emulator's drift falls on both. Not in the
# default SUITES: run it with DAXPIN_BENCH_SUITES=revocation_metrics.
REVM_ROUNDS=${DAXPIN_BENCH_REVM_ROUNDS:-7}
REVM_REGIONS=16

suite_revocation_metrics() {
    local round
    for ((round = 1; round <= REVM_ROUNDS; round++)); do
        say "revocation with and without a metrics backend, $REVM_REGIONS regions, round $round/$REVM_ROUNDS"
        if ((round % 2)); then
            revocation_break daxpin $REVM_REGIONS $REPS revocation-metrics.off || return 1
            DAXPIN_BENCH_METRICS=1 revocation_break daxpin $REVM_REGIONS $REPS revocation-metrics.on || return 1
        else
            DAXPIN_BENCH_METRICS=1 revocation_break daxpin $REVM_REGIONS $REPS revocation-metrics.on || return 1
            revocation_break daxpin $REVM_REGIONS $REPS revocation-metrics.off || return 1
        fi
    done
    echo "$REVM_REGIONS $REVM_ROUNDS $REPS" >"$LOCAL/revocation-metrics.rounds.txt"
    keep_local
}
