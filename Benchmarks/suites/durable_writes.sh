# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Durable write throughput, write + persist ack, one 4 KiB block at a time (queue depth 1),
# into the first 64 MiB of device-dax:
#   DaxPin (daxpin, the row): daxpin-server --direct-write-to-pmem exports it; daxpin-client
#            --persist-method read WRITEs a block and posts an 8-byte RDMA READ of it right
#            after; the READ's completion is the durability ack (the appliance persistency
#            method, the same one-sided read-after-write librpma's flush does: like for like).
#   DaxPin (daxpin-send, context): the plain server and daxpin-client --persist-method send:
#            the client posts the WRITE and, right after it, a persist SEND; the server flushes
#            the CPU cache lines and SENDs the ack (the general-purpose server method).
#   librpma: peers/rpma_durable.c, rpma_write + rpma_flush(PERSISTENT) per block (librpma's
#            read-after-write flush, see the file; its server declares direct write to pmem).
# DaxPin's client runs with --static-data (each slot's buffer filled once): rpma_durable does
# not generate data per block either.
# Both clients are timed the same way, from outside, as whole client processes: one run
# writes DURABLE_BLOCKS blocks, then a second client of the same server writes none (start,
# connect, disconnect, exit). Throughput = DURABLE_BLOCKS x 4 KiB / (t_blocks - t_none), so
# neither side's set-up is counted. Each run has its own server and port; DaxPin and librpma
# alternate, in an order that flips every run. One number per run in
# durable.{daxpin,daxpin-send,rpma}.txt (bytes per second); the timings and the clients' output
# are in durable.*.log. Each client's own timing of its block loop (a cross-check without
# process start-up, whose jitter the subtraction carries: DaxPin's client starts in about
# 1.2 s, rpma_durable in about 0.45 s) goes to durable.*.loop.txt. DaxPin's client does not wrap: at
# most 16384 blocks fit the 64 MiB export.
DURABLE_BLOCK=4096
DURABLE_BLOCKS=${DAXPIN_BENCH_DURABLE_BLOCKS:-8000}
DURABLE_RUNS=${DAXPIN_BENCH_DURABLE_RUNS:-8}
DURABLE_LENGTH=$((64 << 20))   # a multiple of device-dax's 2 MiB alignment; room for 16384 blocks

# durable_client KIND PORT BLOCKS: runs one client; sets DURABLE_NS to its wall time.
durable_client() {
    local kind=$1 port=$2 blocks=$3 out="$OUT/durable.$1.client.out" log="$OUT/durable.$1.log" t0 t1 status=0
    t0=$(date +%s%N)
    if [[ $kind == daxpin* ]]; then
        local method=read; [[ $kind == daxpin-send ]] && method=send
        timeout 300 "$APPS/daxpin-client" --address "$DAXPIN_RDMA_ADDR" --port "$port" --block-size "$DURABLE_BLOCK" \
            --queue-depth 1 --persist-every 1 --persist-method "$method" --static-data --blocks "$blocks" \
            --log-level warning >"$out" 2>>"$log" || status=$?
    else
        timeout 300 "$PEERS/rpma_durable" client "$DAXPIN_RDMA_ADDR" "$port" "$DURABLE_BLOCK" "$blocks" >"$out" 2>>"$log" || status=$?
    fi
    t1=$(date +%s%N)
    DURABLE_NS=$((t1 - t0))
    { echo "$kind port $port blocks $blocks: exit $status, $((DURABLE_NS / 1000)) µs"; grep -v '^durable' "$out"; } >>"$log"
    [[ $status -eq 0 ]] || return 1
    if [[ $kind == daxpin* ]]; then   # every block acknowledged durable
        local acks; acks=$(grep -c '^durable' "$out" || true)
        [[ $acks -eq $blocks ]] || { echo "$acks durable acks, expected $blocks" >>"$log"; return 1; }
        [[ $blocks -eq 0 ]] || sed -nE 's/^throughput: wrote [0-9]+ bytes \(([0-9.]+) MiB\/s\).*/\1/p' "$out" \
            | awk '{ printf "%d\n", $1 * 1048576 }' >>"$OUT/durable.$kind.loop.txt"
    elif [[ $blocks -gt 0 ]]; then   # cross-check: the peer's own timing of its loop
        awk '$1 == "BYTES" && $4 > 0 { printf "%d\n", $2 / $4 }' "$out" >>"$OUT/durable.rpma.loop.txt"
    fi
}

# durable_run KIND PORT: one run; appends bytes/s to durable.KIND.txt.
durable_run() {
    local kind=$1 port=$2 log="$OUT/durable.$1.log" server full none status=0
    local server_out="$OUT/durable.$1.server.out"
    if [[ $kind == daxpin* ]]; then
        local pmem_flag=(); [[ $kind == daxpin ]] && pmem_flag=(--direct-write-to-pmem)
        "$APPS/daxpin-server" --file "$DAXPIN_DEVDAX_PATH" --length "$DURABLE_LENGTH" "${pmem_flag[@]}" \
            --address "$DAXPIN_RDMA_ADDR" --port "$port" --log-level warning >"$server_out" 2>>"$log" &
    else
        "$PEERS/rpma_durable" server "$DAXPIN_DEVDAX_PATH" "$DURABLE_LENGTH" "$DAXPIN_RDMA_ADDR" "$port" 2 >"$server_out" 2>>"$log" &
    fi
    server=$!
    wait_for_line "$server_out" '^ready' 60 "$server" || { cat "$server_out" >>"$log"; stop_process "$server" 30 TERM; return 1; }
    if durable_client "$kind" "$port" "$DURABLE_BLOCKS"; then
        full=$DURABLE_NS
        durable_client "$kind" "$port" 0 && none=$DURABLE_NS || status=1
    else
        status=1
    fi
    if [[ $kind == daxpin* ]]; then stop_process "$server" 30 TERM || status=1
    elif [[ $status -eq 0 ]]; then stop_process "$server" 30 || status=1   # exits by itself after its 2 clients
    else stop_process "$server" 30 TERM; fi
    [[ $status -eq 0 && $full -gt $none ]] || { echo "durable_writes: $kind run on port $port failed; see $log" >&2; tail -n 5 "$log" >&2; return 1; }
    echo "$kind port $port: $((full / 1000)) - $((none / 1000)) µs for $DURABLE_BLOCKS blocks" >>"$log"
    echo $(( DURABLE_BLOCKS * DURABLE_BLOCK * 1000000000 / (full - none) )) >>"$OUT/durable.$kind.txt"
}

suite_durable_writes() {
    local run kind port
    for kind in daxpin daxpin-send rpma; do : >"$OUT/durable.$kind.txt"; : >"$OUT/durable.$kind.log"; done
    for kind in daxpin daxpin-send rpma; do : >"$OUT/durable.$kind.loop.txt"; done
    for ((run = 1; run <= DURABLE_RUNS; run++)); do
        # The order flips every run (A B C, C B A, ...): neither side always runs first.
        local order=(daxpin daxpin-send rpma)
        ((run % 2)) || order=(rpma daxpin-send daxpin)
        say "durable writes run $run/$DURABLE_RUNS: $DURABLE_BLOCKS x $DURABLE_BLOCK B, write + persist ack (${order[*]})"
        for kind in "${order[@]}"; do
            case $kind in daxpin) port=$((7600 + run)) ;; rpma) port=$((7700 + run)) ;; *) port=$((7800 + run)) ;; esac
            durable_run "$kind" "$port" || return 1
        done
    done
}
