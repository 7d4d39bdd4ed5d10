import Foundation
import Testing

extension DaxPin {
    /// Misuse of the ownership graph must not compile. Each snippet is compiled against the
    /// built DaxPin module with `swiftc -emit-sil` (the move checker runs on SIL) and must
    /// fail with the expected diagnostic; a control snippet must compile.
    @Suite(.enabled(if: !Testbed.isActive, "compiler checks run on the host build")) struct CompileFail {
        struct Case: CustomTestStringConvertible, Sendable {
            let name: String
            let body: String
            let diagnostic: String
            var testDescription: String { name }
        }

        static let cases: [Case] = [
            Case(name: "copying a lease", body: """
                let lease = try LayoutLease(path: "/x")
                let copy = lease
                _ = lease.path
                _ = copy.path
                """, diagnostic: "'lease' used after consume"),
            Case(name: "copying a region", body: """
                var lease = try LayoutLease(path: "/x")
                let id = try lease.pin(on: device)
                try lease.withRegion(id) { region in let copy = region; _ = copy }
                """, diagnostic: "'region' is borrowed and cannot be consumed"),
            Case(name: "copying a memory region", body: """
                var lease = try LayoutLease(path: "/x")
                let id = try lease.pin(on: device)
                try lease.withRegion(id) { region in let mr = region.memoryRegion; _ = mr }
                """, diagnostic: "is borrowed and cannot be consumed"),
            Case(name: "using a region after its lease was consumed", body: """
                var lease = try LayoutLease(path: "/x")
                let id = try lease.pin(on: device)
                lease.release()
                try lease.withRegion(id) { _ in }
                """, diagnostic: "'lease' used after consume"),
            Case(name: "a region escaping its lease", body: """
                var lease = try LayoutLease(path: "/x")
                let id = try lease.pin(on: device)
                var kept: PinnedRegion? = nil
                try lease.withRegion(id) { kept = $0 }
                _ = kept
                """, diagnostic: "is consuming"),
            Case(name: "keeping an MR after its region is gone", body: """
                var lease = try LayoutLease(path: "/x")
                let id = try lease.pin(on: device)
                var kept: MemoryRegion? = nil
                try lease.withRegion(id) { kept = $0.memoryRegion }
                try lease.unpin(id)
                _ = kept
                """, diagnostic: "is consuming"),
        ]

        @Test("misuse does not compile", arguments: cases)
        func misuseDoesNotCompile(_ snippet: Case) throws {
            let result = try compile(snippet.body)
            #expect(result.status != 0, "\(snippet.name) compiled")
            #expect(result.output.contains(snippet.diagnostic), "diagnostics: \(result.output)")
        }

        @Test("the correct use compiles (control)")
        func correctUseCompiles() throws {
            let result = try compile("""
                var lease = try LayoutLease(path: "/x")
                let id = try lease.pin(on: device)
                let keys = try lease.withRegion(id) { region in region.memoryRegion.remote }
                _ = keys
                lease.release()
                """)
            #expect(result.status == 0, "diagnostics: \(result.output)")
        }

        /// Compiles `body` inside a function that has an `RDMADevice`, against the built module.
        func compile(_ body: String) throws -> (status: Int32, output: String) {
            let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let debug = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                .deletingLastPathComponent()
            let scratch = debug.deletingLastPathComponent().deletingLastPathComponent()
            let source = FileManager.default.temporaryDirectory.appendingPathComponent("daxpin-compile-\(getpid())-\(UUID().uuidString).swift")
            try "import DaxPin\nfunc use(device: RDMADevice) throws {\n\(body)\n}\n".write(to: source, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: source) }
            let clang: [String] = [
                "-fmodule-map-file=\(debug.path)/CIbverbs.build/module.modulemap",
                "-fmodule-map-file=\(debug.path)/CLease.build/module.modulemap",
                "-fmodule-map-file=\(packageRoot.path)/Sources/LibIbverbs/module.modulemap",
                "-fmodule-map-file=\(packageRoot.path)/Sources/CDaxctl/module.modulemap",
                "-fmodule-map-file=\(packageRoot.path)/Sources/CRdmacm/module.modulemap",
                "-fmodule-map-file=\(packageRoot.path)/Sources/CMnl/module.modulemap",
                "-fmodule-map-file=\(scratch.path)/checkouts/swift-system/Sources/CSystem/include/module.modulemap",
                "-I", "\(packageRoot.path)/Sources/CLease/include",
                "-I", "\(packageRoot.path)/Sources/CIbverbs/include",
            ]
            let process = Process()
            process.executableURL = URL(fileURLWithPath: swiftc())
            process.arguments = ["-emit-sil", "-o", "/dev/null", source.path, "-I", "\(debug.path)/Modules"]
                + clang.flatMap { ["-Xcc", $0] }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, output)
        }

        func swiftc() -> String {
            for candidate in ["/opt/swift/usr/bin/swiftc", "/usr/bin/swiftc"] where FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
            return "/usr/bin/env"
        }
    }
}
