# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
suite_storage_throughput() {
    echo "pending: needs the storage server (issue 4): 64 KiB QD16 vs ib_write_bw and fio rdma" >"$OUT/storage_throughput.pending"
}
