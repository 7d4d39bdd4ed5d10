# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# In-process DaxPin measurements through package-benchmark's BenchmarkTool (what
# `swift package benchmark` runs, started directly: no SwiftPM in the guest).
suite_package_benchmark() {
    say "package-benchmark: pin+register 256 MiB (tmpfs, device-dax), 64 B RDMA WRITE"
    local preload=""
    [[ -e "$BIN/libMallocInterposerSwift.so" ]] && preload="$BIN/libMallocInterposerSwift.so"
    mkdir -p "$OUT/package-benchmark"
    (cd "$REPO/Benchmarks" && LD_PRELOAD=$preload "$BIN/BenchmarkTool" --command run \
        --baseline-storage-path "$REPO/Benchmarks" --format histogramPercentiles --grouping metric \
        --benchmark-package-identifier package-benchmark --targets DaxPinBenchmarks \
        --benchmark-executable-paths "$BIN/DaxPinBenchmarks" --path "$OUT/package-benchmark" \
        --no-progress) >"$OUT/package-benchmark.log" 2>&1 || { cat "$OUT/package-benchmark.log" >&2; return 1; }
    rm -f "$TMP"/daxpin-bench-*
}
