// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
// Fault injection, the mapping ledger, forced interleavings, the ODP trust hook and
// DAXPIN_RUN_DIR exist in debug builds only (swift-system's ENABLE_MOCKING, likewise).
let testHooks: [SwiftSetting] = strict + [.define("DAXPIN_TESTING", .when(configuration: .debug))]

// Only the ServiceLifecycle and Tools traits bring these in (see `traits`).
let argumentParser: Target.Dependency = .product(
    name: "ArgumentParser", package: "swift-argument-parser", condition: .when(traits: ["Tools"]))
let serviceLifecycle: Target.Dependency = .product(
    name: "ServiceLifecycle", package: "swift-service-lifecycle", condition: .when(traits: ["ServiceLifecycle"]))
let serviceLifecycleTestKit: Target.Dependency = .product(
    name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle", condition: .when(traits: ["ServiceLifecycle"]))

let package = Package(
    name: "DaxPin",
    products: [
        .library(name: "DaxPin", targets: ["DaxPin"]),
        // A swift-service-lifecycle Service that holds a lease: its own product, and its
        // dependency only with the ServiceLifecycle trait, so the core library resolves
        // swift-system, swift-log and swift-metrics alone.
        .library(name: "DaxPinServiceLifecycle", targets: ["DaxPinServiceLifecycle"]),
        // The administrators' command, and the example storage server and client (the
        // benchmark harness, a package of its own, runs them).
        .executable(name: "daxpin", targets: ["DaxPinCommand"]),
        .executable(name: "daxpin-server", targets: ["daxpin-server"]),
        .executable(name: "daxpin-client", targets: ["daxpin-client"]),
        // daxpin-server's wire format (the hellos in the rdma_cm private data, the messages),
        // for clients other than daxpin-client: the benchmark harness is one.
        .library(name: "StorageProtocol", targets: ["StorageProtocol"]),
        // The other examples and the soak are executable targets, not products: `swift run
        // daxpin-demo` works in this repository, and no dependent sees them.
    ],
    // A consumer that lists `traits: []` (or only "ServiceLifecycle") resolves nothing for the
    // command, the examples or the soak. The defaults keep `swift build` and `swift test` in a
    // clone building everything.
    traits: [
        .trait(name: "ServiceLifecycle", description: "DaxPinServiceLifecycle's LeaseService (depends on swift-service-lifecycle)"),
        .trait(
            name: "Tools",
            description: "The daxpin command, the examples and the soak (depend on swift-argument-parser and swift-service-lifecycle)",
            enabledTraits: ["ServiceLifecycle"]
        ),
        .default(enabledTraits: ["Tools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // libibverbs as found by pkg-config; the shim in CIbverbs wraps what Swift cannot call.
        .systemLibrary(
            name: "LibIbverbs",
            pkgConfig: "libibverbs",
            providers: [.apt(["libibverbs-dev"])]
        ),
        .target(name: "CIbverbs", dependencies: ["LibIbverbs"]),
        // libdaxctl exports plain functions only, so a module map is all it needs.
        .systemLibrary(
            name: "CDaxctl",
            pkgConfig: "libdaxctl",
            providers: [.apt(["libdaxctl-dev"])]
        ),
        .target(name: "CLease"),
        // libmnl (rdma netlink, for `daxpin ls --all`) exports plain functions; its header shim
        // wraps the one function-like macro Swift cannot call.
        .systemLibrary(
            name: "CMnl",
            pkgConfig: "libmnl",
            providers: [.apt(["libmnl-dev"])]
        ),
        // librdmacm (connection setup) exports plain functions: a module map is enough.
        .systemLibrary(
            name: "CRdmacm",
            pkgConfig: "librdmacm",
            providers: [.apt(["librdmacm-dev"])]
        ),
        .target(
            name: "DaxPin",
            dependencies: [
                "CIbverbs", "CDaxctl", "CLease", "CRdmacm",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: testHooks
        ),
        // What `daxpin ls --all` sees of other processes' pins: rdma netlink (libmnl), /proc,
        // and the risk assessment. Only the command and the tests use it, so only they link libmnl.
        .target(
            name: "DaxPinVisibility",
            dependencies: ["DaxPin", "CMnl", "CLease"],
            swiftSettings: testHooks
        ),
        .target(
            name: "DaxPinServiceLifecycle",
            dependencies: [
                "DaxPin",
                .product(name: "Logging", package: "swift-log"),
                serviceLifecycle,
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "DaxPinCommand",
            dependencies: ["DaxPin", "DaxPinVisibility", argumentParser],
            swiftSettings: strict
        ),
        .target(name: "StorageProtocol", path: "Examples/StorageProtocol", swiftSettings: strict),
        .executableTarget(
            name: "daxpin-server",
            dependencies: [
                "DaxPin", "StorageProtocol",
                argumentParser,
                .product(name: "Logging", package: "swift-log"),
                serviceLifecycle,
            ],
            path: "Examples/StorageServer", swiftSettings: strict
        ),
        .executableTarget(
            name: "daxpin-client",
            dependencies: [
                "DaxPin", "StorageProtocol",
                argumentParser,
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/StorageClient", swiftSettings: strict
        ),
        .executableTarget(name: "daxpin-demo", dependencies: ["DaxPin"], path: "Examples/CoreDemo", swiftSettings: strict),
        .executableTarget(name: "daxpin-quickstart", dependencies: ["DaxPin"], path: "Examples/QuickStart", swiftSettings: strict),
        .executableTarget(
            name: "daxpin-lease-service",
            dependencies: [
                "DaxPin", "DaxPinServiceLifecycle",
                .product(name: "Logging", package: "swift-log"),
                serviceLifecycle,
            ],
            path: "Examples/LeaseServiceExample", swiftSettings: strict
        ),
        // The reliability soak (Scripts/reliability), a tool of the test suite.
        .executableTarget(
            name: "daxpin-soak",
            dependencies: ["DaxPin", "CLease", argumentParser,
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/Soak", swiftSettings: testHooks
        ),
        // Test-only: counts a thread's heap allocations (the teardown before F_UNLCK makes none).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(
            name: "DaxPinTests",
            dependencies: ["DaxPin", "DaxPinVisibility", "DaxPinServiceLifecycle", "CLease", "CMnl", "StorageProtocol",
                           "CAllocationCounter",
                           .product(name: "SystemPackage", package: "swift-system"),
                           serviceLifecycle,
                           serviceLifecycleTestKit,
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "MetricsTestKit", package: "swift-metrics")],
            swiftSettings: strict
        ),
    ]
)
