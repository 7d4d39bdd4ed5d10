# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Durable write throughput, write + persist ack, one 4 KiB block at a time (queue depth 1),
# into the first 64 MiB of device-dax:
#   DaxPin:  daxpin-server exports it; daxpin-client WRITEs a block, asks the server to
#            persist it (SEND; the server flushes the CPU cache lines, SENDs the ack), next.
#   librpma: peers/rpma_durable.c, rpma_write + rpma_flush(PERSISTENT) per block (librpma's
#            read-after-write flush, see the file).
# Both clients are timed the same way, as a whole client process (connect, all blocks,
# disconnect), so set-up is in both; DURABLE_BLOCKS is sized for a few seconds under
# emulation. Each run gets its own port; the runs alternate. One number per run in
# durable.{daxpin,rpma}.txt: bytes per second. Logs in durable.*.log.
DURABLE_BLOCK=4096
DURABLE_BLOCKS=${DAXPIN_DURABLE_BLOCKS:-2000}
DURABLE_RUNS=${DAXPIN_DURABLE_RUNS:-5}
DURABLE_LENGTH=$((64 << 20))

# durable_wait_for FILE PATTERN SECONDS PID: the pattern appears, or the process died / time ran out.
durable_wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || { echo "durable_writes: server exited before '$2'" >&2; return 1; }
        sleep 0.1
    done
    echo "durable_writes: timed out waiting for '$2' in $1" >&2
    return 1
}

# durable_stop PID [SIGNAL]: signals (unless no SIGNAL), waits up to 30 s, then SIGKILL; returns its status.
durable_stop() {
    local pid=$1 i
    [[ -z "${2:-}" ]] || kill "-$2" "$pid" 2>/dev/null
    for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "durable_writes: server $pid did not stop within 30 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    wait "$pid"
}

# durable_run KIND PORT: one run; appends bytes/s to durable.KIND.txt.
durable_run() {
    local kind=$1 port=$2 log="$OUT/durable.$1.log" server t0 t1 status=0
    local server_out="$OUT/durable.$1.server.out" client_out="$OUT/durable.$1.client.out"
    if [[ $kind == daxpin ]]; then
        "$APPS/daxpin-server" --file "$DAXPIN_DEVDAX_PATH" --length "$DURABLE_LENGTH" \
            --address "$DAXPIN_RDMA_ADDR" --port "$port" --log-level warning >"$server_out" 2>>"$log" &
    else
        "$PEERS/rpma_durable" server "$DAXPIN_DEVDAX_PATH" "$DURABLE_LENGTH" "$DAXPIN_RDMA_ADDR" "$port" >"$server_out" 2>>"$log" &
    fi
    server=$!
    durable_wait_for "$server_out" '^ready' 60 "$server" || { cat "$server_out" >>"$log"; durable_stop "$server" TERM; return 1; }
    t0=$(date +%s%N)
    if [[ $kind == daxpin ]]; then
        timeout 300 "$APPS/daxpin-client" --address "$DAXPIN_RDMA_ADDR" --port "$port" --block-size "$DURABLE_BLOCK" \
            --queue-depth 1 --persist-every 1 --blocks "$DURABLE_BLOCKS" --log-level warning >"$client_out" 2>>"$log" || status=$?
    else
        timeout 300 "$PEERS/rpma_durable" client "$DAXPIN_RDMA_ADDR" "$port" "$DURABLE_BLOCK" "$DURABLE_BLOCKS" \
            >"$client_out" 2>>"$log" || status=$?
    fi
    t1=$(date +%s%N)
    { echo "== $kind port $port: client exit $status, $(( (t1 - t0) / 1000000 )) ms"; grep -v '^durable' "$client_out"; } >>"$log"
    if [[ $kind == daxpin ]]; then
        # Every block must have been acknowledged durable.
        local acks; acks=$(grep -c '^durable' "$client_out" || true)
        [[ $status -ne 0 || $acks -eq $DURABLE_BLOCKS ]] || { echo "durable_writes: $acks durable acks, expected $DURABLE_BLOCKS" >>"$log"; status=1; }
        durable_stop "$server" TERM || status=1
    else
        durable_stop "$server" || status=1   # exits by itself once the client disconnected
    fi
    [[ $status -eq 0 ]] || { echo "durable_writes: $kind run on port $port failed; see $log" >&2; tail -n 5 "$log" >&2; return 1; }
    echo $(( DURABLE_BLOCKS * DURABLE_BLOCK * 1000000000 / (t1 - t0) )) >>"$OUT/durable.$kind.txt"
}

suite_durable_writes() {
    local run
    : >"$OUT/durable.daxpin.txt"; : >"$OUT/durable.rpma.txt"
    for ((run = 1; run <= DURABLE_RUNS; run++)); do
        say "durable writes run $run/$DURABLE_RUNS: $DURABLE_BLOCKS x $DURABLE_BLOCK B, write + persist ack (DaxPin, librpma)"
        durable_run daxpin $((7600 + run)) || return 1
        durable_run rpma $((7700 + run)) || return 1
    done
}
