// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "DaxPin",
    products: [
        .library(name: "DaxPin", targets: ["DaxPin"]),
        .executable(name: "daxpin-demo", targets: ["CoreDemo"]),
        .executable(name: "daxpin-quickstart", targets: ["QuickStart"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
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
        .target(
            name: "DaxPin",
            dependencies: [
                "CIbverbs", "CDaxctl", "CLease",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "CoreDemo", dependencies: ["DaxPin"], path: "Examples/CoreDemo", swiftSettings: strict),
        .executableTarget(name: "QuickStart", dependencies: ["DaxPin"], path: "Examples/QuickStart", swiftSettings: strict),
        .testTarget(
            name: "DaxPinTests",
            dependencies: ["DaxPin", "CLease", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
    ]
)
