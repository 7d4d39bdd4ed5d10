# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# The instruction-count profiles behind the revocation and durable rows. Revocation: callgrind
# counts the user-space
# instructions of each holder's teardown (DaxPin: LeaseCore.revoke(reason:onWatcher:requireLease:),
# by its exact mangled name, looked up in the binary: a pattern went stale when the signature
# changed and silently counted nothing; its closures must not match, or they would toggle
# collection off again; all it calls are counted;
# raw C: lease_holder's teardown()) over PROFILE_BREAKS breaks of a lease with 16 regions.
# Kernel work (the system calls themselves) is not counted: it is the same for both. The
# binary is run without its DWARF: valgrind 3.19 cannot read the Swift toolchain's; the
# symbol table, which names the functions, stays.
PROFILE_BREAKS=5
PROFILE_REGIONS=16

suite_profile() {
    local daxpin="$LOCAL/DaxPinBench.nodebug"
    objcopy --strip-debug "$BIN/DaxPinBench" "$daxpin"
    local revoke
    revoke=$(nm "$daxpin" | awk '$3 ~ /LeaseCoreC6revoke6reason9onWatcher.*tF$/ { print $3 }')
    [[ -n $revoke ]] || { echo "bench: no LeaseCore.revoke symbol in DaxPinBench" >&2; return 1; }
    say "profile: callgrind, DaxPin holder, $PROFILE_BREAKS breaks x $PROFILE_REGIONS regions"
    "$PEERS/breaker" -- /usr/bin/valgrind --tool=callgrind --toggle-collect="$revoke" \
        --callgrind-out-file="$OUT/profile.daxpin.callgrind" \
        "$daxpin" hold "$TMP" 1 $PROFILE_REGIONS 65536 $PROFILE_BREAKS "$DEV" >"$OUT/profile.daxpin.breaks.txt" 2>"$OUT/profile.daxpin.log" \
        || { tail -n 20 "$OUT/profile.daxpin.log" >&2; return 1; }
    say "profile: callgrind, raw C holder"
    "$PEERS/breaker" -- /usr/bin/valgrind --tool=callgrind --toggle-collect='teardown' \
        --callgrind-out-file="$OUT/profile.c.callgrind" \
        "$PEERS/lease_holder" "$TMP" $PROFILE_REGIONS 65536 $PROFILE_BREAKS "$DEV" >"$OUT/profile.c.breaks.txt" 2>"$OUT/profile.c.log" \
        || { tail -n 20 "$OUT/profile.c.log" >&2; return 1; }
    local kind
    for kind in daxpin c; do
        callgrind_annotate --inclusive=yes "$OUT/profile.$kind.callgrind" 2>/dev/null | head -n 60 >"$OUT/profile.$kind.txt"
    done
    # DaxPin revokes once more than it is broken: the holder drops its last lease at exit.
    echo "daxpin $((PROFILE_BREAKS + 1)) c $PROFILE_BREAKS regions $PROFILE_REGIONS" >"$OUT/profile.teardowns.txt"
    rm -f "$daxpin"
}

# The durable row: instructions per durable 4 KiB block in each client process (DaxPin's
# one-sided client and rpma_durable's), from callgrind over whole client runs: one with
# PROFILE_BLOCKS + 200 blocks minus one with PROFILE_BLOCKS, so that neither set-up and
# connection nor one-time costs of the first blocks are counted.
PROFILE_BLOCKS=100

# profile_durable_client KIND PORT BLOCKS: one client of KIND under callgrind; prints its Ir.
profile_durable_client() {
    local out="$OUT/profile.durable.$1.$3.callgrind" client
    if [[ $1 == daxpin ]]; then
        client=("$LOCAL/daxpin-client.nodebug" --address "$DAXPIN_RDMA_ADDR" --port "$2" --block-size 4096
                --queue-depth 1 --persist-every 1 --blocks "$3" --persist-method read --static-data --log-level warning)
    else
        client=("$PEERS/rpma_durable" client "$DAXPIN_RDMA_ADDR" "$2" 4096 "$3")
    fi
    timeout 600 /usr/bin/valgrind --tool=callgrind --callgrind-out-file="$out" "${client[@]}" \
        >>"$OUT/profile.durable.log" 2>&1 || { echo "bench: profiled $1 client failed" >&2; return 1; }
    sed -n 's/^\(totals\|summary\):[[:space:]]*\([0-9]*\).*/\2/p' "$out" | head -n 1
}

suite_profile_durable() {
    local kind port=7900 server many none line=""
    objcopy --strip-debug "$APPS/daxpin-client" "$LOCAL/daxpin-client.nodebug"
    for kind in daxpin rpma; do
        say "profile: callgrind, $kind durable client, $PROFILE_BLOCKS blocks"
        port=$((port + 1))
        if [[ $kind == daxpin ]]; then
            "$APPS/daxpin-server" --file "$DAXPIN_DEVDAX_PATH" --length $((64 << 20)) --direct-write-to-pmem \
                --address "$DAXPIN_RDMA_ADDR" --port "$port" --log-level warning >"$LOCAL/profile.server.out" 2>>"$OUT/profile.durable.log" &
        else
            "$PEERS/rpma_durable" server "$DAXPIN_DEVDAX_PATH" $((64 << 20)) "$DAXPIN_RDMA_ADDR" "$port" 2 \
                >"$LOCAL/profile.server.out" 2>>"$OUT/profile.durable.log" &
        fi
        server=$!
        wait_for_line "$LOCAL/profile.server.out" '^ready' 60 "$server" || { stop_process "$server" 30 TERM; return 1; }
        many=$(profile_durable_client "$kind" "$port" $((PROFILE_BLOCKS + 200))) && none=$(profile_durable_client "$kind" "$port" "$PROFILE_BLOCKS") \
            || { stop_process "$server" 30 TERM; return 1; }
        if [[ $kind == daxpin ]]; then stop_process "$server" 30 TERM || true; else stop_process "$server" 30 || true; fi
        line+="$kind $many $none "
    done
    echo "${line}blocks 200" >"$OUT/profile.durable.txt"
    for kind in daxpin rpma; do
        callgrind_annotate --inclusive=yes "$OUT/profile.durable.$kind.$((PROFILE_BLOCKS + 200)).callgrind" 2>/dev/null | head -n 60 \
            >"$OUT/profile.durable.$kind.txt"
    done
    rm -f "$LOCAL/daxpin-client.nodebug"
}
