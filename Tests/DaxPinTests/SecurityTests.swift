@testable import DaxPin
import Foundation
import Glibc
import StorageProtocol
import Testing

extension DaxPin {
    /// What a hostile client or local user can and cannot make DaxPin's tools do.
    @Suite struct Security {
        // MARK: the registry, as root, end to end

        /// Root runs `daxpin ls` over a run directory (`DAXPIN_RUN_DIR`) a hostile user filled
        /// with entries named after live pids: symlinks to a secret record and to a FIFO (which
        /// would block a reader that followed it), a FIFO, a hard link, a file owned by another
        /// uid, and a symlink named after a dead pid. Nothing is followed or read, nothing hangs,
        /// and removing the stale entry removes the link, never its target.
        @Test("root's daxpin ls follows no planted symlink, reads no foreign file, opens no FIFO, does not hang",
              .enabled(if: geteuid() == 0, "planting foreign-owned files needs root"))
        func listIgnoresPlantedEntries() throws {
            let run = ScratchRunDirectory()
            let outside = ScratchRunDirectory()  // where the secrets live
            // Live pids owned by root: sleepers that outlive the ls runs.
            let sleepers = try (0..<5).map { _ in try Breaker.start(["/bin/sleep", "60"]) }
            defer { for sleeper in sleepers { kill(sleeper.pid, SIGKILL); _ = sleeper.wait(timeout: .seconds(5)) } }
            let pids = sleepers.map(\.pid)
            func secretRecord(_ pid: pid_t, _ marker: String) -> String {
                ProcessPinRecord(pid: pid, processStartTicks: ProcessInfoReader.startTicks(of: pid) ?? 0, processName: marker,
                                 uid: 0, updatedAt: 0, leases: [LeaseRecord(
                                    serial: 1, path: "/\(marker)", device: "0:1", inode: 1, access: "read-write", memory: "tmpfs",
                                    lease: "write lease", state: "held", reason: nil, createdAt: 0, regions: [])]).jsonText
            }
            // 1. symlink to a valid-looking record elsewhere.
            let secret = "\(outside.path)/secret.json"
            try secretRecord(pids[0], "SECRET-VIA-SYMLINK").write(toFile: secret, atomically: true, encoding: .utf8)
            #expect(symlink(secret, "\(run.path)/\(pids[0]).json") == 0)
            // 2. symlink to a FIFO: a reader that followed it would block in open(2) forever.
            let trapFIFO = "\(outside.path)/trap"
            #expect(mkfifo(trapFIFO, 0o666) == 0)
            #expect(symlink(trapFIFO, "\(run.path)/\(pids[1]).json") == 0)
            // 3. a FIFO in the directory itself.
            #expect(mkfifo("\(run.path)/\(pids[2]).json", 0o666) == 0)
            // 4. a hard link to a secret record.
            let linked = "\(outside.path)/linked.json"
            try secretRecord(pids[3], "SECRET-VIA-HARDLINK").write(toFile: linked, atomically: true, encoding: .utf8)
            #expect(link(linked, "\(run.path)/\(pids[3]).json") == 0)
            // 5. a file owned by another user, claiming a root process.
            let foreign = "\(run.path)/\(pids[4]).json"
            try secretRecord(pids[4], "SECRET-FOREIGN").write(toFile: foreign, atomically: true, encoding: .utf8)
            #expect(chown(foreign, 4242, 4242) == 0)
            // 6. a symlink named after a dead pid, pointing at a file ls must not delete.
            let dead = try Breaker.start(["/bin/true"])
            _ = dead.wait()
            let keep = "\(outside.path)/keep"
            try "keep".write(toFile: keep, atomically: true, encoding: .utf8)
            #expect(symlink(keep, "\(run.path)/\(dead.pid).json") == 0)

            let started = ContinuousClock.now
            let json = try DaxPinBinary.run(["ls", "--json"], runDirectory: run.path)
            let table = try DaxPinBinary.run(["ls"], runDirectory: run.path)
            #expect(started.duration(to: .now) < .seconds(30), "ls took \(started.duration(to: .now))")
            #expect(json.status == 0 && table.status == 0, "\(json.stderr) \(table.stderr)")
            for output in [json.stdout, table.stdout, json.stderr, table.stderr] {
                #expect(!output.contains("SECRET"), "a planted record was read: \(output)")
            }
            struct Listing: Decodable { struct Rejected: Decodable { let path: String; let reason: String }; let rejected: [Rejected] }
            let rejected = try JSONDecoder().decode(Listing.self, from: Data(json.stdout.utf8)).rejected
            let reasons = Dictionary(rejected.map { ($0.path, $0.reason) }, uniquingKeysWith: { a, _ in a })
            #expect(reasons["\(run.path)/\(pids[0]).json"] == "symbolic link")
            #expect(reasons["\(run.path)/\(pids[1]).json"] == "symbolic link")
            #expect(reasons["\(run.path)/\(pids[2]).json"] == "not a regular file")
            #expect(reasons["\(run.path)/\(pids[3]).json"] == "has 2 hard links")
            #expect(reasons["\(run.path)/\(pids[4]).json"]?.hasPrefix("owned by uid 4242") == true, "\(reasons)")
            #expect(table.stdout.contains("skipped \(run.path)/\(pids[0]).json: symbolic link"))
            // The dead pid's link is removed; its target is untouched; the secrets are intact.
            #expect(!run.files.contains("\(dead.pid).json"))
            #expect((try? String(contentsOfFile: keep, encoding: .utf8)) == "keep")
            #expect(FileManager.default.fileExists(atPath: secret) && FileManager.default.fileExists(atPath: trapFIFO))

            // A run directory that is itself a symlink is not entered.
            let linkedRun = run.path + "-link"
            #expect(symlink(outside.path, linkedRun) == 0)
            defer { unlink(linkedRun) }
            let viaLink = try DaxPinBinary.run(["ls", "--json"], runDirectory: linkedRun)
            #expect(!viaLink.stdout.contains("SECRET"))
            #expect(viaLink.stdout.contains("not a directory (symlink?)"))
        }

