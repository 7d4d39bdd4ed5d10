# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Durable write throughput, write + persist ack, one 4 KiB block at a time (queue depth 1),
# into device-dax.
#
# The gated row, paired in one process (durable.paired.txt): DaxPinBench durable-paired is a
# client of two servers at once, daxpin-server --direct-write-to-pmem exporting the first 64 MiB
# and rpma_durable's server the 64 MiB from 128 MiB on. It alternates DURABLE_PAIRED_BATCH
# blocks through DaxPin (RDMAConnection.postWrite of the WRITE and an 8-byte RDMA READ of it
# behind it, in one post; the READ's completion is the ack, SNIA's appliance persistency
# method, as daxpin-client --persist-method read does it) with as many through librpma
# (peers/rpma_durable.c built as a shared library: rpma_write + rpma_flush(PERSISTENT), which
# librpma implements as the same read after write), DURABLE_PAIRED_BATCHES pairs per round, in
# an order that flips every pair; DURABLE_PAIRED_ROUNDS rounds, each with its own servers.
# Lines "<round> DAXPIN|RPMA <bytes per second of a batch>". Why paired: measured as separate client
# processes (below), the ratio read 1.03, 0.79, 0.83 and 0.92 in four boots, because each
# process meets its own spell of the emulator.
#
# Context, separate processes (DURABLE_RUNS runs, the order flipping every run):
#   DaxPin (daxpin, the example apps end to end): daxpin-server --direct-write-to-pmem exports
#            the first 64 MiB; daxpin-client --persist-method read WRITEs a block and posts an
#            8-byte RDMA READ of it right after (like for like with librpma's flush).
#   DaxPin (daxpin-send): the plain server and daxpin-client --persist-method send:
#            the client posts the WRITE and, right after it, a persist SEND; the server flushes
#            the CPU cache lines and SENDs the ack (the general-purpose server method).
#   librpma: peers/rpma_durable as its own client process (its server declares direct write
#            to pmem, see the file).
# DaxPin's client runs with --static-data (its slot filled once): rpma_durable does not
# generate data per block either. Each client process is timed from outside: one run writes
# DURABLE_BLOCKS blocks, then a second client of the same server writes none (start, connect,
# disconnect, exit); throughput = DURABLE_BLOCKS x 4 KiB / (t_blocks - t_none), one number per
# run in durable.{daxpin,daxpin-send,rpma}.txt (bytes per second; timings and output in
# durable.*.log). Each client's own timing of its block loop, without process start-up, goes
# to durable.*.loop.txt. DaxPin's client does not wrap: at most 16384 blocks fit 64 MiB.
DURABLE_BLOCK=4096
DURABLE_BLOCKS=${DAXPIN_BENCH_DURABLE_BLOCKS:-8000}
DURABLE_RUNS=${DAXPIN_BENCH_DURABLE_RUNS:-4}
DURABLE_PAIRED_ROUNDS=${DAXPIN_BENCH_DURABLE_PAIRED_ROUNDS:-3}
DURABLE_PAIRED_BATCHES=100
DURABLE_PAIRED_BATCH=50
DURABLE_PAIRED_WARMUP=100
DURABLE_RPMA_OFFSET=$((128 << 20))   # rpma_durable's export in the paired runs: past DaxPin's
DURABLE_LENGTH=$((64 << 20))   # a multiple of device-dax's 2 MiB alignment; room for 16384 blocks

# durable_client KIND PORT BLOCKS: runs one client; sets DURABLE_NS to its wall time.
durable_client() {
    local kind=$1 port=$2 blocks=$3 out="$OUT/durable.$1.client.out" log="$OUT/durable.$1.log" t0 t1 status=0
    t0=$(date +%s%N)
    if [[ $kind == daxpin* ]]; then
        local method=read
        case $kind in daxpin-send) method=send ;; daxpin-flush) method=flush ;; esac
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

