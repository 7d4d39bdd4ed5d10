# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# Peers for pin + register: raw mmap + populate + ibv_reg_mr, and librpma's rpma_mr_reg.
suite_pin_register_peers() {
    local mode
    for mode in raw rpma; do
        say "pin+register peer: $mode"
        "$PEERS/pin_register" "$mode" "$TMP/peer-pin" $((256 << 20)) 10 "$DEV" "$DAXPIN_RDMA_ADDR" >"$OUT/pin.$mode.tmpfs.txt"
        rm -f "$TMP/peer-pin"
        "$PEERS/pin_register" "$mode" "$DAXPIN_DEVDAX_PATH" $((256 << 20)) 10 "$DEV" "$DAXPIN_RDMA_ADDR" >"$OUT/pin.$mode.devdax.txt"
    done
}
