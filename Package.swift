// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "DaxPin",
    products: [
        .library(name: "DaxPin", targets: ["DaxPin"]),
        // A swift-service-lifecycle Service that holds a lease: its own product, so that the
        // core library does not depend on service-lifecycle.
        .library(name: "DaxPinServiceLifecycle", targets: ["DaxPinServiceLifecycle"]),
        .executable(name: "daxpin", targets: ["DaxPinCommand"]),
        .executable(name: "daxpin-server", targets: ["StorageServer"]),
        .executable(name: "daxpin-client", targets: ["StorageClient"]),
        .executable(name: "daxpin-demo", targets: ["CoreDemo"]),
        .executable(name: "daxpin-quickstart", targets: ["QuickStart"]),
        .executable(name: "daxpin-lease-service", targets: ["LeaseServiceExample"]),
        .executable(name: "daxpin-soak", targets: ["DaxPinSoak"]),
        // daxpin-server's wire format (the hellos in the rdma_cm private data, the messages),
        // for clients other than daxpin-client: the benchmark harness is one.
        .library(name: "StorageProtocol", targets: ["StorageProtocol"]),
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
                "CIbverbs", "CDaxctl", "CLease", "CRdmacm", "CMnl",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "DaxPinServiceLifecycle",
            dependencies: [
                "DaxPin",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "DaxPinCommand",
            dependencies: ["DaxPin", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .target(name: "StorageProtocol", path: "Examples/StorageProtocol", swiftSettings: strict),
        .executableTarget(
            name: "StorageServer",
            dependencies: [
                "DaxPin", "StorageProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/StorageServer", swiftSettings: strict
        ),
        .executableTarget(
            name: "StorageClient",
            dependencies: [
                "DaxPin", "StorageProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/StorageClient", swiftSettings: strict
        ),
        .executableTarget(name: "CoreDemo", dependencies: ["DaxPin"], path: "Examples/CoreDemo", swiftSettings: strict),
        .executableTarget(name: "QuickStart", dependencies: ["DaxPin"], path: "Examples/QuickStart", swiftSettings: strict),
        .executableTarget(
            name: "LeaseServiceExample",
            dependencies: [
                "DaxPin", "DaxPinServiceLifecycle",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/LeaseServiceExample", swiftSettings: strict
        ),
        // The reliability soak (Scripts/reliability), a tool of the test suite.
        .executableTarget(
            name: "DaxPinSoak",
            dependencies: ["DaxPin", "CLease", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/Soak", swiftSettings: strict
        ),
        .testTarget(
            name: "DaxPinTests",
            dependencies: ["DaxPin", "DaxPinServiceLifecycle", "CLease", "CMnl", "StorageProtocol",
                           .product(name: "SystemPackage", package: "swift-system"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "MetricsTestKit", package: "swift-metrics")],
            swiftSettings: strict
        ),
    ]
)
