# Sourced by Benchmarks/run-in-testbed inside the testbed guest (variables: see there).
# In-process DaxPin measurements through package-benchmark's BenchmarkTool (what
# `swift package benchmark` runs, started directly: no SwiftPM in the guest). No suite of
# its own: the pin benchmarks run in pin_register_peers.sh and the 64 B WRITE in
# write_latency.sh, each alternated with its peers.

# package_benchmark_run DIR FILTER: runs the benchmarks matching FILTER; percentiles in $OUT/DIR.
package_benchmark_run() {
    local preload=""
    [[ -e "$BIN/libMallocInterposerSwift.so" ]] && preload="$BIN/libMallocInterposerSwift.so"
    mkdir -p "$OUT/$1"
    (cd "$REPO/Benchmarks" && LD_PRELOAD=$preload "$BIN/BenchmarkTool" --command run \
        --baseline-storage-path "$REPO/Benchmarks" --format histogramPercentiles --grouping metric \
        --benchmark-package-identifier package-benchmark --targets DaxPinBenchmarks \
        --benchmark-executable-paths "$BIN/DaxPinBenchmarks" --path "$OUT/$1" --filter "$2" \
        --no-progress) >>"$OUT/package-benchmark.log" 2>&1 || { cat "$OUT/package-benchmark.log" >&2; return 1; }
    rm -f "$TMP"/daxpin-bench-*
}
