# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# On-Demand Paging, on a kernel whose rxe advertises it (7.2 in the testbed; on 6.1 the suite
# writes on_demand_paging.pending). rxe's ODP fails DaxPin's check there, so the series pass
# over it (DaxPinBench's testing switch) and write only page-aligned 4 KiB blocks on rxe3
# (path MTU 4096, one packet per block, which rxe places right). Every series alternates its
# variants in one process or in alternating rounds, side by side in this boot.
ODP_PIN_BYTES=${DAXPIN_BENCH_ODP_PIN_BYTES:-268435456}   # 256 MiB
ODP_PIN_ITERATIONS=${DAXPIN_BENCH_ODP_PIN_ITERATIONS:-7}
ODP_TOUCH_BYTES=${DAXPIN_BENCH_ODP_TOUCH_BYTES:-16777216}   # 16 MiB: 4096 blocks
ODP_TOUCH_ROUNDS=${DAXPIN_BENCH_ODP_TOUCH_ROUNDS:-3}
ODP_CHECKS=${DAXPIN_BENCH_ODP_CHECKS:-5}
ODP_REV_ROUNDS=${DAXPIN_BENCH_ODP_REV_ROUNDS:-7}
ODP_REV_REPS=${DAXPIN_BENCH_ODP_REV_REPS:-7}

suite_on_demand_paging() {
    local round i
    if ! ibv_devinfo -v -d "$DEV" | grep -q ODP_SUPPORT; then
        echo "$DEV has no On-Demand Paging on Linux $(uname -r)" >"$OUT/on_demand_paging.pending"
        return 0
    fi
    say "odp: the check's cost, $ODP_CHECKS fresh processes per device"
    for ((i = 0; i < ODP_CHECKS; i++)); do
        for dev in "$DEV" "$DAXPIN_JUMBO_DEVICE"; do
            echo "$dev $("$DAXPINBENCH" odp-check "$dev")" >>"$LOCAL/on_demand_paging.check.txt"
        done
    done
    say "odp: pin + register $ODP_PIN_BYTES bytes, pinned against ODP, $ODP_PIN_ITERATIONS iterations"
    "$DAXPINBENCH" odp-pin "$TMP" "$DAXPIN_FSDAX_EXT4_DIR" "$DAXPIN_DEVDAX_PATH" "$ODP_PIN_BYTES" \
        "$ODP_PIN_ITERATIONS" "$DEV" >>"$LOCAL/on_demand_paging.pin.txt"
    say "odp: first-touch WRITEs over $ODP_TOUCH_BYTES bytes, $ODP_TOUCH_ROUNDS rounds"
    "$DAXPINBENCH" odp-first-touch "$TMP" "$ODP_TOUCH_BYTES" "$ODP_TOUCH_ROUNDS" \
        "$DAXPIN_JUMBO_DEVICE" >>"$LOCAL/on_demand_paging.touch.txt"
    # Revocation of a 1-region lease, pinned against ODP, alternating holders by round.
    for ((round = 1; round <= ODP_REV_ROUNDS; round++)); do
        say "odp: revocation, 1 region, round $round/$ODP_REV_ROUNDS"
        if (( round % 2 )); then revocation_break daxpin 1 "$ODP_REV_REPS" odp_rev; revocation_break daxpin-odp 1 "$ODP_REV_REPS" odp_rev
        else revocation_break daxpin-odp 1 "$ODP_REV_REPS" odp_rev; revocation_break daxpin 1 "$ODP_REV_REPS" odp_rev; fi
    done
    keep_local
}
