# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# The instruction-count profiles behind the revocation and durable rows. Revocation: callgrind
# counts the user-space instructions of each holder's teardown over PROFILE_BREAKS breaks of a
# lease with PROFILE_REGIONS regions: DaxPin's LeaseCore.revoke(reason:onWatcher:requireLease:)
# (by its exact mangled name, looked up in the binary: a pattern went stale when the signature
# changed and silently counted nothing; its closures must not match, or they would toggle
# collection off again) and lease_holder's teardown(), each with all it calls. A dump after
# the call that releases the lease (DaxPin: daxpin_set_lease; C: fcntl) and after each teardown
# splits a teardown into the part the breaker waits for (up to F_UNLCK) and the bookkeeping
# after it. Kernel work (the system calls themselves) is not counted: it is the same for both.
# The binary is run without its DWARF: valgrind 3.19 cannot read the Swift toolchain's; the
# symbol table, which names the functions, stays.
PROFILE_BREAKS=5
PROFILE_REGIONS=16

# profile_teardowns KIND FUNCTION UNLOCK HOLDER...: runs HOLDER under the breaker and
# callgrind, collecting inside FUNCTION; writes profile.KIND.parts.txt, one line per non-empty
# dump in order ("unlocked IR": up to and including a call of UNLOCK, "end IR": the rest of a
# teardown), and profile.KIND.txt, the listing of a steady-state teardown up to F_UNLCK.
profile_teardowns() {
    local kind=$1 function=$2 unlock=$3 out="$OUT/profile.$1.callgrind" part ir trigger
    shift 3
    rm -f "$out" "$out".*
    "$PEERS/breaker" -- /usr/bin/valgrind --tool=callgrind --toggle-collect="$function" \
        --dump-after="$function" --dump-after="$unlock" --callgrind-out-file="$out" \
        "$@" >"$OUT/profile.$kind.breaks.txt" 2>"$OUT/profile.$kind.log" \
        || { tail -n 20 "$OUT/profile.$kind.log" >&2; return 1; }
    : >"$OUT/profile.$kind.parts.txt"
    local unlocked=()
    for part in $(ls "$out".* | sort -V); do
        ir=$(sed -n 's/^summary:[[:space:]]*\([0-9]*\).*/\1/p' "$part" | head -n 1)
        [[ -n $ir && $ir != 0 ]] || continue
        # A pattern's dump names the function it matched: every dump but FUNCTION's is UNLOCK's.
        trigger=end
        if ! grep -qxF -- "desc: Trigger: --dump-after=$function" "$part"; then trigger=unlocked; unlocked+=("$part"); fi
        echo "$trigger $ir" >>"$OUT/profile.$kind.parts.txt"
    done
    [[ ${#unlocked[@]} -ge 3 ]] || { echo "bench: profile $kind: fewer than 3 teardowns reached F_UNLCK" >&2; return 1; }
    callgrind_annotate --inclusive=yes "${unlocked[2]}" 2>/dev/null | head -n 60 >"$OUT/profile.$kind.txt"
    rm -f "$out" "$out".*
}

# profile_metrics_emission FUNCTION HOLDER...: runs HOLDER (with a metrics backend) under the
# breaker and callgrind, collecting inside FUNCTION (LeaseMetrics.revoked: the metrics of one
# revocation, recorded after F_UNLCK off the watcher thread) with a dump after each call; writes
# profile.metrics.parts.txt, one line per call with its instructions.
profile_metrics_emission() {
    local function=$1 out="$OUT/profile.metrics.callgrind" part ir
    shift
    rm -f "$out" "$out".*
    DAXPIN_BENCH_METRICS=1 "$PEERS/breaker" -- /usr/bin/valgrind --tool=callgrind --toggle-collect="$function" \
        --dump-after="$function" --callgrind-out-file="$out" \
        "$@" >"$OUT/profile.metrics.breaks.txt" 2>"$OUT/profile.metrics.log" \
        || { tail -n 20 "$OUT/profile.metrics.log" >&2; return 1; }
    : >"$OUT/profile.metrics.parts.txt"
    for part in $(ls "$out".* | sort -V); do
        ir=$(sed -n 's/^summary:[[:space:]]*\([0-9]*\).*/\1/p' "$part" | head -n 1)
        [[ -n $ir && $ir != 0 ]] && echo "$ir" >>"$OUT/profile.metrics.parts.txt"
    done
    rm -f "$out" "$out".*
}

suite_profile() {
    local daxpin="$LOCAL/DaxPinBench.nodebug" revoke emission
    objcopy --strip-debug "$DAXPINBENCH" "$daxpin"
    revoke=$(nm "$daxpin" | awk '$3 ~ /LeaseCoreC6revoke6reason2by.*tF$/ { print $3 }')
    [[ -n $revoke ]] || { echo "bench: no LeaseCore.revoke symbol in DaxPinBench" >&2; return 1; }
    emission=$(nm "$daxpin" | awk '$3 ~ /12LeaseMetricsO7revoked6memory6reason8teardown.*FZ(Tf[0-9a-z_]*)?$/ { print $3 }')
    [[ -n $emission ]] || { echo "bench: no LeaseMetrics.revoked symbol in DaxPinBench" >&2; return 1; }
    say "profile: callgrind, DaxPin holder, $PROFILE_BREAKS breaks x $PROFILE_REGIONS regions"
    profile_teardowns daxpin "$revoke" daxpin_set_lease "$daxpin" hold "$TMP" 1 $PROFILE_REGIONS 65536 $PROFILE_BREAKS "$DEV" || return 1
    # The same with a metrics backend bootstrapped: the teardown must not change up to F_UNLCK.
    say "profile: callgrind, DaxPin holder with a metrics backend"
    DAXPIN_BENCH_METRICS=1 profile_teardowns daxpin-metrics "$revoke" daxpin_set_lease "$daxpin" hold "$TMP" 1 $PROFILE_REGIONS 65536 $PROFILE_BREAKS "$DEV" || return 1
    say "profile: callgrind, the metrics of each revocation"
    profile_metrics_emission "$emission" "$daxpin" hold "$TMP" 1 $PROFILE_REGIONS 65536 $PROFILE_BREAKS "$DEV" || return 1
    say "profile: callgrind, raw C holder"
    profile_teardowns c teardown '*fcntl*' "$PEERS/lease_holder" "$TMP" $PROFILE_REGIONS 65536 $PROFILE_BREAKS "$DEV" || return 1
    echo "breaks $PROFILE_BREAKS regions $PROFILE_REGIONS" >"$OUT/profile.teardowns.txt"
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
