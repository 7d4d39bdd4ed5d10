// swift-tools-version:6.2
// A newcomer's application, in a package of its own that depends on DaxPin by path, as an
// application would by URL (README, "In your package"). Scripts/test builds it and the testbed
// runs it through a lease break and a graceful shutdown on every kernel (AppendLogTests).
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name: this clone's, whatever it is called.
let daxpin = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "AppendLog",
    dependencies: [
        .package(path: daxpin.path, traits: ["ServiceLifecycle"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "append-log",
            dependencies: [
                .product(name: "DaxPin", package: daxpin.lastPathComponent),
                .product(name: "DaxPinServiceLifecycle", package: daxpin.lastPathComponent),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Sources/AppendLog",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