# durable_start_server KIND PORT OUT LOG [CONNECTIONS OFFSET]: starts KIND's server in the
# background and waits for its "ready" line; sets DURABLE_SERVER to its pid. daxpin: daxpin-server
# --direct-write-to-pmem; daxpin-send and daxpin-flush: the plain daxpin-server (which offers
# native RDMA FLUSH for device-dax where its build and the kernel allow it); rpma: rpma_durable's server,
# which exits by itself after CONNECTIONS clients (default 2) and exports from OFFSET (default 0).
# Every run of either series starts its servers here, so that they are started alike.
durable_start_server() {
    local kind=$1 port=$2 out=$3 log=$4 connections=${5:-2} offset=${6:-0}
    if [[ $kind == daxpin* ]]; then
        local pmem_flag=(); [[ $kind == daxpin ]] && pmem_flag=(--direct-write-to-pmem)
        "$APPS/daxpin-server" --file "$DAXPIN_DEVDAX_PATH" --length "$DURABLE_LENGTH" "${pmem_flag[@]}" \
            --address "$DAXPIN_RDMA_ADDR" --port "$port" --log-level warning >"$out" 2>>"$log" &
    else
        "$PEERS/rpma_durable" server "$DAXPIN_DEVDAX_PATH" "$DURABLE_LENGTH" "$DAXPIN_RDMA_ADDR" "$port" "$connections" "$offset" \
            >"$out" 2>>"$log" &
    fi
    DURABLE_SERVER=$!
    wait_for_line "$out" '^ready' 60 "$DURABLE_SERVER" || { cat "$out" >>"$log"; stop_process "$DURABLE_SERVER" 30 TERM; return 1; }
}

# durable_stop_server KIND PID STATUS: stops a server. rpma_durable's exits by itself after its
# clients, so after a good run (STATUS 0) it is only waited for; any other is terminated.
durable_stop_server() {
    if [[ $1 == daxpin* || $3 -ne 0 ]]; then stop_process "$2" 30 TERM; else stop_process "$2" 30; fi
}

# durable_run KIND PORT: one run; appends bytes/s to durable.KIND.txt.
durable_run() {
    local kind=$1 port=$2 log="$OUT/durable.$1.log" server full none status=0
    durable_start_server "$kind" "$port" "$OUT/durable.$1.server.out" "$log" || return 1
    server=$DURABLE_SERVER
    if durable_client "$kind" "$port" "$DURABLE_BLOCKS"; then
        full=$DURABLE_NS
        durable_client "$kind" "$port" 0 && none=$DURABLE_NS || status=1
    else
        status=1
    fi
    durable_stop_server "$kind" "$server" "$status" || status=1
    [[ $status -eq 0 && $full -gt $none ]] || { echo "durable_writes: $kind run on port $port failed; see $log" >&2; tail -n 5 "$log" >&2; return 1; }
    echo "$kind port $port: $((full / 1000)) - $((none / 1000)) µs for $DURABLE_BLOCKS blocks" >>"$log"
    echo $(( DURABLE_BLOCKS * DURABLE_BLOCK * 1000000000 / (full - none) )) >>"$OUT/durable.$kind.txt"
}

# durable_paired ROUND: one paired run with its own two servers; appends to durable.paired.txt.
durable_paired() {
    local round=$1 log="$OUT/durable.paired.log" dport=$((7650 + round)) rport=$((7750 + round)) dserver rserver status=0
    local failed="durable_writes: paired round $round failed; see $log"
    durable_start_server daxpin "$dport" "$OUT/durable.paired.daxpin-server.out" "$log" || { echo "$failed" >&2; return 1; }
    dserver=$DURABLE_SERVER
    if ! durable_start_server rpma "$rport" "$OUT/durable.paired.rpma-server.out" "$log" 1 "$DURABLE_RPMA_OFFSET"; then
        stop_process "$dserver" 30 TERM
        echo "$failed" >&2
        return 1
    fi
    rserver=$DURABLE_SERVER
    timeout -k 10 300 "$DAXPINBENCH" durable-paired "$PEERS/rpma_durable.so" "$DAXPIN_RDMA_ADDR" "$dport" "$rport" \
        "$DURABLE_BLOCK" "$DURABLE_PAIRED_BATCHES" "$DURABLE_PAIRED_BATCH" "$DURABLE_PAIRED_WARMUP" \
        >"$OUT/durable.paired.$round.out" 2>>"$log" || status=1
    sed "s/^/$round /" "$OUT/durable.paired.$round.out" >>"$OUT/durable.paired.txt"
    durable_stop_server daxpin "$dserver" "$status" || status=1
    durable_stop_server rpma "$rserver" "$status" || status=1
    [[ $status -eq 0 ]] || { echo "$failed" >&2; tail -n 5 "$log" >&2; return 1; }
}