        // MARK: the storage server

        struct NoHello: Error {}

        /// The reason the server gave for refusing a connection with `privateData`, nil if it accepted.
        static func rejection(address: String, port: UInt16, privateData: [UInt8]) -> String? {
            let result = Result { () throws(DaxPinError) -> RDMAConnection in
                try RDMAConnection.connect(to: address, port: port, privateData: privateData)
            }
            switch result {
            case .success(let connection):
                connection.disconnect()
                return nil
            case .failure(.connectionRejected(_, let reason)):
                return String(decoding: reason.prefix { $0 != 0 }, as: UTF8.self)
            case .failure(let other):
                return "not rejected but \(other)"
            }
        }

        /// Connects like daxpin-client, then does one RDMA WRITE or READ of 4 KiB (0xEE) at the
        /// forged place; returns its completion.
        static func probeExport(address: String, port: UInt16, exported: Int,
                                forge: (MemoryRegion.RemoteAccess) -> (MemoryRegion.RemoteAccess, Int), write: Bool) throws -> QueuePair.Completion {
            let connection = try RDMAConnection.connect(to: address, port: port, privateData: ClientHello().encoded)
            defer { connection.disconnect() }
            guard let hello = ServerHello(decoding: connection.peerPrivateData), hello.length == UInt64(exported) else { throw NoHello() }
            let buffer = try Self.sourceBuffer(on: connection.device)
            let (remote, offset) = forge(MemoryRegion.RemoteAccess(address: hello.address, length: Int(hello.length), rkey: hello.rkey))
            let completion = write ? try connection.write(buffer.local, to: remote, offset: offset, timeout: .seconds(20))
                                   : try connection.read(into: buffer.local, from: remote, offset: offset, timeout: .seconds(20))
            _ = try? connection.send(Request.goodbye(id: 0).encoded)
            withExtendedLifetime(buffer) {}
            return completion
        }

        /// A registered 4 KiB buffer full of 0xEE, kept alive by the returned box.
        final class SourceBuffer {
            var lease = LayoutLease.anonymous()
            var local = QueuePair.LocalBuffer(address: 0, length: 0, localKey: 0)
        }

        static func sourceBuffer(on device: RDMADevice) throws -> SourceBuffer {
            let box = SourceBuffer()
            let id = try box.lease.pin(length: 4096, on: device)
            box.local = try box.lease.withRegion(id) { region in
                try region.withMutableBytes { bytes in for i in 0..<4096 { bytes.storeBytes(of: 0xEE, toByteOffset: i, as: UInt8.self) } }
                return QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: 4096, localKey: region.memoryRegion.localKey)
            }
            return box
        }

