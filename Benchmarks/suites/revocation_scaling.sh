# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Revocation as a lease grows (issue 30 item 4): 1 to 1024 regions of 64 KiB, and one region of
# 4 KiB to 256 MiB, DaxPin's holder and the raw C holder alternating, timed by the same breaker
# as the revocation suite (each break's truncate, in ns; a warm-up break first). Then the memory
# one lease of DAXPIN_BENCH_SCALE_MEM_REGIONS regions of 4 KiB costs DaxPin's process
# (RssAnon and VmPin, printed by the holder before its first break). 1 GiB regions are left out:
# the guest has 2 GiB, and a 1 GiB tmpfs region would hold half of it.
# Concurrent breaks: SCALE_CONCURRENT holder processes of 16 regions each, broken at the same
# moment by as many threads of one breaker (breaker -n), DaxPin's group and the C group
# alternating. Every holder prints "CPU <ns>" after each break (its process's CPU time for it).
# Tails: DAXPIN_BENCH_SCALE_TAIL_BREAKS breaks of one 64 KiB region per holder, in
# SCALE_TAIL_BLOCKS processes each, alternating block by block: enough breaks for a p99.9.
SCALE_ROUNDS=${DAXPIN_BENCH_SCALE_ROUNDS:-3}
SCALE_REPS=${DAXPIN_BENCH_SCALE_REPS:-5}
SCALE_MEM_REGIONS=${DAXPIN_BENCH_SCALE_MEM_REGIONS:-10000}
SCALE_CONCURRENT=4
SCALE_TAIL_BREAKS=${DAXPIN_BENCH_SCALE_TAIL_BREAKS:-1000}
SCALE_TAIL_BLOCKS=4

# scaling_concurrent HOLDER: SCALE_CONCURRENT holder processes of 16 x 64 KiB broken together
# SCALE_REPS times after a warm-up; appends to scaling.HOLDER.concurrent.txt.
scaling_concurrent() {
    local cmd
    case $1 in
        daxpin) cmd=("$DAXPINBENCH" hold "$TMP" 1 16 65536 $((SCALE_REPS + 1)) "$DEV") ;;
        c) cmd=("$PEERS/lease_holder" "$TMP" 16 65536 $((SCALE_REPS + 1)) "$DEV") ;;
    esac
    timeout -k 10 900 "$PEERS/breaker" -n "$SCALE_CONCURRENT" -- "${cmd[@]}" >>"$LOCAL/scaling.$1.concurrent.txt" 2>>"$LOCAL/holders.log"
}

# scaling_break HOLDER N BYTES [REPS SERIES]: one holder process (daxpin, traffic: DaxPin's with a
# queue pair writing into the lease when the break arrives, or c) with N regions of BYTES, broken
# REPS (SCALE_REPS) times after a warm-up break; appends to scaling.HOLDER.SERIES.txt (SERIES:
# NxBYTES).
scaling_break() {
    local cmd reps=${4:-$SCALE_REPS}
    case $1 in
        daxpin) cmd=("$DAXPINBENCH" hold "$TMP" 1 "$2" "$3" $((reps + 1)) "$DEV") ;;
        traffic) cmd=("$DAXPINBENCH" hold-traffic "$TMP" "$2" "$3" $((reps + 1)) "$DEV") ;;
        c) cmd=("$PEERS/lease_holder" "$TMP" "$2" "$3" $((reps + 1)) "$DEV") ;;
    esac
    timeout -k 10 900 "$PEERS/breaker" -- "${cmd[@]}" >>"$LOCAL/scaling.$1.${5:-$2x$3}.txt" 2>>"$LOCAL/holders.log"
}

# holder_order N: sets first and second to the two holders, DaxPin's first when N is odd, so
# that neither always follows the other.
holder_order() {
    if (($1 % 2)); then first=daxpin second=c; else first=c second=daxpin; fi
}

suite_revocation_scaling() {
    local round n bytes first second
    for ((round = 1; round <= SCALE_ROUNDS; round++)); do
        holder_order "$round"
        for n in 1 4 16 64 256 1024; do
            say "revocation scaling, $n x 64 KiB, round $round/$SCALE_ROUNDS"
            scaling_break $first $n 65536
            scaling_break $second $n 65536
        done
        for bytes in 4096 1048576 67108864 268435456; do
            say "revocation scaling, 1 x $bytes bytes, round $round/$SCALE_ROUNDS"
            scaling_break $first 1 $bytes
            scaling_break $second 1 $bytes
        done
        say "revocation scaling, 16 x 64 KiB with RDMA WRITEs in flight at the break, round $round/$SCALE_ROUNDS"
        scaling_break traffic 16 65536
        say "revocation scaling, $SCALE_CONCURRENT processes x 16 x 64 KiB broken together, round $round/$SCALE_ROUNDS"
        scaling_concurrent $first
        scaling_concurrent $second
    done
    local block per_block=$(( (SCALE_TAIL_BREAKS + SCALE_TAIL_BLOCKS - 1) / SCALE_TAIL_BLOCKS ))
    for ((block = 1; block <= SCALE_TAIL_BLOCKS; block++)); do
        holder_order "$block"
        say "revocation tails, 1 x 64 KiB, $per_block breaks per holder, block $block/$SCALE_TAIL_BLOCKS"
        scaling_break $first 1 65536 "$per_block" tail
        scaling_break $second 1 65536 "$per_block" tail
    done
    say "memory of one lease of $SCALE_MEM_REGIONS regions"
    timeout -k 10 1800 "$PEERS/breaker" -- "$DAXPINBENCH" hold "$TMP" 1 "$SCALE_MEM_REGIONS" 4096 1 "$DEV" \
        >>"$LOCAL/scaling.memory.txt" 2>>"$LOCAL/holders.log"
    echo "$SCALE_ROUNDS $SCALE_REPS $SCALE_MEM_REGIONS $SCALE_CONCURRENT $SCALE_TAIL_BLOCKS $per_block" >"$LOCAL/scaling.rounds.txt"
    keep_local
}
