# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# The zero-copy rows (Benchmarks/targets.json, report zero-copy, declares each one's estimator and
# target), for the newest kernel with the fixed rxe (Scripts/testbed --kernel newest --rxe
# fixed), where DaxPin's On-Demand Paging check passes and `.auto` pins fs-dax through ODP. On
# any other rxe the suite writes zero_copy.pending: the rows compare zero copy the library
# chose, never a check passed over. Files go on the guest's ext4-dax file system; every series
# alternates its sides in one process (DaxPinBench zero-copy-*), and the check's cost is
# taken in fresh processes, one sample each.
ZC_WRITE_BYTES=$((8 << 20))   # the 64 KiB row's export: one pass is 128 WRITEs
ZC_WRITE_BLOCK=65536
ZC_WRITE_ROUNDS=${DAXPIN_BENCH_ZC_WRITE_ROUNDS:-21}
ZC_DURABLE_BYTES=$((8 << 20))
ZC_DURABLE_BLOCK=4096
ZC_DURABLE_BLOCKS=512   # per batch
ZC_DURABLE_ROUNDS=${DAXPIN_BENCH_ZC_DURABLE_ROUNDS:-21}
ZC_TOUCH_BYTES=$((16 << 20))   # 4096 pages of 4 KiB
ZC_TOUCH_ROUNDS=${DAXPIN_BENCH_ZC_TOUCH_ROUNDS:-9}
ZC_CHECKS=${DAXPIN_BENCH_ZC_CHECKS:-15}
ZC_PIN_BYTES=$((64 << 20))
ZC_PIN_ROUNDS=${DAXPIN_BENCH_ZC_PIN_ROUNDS:-9}

suite_zero_copy() {
    local i
    if [[ ${DAXPIN_RXE:-stock} != fixed ]]; then
        echo "rxe is ${DAXPIN_RXE:-stock}, not the fixed one: run with Scripts/testbed --kernel newest --rxe fixed" >"$OUT/zero_copy.pending"
        return 0
    fi
    { echo "kernel $(uname -r)"
      # An insmod-ed module has no srcversion in sysfs: its file's hash names the build.
      echo "rxe ${DAXPIN_RXE} (${DAXPIN_RXE_MODULE:-?}, sha256 $(sha256sum "${DAXPIN_RXE_MODULE:-/dev/null}" | cut -c1-16))"
      echo "rdma_core ${DAXPIN_BENCH_RDMA_CORE:-?}"
      echo "commit ${DAXPIN_BENCH_COMMIT:-?}"
      echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
      echo "device $DEV, active_mtu $(ibv_devinfo -d "$DEV" | sed -n 's/.*active_mtu:[[:space:]]*//p' | head -n1)"
      echo "fsdax $DAXPIN_FSDAX_EXT4_DIR ($(findmnt -no FSTYPE,OPTIONS -T "$DAXPIN_FSDAX_EXT4_DIR"))"
    } >"$OUT/zero_copy.environment.txt"
    # Check cost first: each process starts with no cached verdict.
    say "zero copy: the ODP check on ext4-dax, $ZC_CHECKS fresh processes"
    : >"$LOCAL/zero_copy.check.txt"
    for ((i = 0; i < ZC_CHECKS; i++)); do
        timeout -k 10 120 "$DAXPINBENCH" zero-copy-check "$DEV" "$DAXPIN_FSDAX_EXT4_DIR" >>"$LOCAL/zero_copy.check.txt" \
            || { keep_local; return 1; }
    done
    say "zero copy: 64 KiB WRITEs + persist per pass, ODP against staged, $ZC_WRITE_ROUNDS rounds"
    timeout -k 10 600 "$DAXPINBENCH" zero-copy-write "$DAXPIN_FSDAX_EXT4_DIR" "$ZC_WRITE_BYTES" "$ZC_WRITE_BLOCK" \
        "$ZC_WRITE_ROUNDS" "$DEV" >"$LOCAL/zero_copy.write.txt" || { keep_local; return 1; }
    say "zero copy: durable 4 KiB writes, ODP against staged, $ZC_DURABLE_ROUNDS rounds"
    timeout -k 10 600 "$DAXPINBENCH" zero-copy-durable "$DAXPIN_FSDAX_EXT4_DIR" "$ZC_DURABLE_BYTES" "$ZC_DURABLE_BLOCK" \
        "$ZC_DURABLE_BLOCKS" "$ZC_DURABLE_ROUNDS" "$DEV" >"$LOCAL/zero_copy.durable.txt" || { keep_local; return 1; }
    say "zero copy: first touch over $ZC_TOUCH_BYTES bytes, prefetched against not, $ZC_TOUCH_ROUNDS rounds"
    timeout -k 10 600 "$DAXPINBENCH" zero-copy-first-touch "$DAXPIN_FSDAX_EXT4_DIR" "$ZC_TOUCH_BYTES" "$ZC_TOUCH_ROUNDS" \
        "$DEV" >"$LOCAL/zero_copy.touch.txt" || { keep_local; return 1; }
    say "zero copy: pin + register $ZC_PIN_BYTES bytes, ext4-dax ODP against staged and tmpfs ODP against pinned, $ZC_PIN_ROUNDS rounds"
    timeout -k 10 600 "$DAXPINBENCH" zero-copy-pin "$DAXPIN_FSDAX_EXT4_DIR" "$TMP" "$ZC_PIN_BYTES" "$ZC_PIN_ROUNDS" \
        "$DEV" >"$LOCAL/zero_copy.pin.txt" || { keep_local; return 1; }
    keep_local
}