        /// The export limit refuses before anything is created, resized or pinned (no RDMA
        /// device is needed to get this far, so it runs on the host too).
        @Test("daxpin-server --max-export-bytes refuses an export over the limit before pinning")
        func serverExportLimit() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 65536)
            let server = StorageProcess.binaries.appendingPathComponent("daxpin-server").path
            func run(_ arguments: [String]) throws -> StorageProcess {
                let process = try StorageProcess([server, "--port", "0"] + arguments)
                #expect(process.waitExit(timeout: .seconds(30)) != nil, "still running: \(process.everything)")
                return process
            }
            // The whole file (64 KiB) is over a 4 KiB limit.
            let whole = try run(["--file", file.path, "--max-export-bytes", "4096"])
            #expect(whole.process.terminationStatus == 2, "\(whole.everything)")
            #expect(whole.stderr.contains("cannot start: the export would pin 65536 bytes, more than --max-export-bytes 4096"), "\(whole.everything)")
            // --length and --size are checked before the file is touched.
            let longer = try run(["--file", file.path, "--length", "8192", "--max-export-bytes", "4096"])
            #expect(longer.process.terminationStatus == 64 && longer.stderr.contains("the export would pin 8192 bytes"), "\(longer.everything)")
            let missing = "\(HostDirs.tmpfs)/daxpin-never-created-\(getpid())"
            let grown = try run(["--file", missing, "--size", "1073741824", "--max-export-bytes", "1048576"])
            #expect(grown.process.terminationStatus == 64 && grown.stderr.contains("more than --max-export-bytes 1048576"), "\(grown.everything)")
            #expect(!FileManager.default.fileExists(atPath: missing), "the file was created despite the refusal")
            #expect(file.size == 65536)
            #expect(leaseLines(pid: whole.process.processIdentifier).isEmpty)
            let zero = try run(["--file", file.path, "--max-export-bytes", "0"])
            #expect(zero.process.terminationStatus == 64 && zero.stderr.contains("--max-export-bytes must be positive"))
            let empty = try run(["--file", file.path, "--length", "0"])
            #expect(empty.process.terminationStatus == 64 && empty.stderr.contains("--length must be positive"))
        }

        /// A client holds the export's rkey; the NIC (rxe here) must refuse every access outside
        /// the registered range: just past the end, straddling the end, before the start, and an
        /// address that wraps around 2^64. The server exports the first half of a file; the
        /// second half must stay untouched, and the server keeps serving.
        @Test("RDMA outside the export is refused by the NIC; bytes past the export stay untouched",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func rdmaOutsideExportRefused() throws {
            let size = 1 << 20, exported = 512 << 10
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: size, fill: 0)
            let server = try StorageProcess.server(file: file.path, ["--length", "\(exported)"])
            let address = try Testbed.required("DAXPIN_RDMA_ADDR")
            func attempt(_ forge: (MemoryRegion.RemoteAccess) -> (MemoryRegion.RemoteAccess, Int), write: Bool = true) throws -> QueuePair.Completion {
                try Self.probeExport(address: address, port: server.port, exported: exported, forge: forge, write: write)
            }
            let probes: [(String, Bool, (MemoryRegion.RemoteAccess) -> (MemoryRegion.RemoteAccess, Int))] = [
                ("write just past the end", true, { ($0, exported) }),
                ("write straddling the end", true, { ($0, exported - 2048) }),
                ("write before the start", true, { ($0, -4096) }),
                ("write wrapping around 2^64", true, { (MemoryRegion.RemoteAccess(address: UInt64.max - 2047, length: 4096, rkey: $0.rkey), 0) }),
                ("read past the end", false, { ($0, exported + 4096) }),
            ]
            for (name, write, forge) in probes {
                let completion = try attempt(forge, write: write)
                #expect(completion != .success, "\(name): \(completion)")
                print("\(name): \(completion)")
            }
            // A connection without the storage hello, or with another version, is refused with a reason.
            for (privateData, reason) in [([UInt8]([1, 2, 3]), "not a daxpin storage client"),
                                          (ClientHello(version: 9).encoded, "protocol version 9 unsupported")] {
                let outcome = Self.rejection(address: address, port: server.port, privateData: privateData)
                #expect(outcome?.contains(reason) == true, "hello \(privateData): \(String(describing: outcome))")
            }
            // The server still serves, and an in-range write lands.
            #expect(try attempt({ ($0, 0) }) == .success)
            #expect(server.isRunning)
            try server.stop()
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            #expect(bytes[0..<4096].allSatisfy { $0 == 0xEE })
            #expect(bytes[4096..<size].allSatisfy { $0 == 0 }, "bytes outside the in-range write changed")
            Testbed.ran(.refusalOnly)
        }
    }
}