suite_durable_writes() {
    local run kind port round
    : >"$OUT/durable.paired.txt"; : >"$OUT/durable.paired.log"
    for ((round = 1; round <= DURABLE_PAIRED_ROUNDS; round++)); do
        say "durable writes paired in one process, round $round/$DURABLE_PAIRED_ROUNDS: $DURABLE_PAIRED_BATCHES x $DURABLE_PAIRED_BATCH blocks each, DaxPin and librpma alternating"
        durable_paired "$round" || return 1
    done
    for kind in daxpin daxpin-send rpma; do : >"$OUT/durable.$kind.txt"; : >"$OUT/durable.$kind.log"; done
    for kind in daxpin daxpin-send rpma; do : >"$OUT/durable.$kind.loop.txt"; done
    for ((run = 1; run <= DURABLE_RUNS; run++)); do
        # The order flips every run (A B C, C B A, ...): neither side always runs first.
        local order=(daxpin daxpin-send rpma)
        ((run % 2)) || order=(rpma daxpin-send daxpin)
        say "durable writes run $run/$DURABLE_RUNS: $DURABLE_BLOCKS x $DURABLE_BLOCK B, write + persist ack (${order[*]})"
        for kind in "${order[@]}"; do
            case $kind in daxpin) port=$((7600 + run)) ;; rpma) port=$((7700 + run)) ;; *) port=$((7800 + run)) ;; esac
            # One retry on a port of its own: a fresh-clone run once failed here because the
            # zero-block client (connect and exit) took 6.3 s instead of about 1, which left
            # nothing to subtract. The failed attempt stays in the kind's log.
            durable_run "$kind" "$port" || {
                say "durable writes run $run: $kind failed once, retrying (see durable.$kind.log)"
                durable_run "$kind" $((port + 20))
            } || return 1
        done
    done
}

# Native RDMA FLUSH (issue 22; the newest kernel's boot, apps built against the newest
# rdma-core). The gated row, paired in one process (durable_flush.paired.txt): DaxPinBench
# flush-paired connects DaxPin's client (RDMAConnection with postsFlush: per block one batch
# of the unsignaled WRITE and a signaled FLUSH(PERSISTENT, RANGE) of it, the FLUSH's completion
# the ack, as daxpin-client --persist-method flush) and the raw-verbs C client of
# peers/flush_durable.c (built as a shared library against the same rdma-core by Scripts/bench:
# the same batch and the same completion wait, spin then sleep) to ONE daxpin-server
# --persist-method flush, DaxPin writing the export's first FLUSH_C_OFFSET bytes and C the
# rest, and alternates FLUSH_PAIRED_BATCH blocks through each, FLUSH_PAIRED_BATCHES pairs per
# round in an order that flips every pair; FLUSH_PAIRED_ROUNDS rounds, each with its own
# server, the client that connects first alternating round by round (DaxPin's in odd rounds).
# Lines "<round> DAXPIN|C <bytes per second of a batch>".
# Context, separate processes: daxpin-client --persist-method flush (the WRITE, then a FLUSH
# of it; the FLUSH's completion is the ack) against --persist-method read (the WRITE and an
# 8-byte READ behind it) and librpma's rpma_durable (librpma 1.2 has no native FLUSH:
# rpma_write + rpma_flush is a read after write), as separate client processes timed like the
# context rows above: DURABLE_RUNS runs of each, the order flipping every run. A server that
# does not offer FLUSH (a build or kernel without it) makes the flush client fail: the suite
# then writes durable_flush.pending with the server's reason instead.
FLUSH_PAIRED_ROUNDS=${DAXPIN_BENCH_FLUSH_PAIRED_ROUNDS:-4}
FLUSH_PAIRED_BATCHES=100
FLUSH_PAIRED_BATCH=50
FLUSH_PAIRED_WARMUP=100
FLUSH_C_OFFSET=$((32 << 20))   # half of the 64 MiB export: room for 8192 blocks each

