// swift-tools-version:6.1
// The benchmark package: a separate package so that the normal `swift build --build-tests`
// of the library never resolves or builds package-benchmark. Scripts/bench builds it.
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "DaxPinBenchmarks",
    dependencies: [
        .package(name: "DaxPin", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // package-benchmark suite: in-process measurements (pin + register, 64 B RDMA WRITE).
        .executableTarget(
            name: "DaxPinBenchmarks",
            dependencies: [
                .product(name: "DaxPin", package: "DaxPin"),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "DaxPinBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // Measurements package-benchmark cannot express: a lease holder whose lease another
        // process breaks, the idle watcher, 1000 leases, and the runs paired with a C peer's in
        // one process (64 B WRITE, pin + register, durable writes to daxpin-server).
        .executableTarget(
            name: "DaxPinBench",
            dependencies: [
                .product(name: "DaxPin", package: "DaxPin"),
                .product(name: "StorageProtocol", package: "DaxPin"),
                // DAXPIN_BENCH_METRICS=1 bootstraps a metrics backend (the profile's metrics row).
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            path: "Tools/DaxPinBench",
            swiftSettings: strict
        ),
    ]
)
