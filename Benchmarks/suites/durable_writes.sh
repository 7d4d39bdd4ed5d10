# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
suite_durable_writes() {
    echo "pending: needs the storage server (issue 4): durable writes vs librpma" >"$OUT/durable_writes.pending"
}
