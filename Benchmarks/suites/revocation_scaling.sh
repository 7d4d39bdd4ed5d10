# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Revocation as a lease grows (issue 30 item 4): 1 to 1024 regions of 64 KiB, and one region of
# 4 KiB to 256 MiB, DaxPin's holder and the raw C holder alternating, timed by the same breaker
# as the revocation suite (each break's truncate, in ns; a warm-up break first). Then the memory
# one lease of DAXPIN_BENCH_SCALE_MEM_REGIONS regions of 4 KiB costs DaxPin's process
# (RssAnon and VmPin, printed by the holder before its first break). 1 GiB regions are left out:
# the guest has 2 GiB, and a 1 GiB tmpfs region would hold half of it.
SCALE_ROUNDS=${DAXPIN_BENCH_SCALE_ROUNDS:-3}
SCALE_REPS=${DAXPIN_BENCH_SCALE_REPS:-5}
SCALE_MEM_REGIONS=${DAXPIN_BENCH_SCALE_MEM_REGIONS:-10000}

# scaling_break HOLDER N BYTES: one holder process (daxpin or c) with N regions of BYTES, broken
# SCALE_REPS times after a warm-up break; appends to scaling.HOLDER.NxBYTES.txt.
scaling_break() {
    local cmd
    case $1 in
        daxpin) cmd=("$DAXPINBENCH" hold "$TMP" 1 "$2" "$3" $((SCALE_REPS + 1)) "$DEV") ;;
        c) cmd=("$PEERS/lease_holder" "$TMP" "$2" "$3" $((SCALE_REPS + 1)) "$DEV") ;;
    esac
    timeout -k 10 900 "$PEERS/breaker" -- "${cmd[@]}" >>"$LOCAL/scaling.$1.$2x$3.txt" 2>>"$LOCAL/holders.log"
}

suite_revocation_scaling() {
    local round n bytes first second
    for ((round = 1; round <= SCALE_ROUNDS; round++)); do
        # Alternate which holder goes first, so that neither always follows the other.
        if ((round % 2)); then first=daxpin second=c; else first=c second=daxpin; fi
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
    done
    say "memory of one lease of $SCALE_MEM_REGIONS regions"
    timeout -k 10 1800 "$PEERS/breaker" -- "$DAXPINBENCH" hold "$TMP" 1 "$SCALE_MEM_REGIONS" 4096 1 "$DEV" \
        >>"$LOCAL/scaling.memory.txt" 2>>"$LOCAL/holders.log"
    echo "$SCALE_ROUNDS $SCALE_REPS $SCALE_MEM_REGIONS" >"$LOCAL/scaling.rounds.txt"
    keep_local
}
