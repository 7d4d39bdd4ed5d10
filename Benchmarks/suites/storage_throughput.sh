# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Storage server one-sided write throughput, 64 KiB blocks, 16 in flight, on rxe0: the
# example daxpin-client writing a daxpin-server export (tmpfs file), against perftest's
# ib_write_bw and fio's rdma engine with the same block size and depth. Each series: one
# line per run, bytes per second (the report drops the first run as warm-up).
STORAGE_BLOCK=65536
STORAGE_DEPTH=16
STORAGE_BYTES=$((256 << 20))    # per run: 4096 blocks
STORAGE_RUNS=${DAXPIN_BENCH_STORAGE_RUNS:-6}

# One run of daxpin-client against a daxpin-server of its own (a server left running between
# runs would sit beside the peers' runs): appends bytes per second to storage.daxpin.txt.
storage_daxpin_run() {
    local run=$1 file="$TMP/storage-throughput" out="$OUT/storage.server.$1.out" server port
    "$APPS/daxpin-server" --file "$file" --size $((64 << 20)) --address "$DAXPIN_RDMA_ADDR" --port 0 \
        --log-level warning >"$out" 2>"$OUT/storage.server.$run.err" &
    server=$!
    wait_for_line "$out" '^ready ' 60 "$server" \
        || { cat "$OUT/storage.server.$run.err" >&2; stop_process "$server" 20 TERM || true; return 1; }
    port=$(sed -n 's/^ready .*port=\([0-9]*\).*/\1/p' "$out")
    # 64 MiB export, 4 passes = 256 MiB; one persist per pass (the row measures WRITEs).
    timeout 120 "$APPS/daxpin-client" --address "$DAXPIN_RDMA_ADDR" --port "$port" \
        --block-size $STORAGE_BLOCK --queue-depth $STORAGE_DEPTH --persist-every 1024 \
        --passes 4 --static-data --log-level warning >"$OUT/storage.client.$run.txt" 2>&1 \
        || { cat "$OUT/storage.client.$run.txt" >&2; stop_process "$server" 20 TERM || true; return 1; }
    stop_process "$server" 20 TERM >/dev/null 2>&1 || true
    rm -f "$file"
    # "throughput: wrote N bytes (X MiB/s), ..." -> bytes per second
    sed -n 's/^throughput: wrote [0-9]* bytes (\([0-9.]*\) MiB\/s).*/\1/p' "$OUT/storage.client.$run.txt" \
        | awk '{ printf "%.0f\n", $1 * 1048576 }' >>"$OUT/storage.daxpin.txt"
}

# One ib_write_bw server/client pair moving STORAGE_BYTES: appends to storage.ib_write_bw.txt.
storage_ib_write_bw_run() {
    local run=$1 peer iterations=$(( STORAGE_BYTES / STORAGE_BLOCK ))
    timeout 120 ib_write_bw -d "$DEV" -s $STORAGE_BLOCK -t $STORAGE_DEPTH -n $iterations -F -p $((18515 + run)) \
        >"$OUT/ib_write_bw.server.$run.txt" 2>&1 &
    peer=$!
    sleep 1
    timeout 120 ib_write_bw -d "$DEV" -s $STORAGE_BLOCK -t $STORAGE_DEPTH -n $iterations -F -p $((18515 + run)) \
        "$DAXPIN_RDMA_ADDR" >"$OUT/ib_write_bw.$run.txt" 2>&1 || { cat "$OUT/ib_write_bw.$run.txt" >&2; return 1; }
    wait "$peer" || true
    # "#bytes #iterations BW peak BW average MsgRate": BW average in MiB/s (perftest's MB = 2^20)
    awk -v b=$STORAGE_BLOCK '$1 == b && NF >= 5 { printf "%.0f\n", $4 * 1048576 }' "$OUT/ib_write_bw.$run.txt" \
        >>"$OUT/storage.ib_write_bw.txt"
}

# One fio rdma server/client pair moving STORAGE_BYTES: appends to storage.fio.txt.
storage_fio_run() {
    local run=$1
    # As fio's examples/rdmaio-{server,client}.fio: the engine is the server for rw=read and
    # the client for rw=write; the client picks the verb and the depth.
    local common=(--ioengine=rdma --bs=$STORAGE_BLOCK --size=$STORAGE_BYTES --output-format=json)
    # Under emulation the server may not listen yet after the pause: the client is then
    # rejected, and either waits for good or exits 0 having moved nothing (fio 3.33 reports
    # RDMA_CM_EVENT_REJECTED and a bandwidth of 0). So each run has its own time limit (a hung
    # RDMA call ignores SIGTERM: -k kills it), a run that moved nothing counts as failed, and
    # there are two more attempts, each on a fresh port.
    local attempt port ok=0 bw peer
    for attempt in 0 1 2; do
        port=$((19515 + run + 100 * attempt))
        timeout -k 10 60 fio --name=server "${common[@]}" --rw=read --port=$port >"$OUT/fio.server.$run.json" 2>&1 &
        peer=$!
        sleep 2
        bw=0
        if timeout -k 10 60 fio --name=client "${common[@]}" --rw=write --verb=write --iodepth=$STORAGE_DEPTH \
            --hostname="$DAXPIN_RDMA_ADDR" --port=$port >"$OUT/fio.$run.json" 2>"$OUT/fio.$run.err"; then
            bw=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["write"]["bw_bytes"])' \
                "$OUT/fio.$run.json" 2>/dev/null || echo 0)
        fi
        if [[ $bw =~ ^[1-9][0-9]*$ ]]; then
            ok=1
        else
            { echo "bench: fio run $run, attempt $attempt moved nothing:"; cat "$OUT/fio.$run.err"; } >&2
            kill -TERM "$peer" 2>/dev/null || true   # timeout passes it on, and kills after 10 s
        fi
        wait "$peer" || true
        [[ $ok -eq 0 ]] || break
    done
    [[ $ok -eq 1 ]] || { cat "$OUT/fio.$run.json" >&2; return 1; }
    echo "$bw" >>"$OUT/storage.fio.txt"
}

# The three series alternate run by run: the emulator has slow and fast spells that last
# minutes, and one series run after the other measured the spells they met (one run: DaxPin's
# six runs 27-36 MiB/s, then ib_write_bw's 28-37, a ratio of 0.80 where the boot before
# read 0.98).
suite_storage_throughput() {
    local run series
    : >"$OUT/storage.daxpin.txt"
    : >"$OUT/storage.ib_write_bw.txt"
    : >"$OUT/storage.fio.txt"
    for ((run = 0; run < STORAGE_RUNS; run++)); do
        say "storage 64 KiB QD16, round $((run + 1))/$STORAGE_RUNS: daxpin-client, ib_write_bw, fio rdma"
        storage_daxpin_run $run || return 1
        storage_ib_write_bw_run $run || return 1
        storage_fio_run $run || return 1
    done
    for series in daxpin ib_write_bw fio; do   # every run gave a figure, none of them zero
        [[ $(grep -c '^[1-9][0-9]*$' "$OUT/storage.$series.txt") -eq $STORAGE_RUNS ]] \
            || { echo "bench: storage.$series.txt lacks a figure for some run" >&2; return 1; }
    done
}
