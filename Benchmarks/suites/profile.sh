# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# The instruction-count profile behind the revocation rows: callgrind counts the user-space
# instructions of each holder's teardown (DaxPin: LeaseCore.revoke(reason:onWatcher:), matched by its
# mangled name so that its closures do not toggle collection off again, and all it calls;
# raw C: lease_holder's teardown()) over PROFILE_BREAKS breaks of a lease with 16 regions.
# Kernel work (the system calls themselves) is not counted: it is the same for both. The
# binary is run without its DWARF: valgrind 3.19 cannot read the Swift toolchain's; the
# symbol table, which names the functions, stays.
PROFILE_BREAKS=5
PROFILE_REGIONS=16

suite_profile() {
    local daxpin="$LOCAL/DaxPinBench.nodebug"
    objcopy --strip-debug "$BIN/DaxPinBench" "$daxpin"
    say "profile: callgrind, DaxPin holder, $PROFILE_BREAKS breaks x $PROFILE_REGIONS regions"
    "$PEERS/breaker" -- /usr/bin/valgrind --tool=callgrind --toggle-collect='*LeaseCoreC6revoke6reason9onWatcher*_SbtF' \
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