# durable_flush_paired ROUND FIRST: one paired run with its own server, FIRST (daxpin or c)
# connecting first; appends to durable_flush.paired.txt.
durable_flush_paired() {
    local round=$1 first=$2 log="$OUT/durable_flush.paired.log" port=$((7950 + round)) server status=0
    local out="$OUT/durable_flush.paired.server.out" failed="durable_flush: paired round $round failed; see $log"
    "$APPS/daxpin-server" --file "$DAXPIN_DEVDAX_PATH" --length "$DURABLE_LENGTH" --persist-method flush \
        --address "$DAXPIN_RDMA_ADDR" --port "$port" --log-level warning >"$out" 2>>"$log" &
    server=$!
    wait_for_line "$out" '^ready' 60 "$server" || { cat "$out" >>"$log"; stop_process "$server" 30 TERM; echo "$failed" >&2; return 1; }
    timeout -k 10 300 "$DAXPINBENCH" flush-paired "$PEERS/flush_durable.so" "$DAXPIN_RDMA_ADDR" "$port" \
        "$DURABLE_BLOCK" "$FLUSH_C_OFFSET" "$FLUSH_PAIRED_BATCHES" "$FLUSH_PAIRED_BATCH" "$FLUSH_PAIRED_WARMUP" "$first" \
        >"$OUT/durable_flush.paired.$round.out" 2>>"$log" || status=1
    sed "s/^/$round /" "$OUT/durable_flush.paired.$round.out" >>"$OUT/durable_flush.paired.txt"
    stop_process "$server" 30 TERM || status=1
    [[ $status -eq 0 ]] || { echo "$failed" >&2; tail -n 5 "$log" >&2; return 1; }
}

suite_durable_flush() {
    local run kind port probe="$OUT/durable_flush.probe.out"
    "$APPS/daxpin-server" --file "$DAXPIN_DEVDAX_PATH" --length "$DURABLE_LENGTH" --persist-method flush \
        --address "$DAXPIN_RDMA_ADDR" --port 7899 --log-level info >"$probe" 2>&1 &
    local server=$!
    if ! wait_for_line "$probe" '^ready' 60 "$server"; then
        stop_process "$server" 30 TERM
        grep -o 'RDMA FLUSH cannot be offered.*' "$probe" | head -n 1 >"$OUT/durable_flush.pending"
        [[ -s "$OUT/durable_flush.pending" ]] || echo "daxpin-server --persist-method flush did not start" >"$OUT/durable_flush.pending"
        return 0
    fi
    stop_process "$server" 30 TERM
    [[ -e "$PEERS/flush_durable.so" ]] || { echo "durable_flush: no $PEERS/flush_durable.so (Scripts/bench builds it against the newest rdma-core)" >&2; return 1; }
    : >"$OUT/durable_flush.paired.txt"; : >"$OUT/durable_flush.paired.log"
    local round first
    for ((round = 1; round <= FLUSH_PAIRED_ROUNDS; round++)); do
        first=daxpin; ((round % 2)) || first=c
        say "durable writes with FLUSH paired in one process, round $round/$FLUSH_PAIRED_ROUNDS: $FLUSH_PAIRED_BATCHES x $FLUSH_PAIRED_BATCH blocks each, DaxPin and raw-verbs C alternating ($first connects first)"
        durable_flush_paired "$round" "$first" || return 1
    done
    for kind in daxpin-flush daxpin rpma; do : >"$OUT/durable.$kind.txt"; : >"$OUT/durable.$kind.log"; : >"$OUT/durable.$kind.loop.txt"; done
    for ((run = 1; run <= DURABLE_RUNS; run++)); do
        local order=(daxpin-flush daxpin rpma)
        ((run % 2)) || order=(rpma daxpin daxpin-flush)
        say "durable writes with FLUSH, run $run/$DURABLE_RUNS: $DURABLE_BLOCKS x $DURABLE_BLOCK B (${order[*]})"
        for kind in "${order[@]}"; do
            case $kind in daxpin) port=$((7600 + run)) ;; rpma) port=$((7700 + run)) ;; *) port=$((7900 + run)) ;; esac
            durable_run "$kind" "$port" || {
                say "durable writes with FLUSH, run $run: $kind failed once, retrying (see durable.$kind.log)"
                durable_run "$kind" $((port + 20))
            } || return 1
        done
    done
}
