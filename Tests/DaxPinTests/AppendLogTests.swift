import Foundation
import Glibc
import Testing

extension DaxPin {
    /// Examples/AppendLog, a newcomer's application in a package of its own that depends on
    /// DaxPin by path (Scripts/test builds it into .build-append-log): run in the testbed through
    /// a graceful shutdown and through lease breaks, on real fs-dax and tmpfs with rxe0. Every
    /// record the app acknowledged must be in the file afterwards.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason), .serialized) struct AppendLog {
        typealias Memory = RealDevices.Memory
        static let memories: [Memory] = [.tmpfs, .ext4DAX]

        /// The app's binary: DAXPIN_APPEND_LOG, or where Scripts/test builds it.
        static var binary: String {
            if let explicit = Testbed.env["DAXPIN_APPEND_LOG"] { return explicit }
            return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build-append-log/debug/append-log").path
        }

        /// Starts the app on a new log in `memory`, and waits until it has acknowledged 5 records.
        static func start(in memory: Memory) throws -> (ChildProcess, path: String) {
            #expect(FileManager.default.isExecutableFile(atPath: binary), "Scripts/test builds \(binary)")
            let path = "\(try memory.directory)/daxpin-append-log-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            let app = try ChildProcess(binary, [path, "50"])
            let pinned = app.line(startingWith: "pinned ")
            #expect(pinned?.hasPrefix("pinned \(path) on rxe") == true, "the app pins the log on the testbed's device: \(app.output)")
            #expect(app.line(startingWith: "appended 4") != nil, "no 5 records acknowledged: \(app.output)")
            return (app, path)
        }

        /// The records the app acknowledged ("appended N" lines), checked byte for byte in the file.
        static func checkAcknowledged(_ app: ChildProcess, path: String, summary: String) throws {
            let lines = app.output.split(separator: "\n")
            let acknowledged = lines.filter { $0.hasPrefix("appended ") }.count
            let line = try #require(lines.first { $0.hasPrefix(summary) }, "no '\(summary)' line: \(app.output)")
            #expect(line.hasPrefix("\(summary) \(acknowledged) records"), "the summary counts what was acknowledged: \(line)")
            let data = try #require(FileManager.default.contents(atPath: path))
            #expect(acknowledged >= 5)
            var missing: [Int] = []
            for number in 0..<acknowledged {
                let expected = Data(String(format: "record %08d\n", number).utf8)
                let at = number * 16
                if data.count < at + 16 || data[at..<at + 16] != expected { missing.append(number) }
            }
            #expect(missing.isEmpty, "acknowledged records not in the file: \(missing.prefix(10))")
        }

        @Test("graceful shutdown (SIGTERM): the appender stops, the lease is released in order, every acknowledged record is in the file",
              arguments: memories)
        func gracefulShutdown(memory: Memory) throws {
            let (app, path) = try Self.start(in: memory)
            defer { unlink(path) }
            #expect(app.stop() == 0, "exit status after SIGTERM: \(app.output)")
            try Self.checkAcknowledged(app, path: path, summary: "released in order after")
            #expect(app.output.contains("MR deregistered"),
                    "the release deregisters the pinned region: \(app.output)")
            Testbed.ran(.movedBytes)
        }

        @Test("another process opens the log: the lease breaks, the app reports the revocation and exits 1, acknowledged records survive",
              arguments: memories)
        func breakByOpen(memory: Memory) throws {
            let (app, path) = try Self.start(in: memory)
            defer { unlink(path) }
            let opener = try Breaker.start(["/bin/dd", "if=\(path)", "of=/dev/null", "count=0", "status=none"])
            let opened = try #require(opener.wait(timeout: .seconds(60)), "the opener never finished")
            #expect(opened.status == 0)
            #expect(eventually(timeout: .seconds(60)) { !app.process.isRunning }, "the app did not end after the break")
            #expect(app.stop() == 1, "exit status after a break: \(app.output)")
            #expect(app.output.contains("break noticed"), "the trace names the break: \(app.output)")
            try Self.checkAcknowledged(app, path: path, summary: "lease broken after")
            Testbed.ran(.movedBytes)
        }
    }
}
