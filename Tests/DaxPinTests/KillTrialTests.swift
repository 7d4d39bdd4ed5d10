@testable import DaxPin
import Foundation
import Glibc
import StorageProtocol
import Testing

extension DaxPin {
    /// `kill -9` of the pinning process during RDMA WRITE traffic, repeated. daxpin-server pins
    /// a tmpfs file under a write lease and publishes it in a private run directory; a
    /// daxpin-client writes into it with durable acknowledgements; the test SIGKILLs the server
    /// at a random moment. Nothing in DaxPin runs after SIGKILL: what must clean up is the
    /// kernel (MR, pin and lease go with the process's descriptors) and `daxpin ls` (the stale
    /// registry file). CI runs `DAXPIN_KILL_TRIALS` (default 3); `Scripts/reliability` runs 20.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct KillTrials {
        static var trials: Int { Int(Testbed.env["DAXPIN_KILL_TRIALS"] ?? "") ?? 3 }
        static let size = 1 << 20
        static let blockSize = 65536

        @Test("kill -9 of the pinning process mid-traffic: kernel drops MR and lease, acknowledged writes stay, ls forgets it")
        func killPinningProcessTrials() throws {
            let directory = try Testbed.required("DAXPIN_TMPFS_DIR")
            var passed = 0
            for trial in 0..<Self.trials {
                let problems = try killTrial(trial, directory: directory)
                if problems.isEmpty { passed += 1 } else { Issue.record("kill trial \(trial): \(problems.joined(separator: "; "))") }
            }
            print("kill -9 trials: \(passed)/\(Self.trials) passed")
            #expect(passed == Self.trials)
            Testbed.ran(.movedBytes)
        }

        /// One trial; returns what went wrong (empty: passed).
        func killTrial(_ trial: Int, directory: String) throws -> [String] {
            var problems: [String] = []
            func check(_ ok: Bool, _ what: @autoclosure () -> String) { if !ok { problems.append(what()) } }
            let file = try ScratchFile(in: directory, size: Self.size, fill: 0)
            let run = ScratchRunDirectory()
            var environment = ProcessInfo.processInfo.environment
            environment["DAXPIN_RUN_DIR"] = run.path
            // The limit equal to the export: a configured limit does not refuse what fits.
            let server = try StorageProcess.server(file: file.path, ["--max-export-bytes", "\(Self.size)"], environment: environment)
            let pid = server.process.processIdentifier
            let seed = UInt32(100 + trial)
            let client = try StorageProcess.client(port: server.port, ["--seed", "\(seed)", "--block-size", "\(Self.blockSize)",
                                                                       "--queue-depth", "8", "--persist-every", "2", "--loop"])
            defer { client.kill(SIGKILL) }
            guard waitUntil(timeout: .seconds(60), { DurableAck.parse(client.stdout).count >= 6 }) else {
                return ["no durable traffic: client \(client.everything)\nserver \(server.everything)"]
            }
            usleep(UInt32.random(in: 0...300_000))  // land the kill anywhere in a pass

            // Before: published, listed as held and pinned, the kernel holds its lease and MR.
            check(run.files == ["\(pid).json"], "registry before: \(run.files)")
            let before = try listed(run)
            let pin = before.first { $0.pid == pid }
            check(pin?.state == "held" && pin?.regions.first?.strategy == "pinned" && pin?.path == file.path,
                  "ls before: \(String(describing: pin))")
            check(leaseLines(pid: pid).count == 1, "lease before: \(leaseLines(pid: pid))")
            // rdma's restrack names the registering thread's id: collect every thread of the server.
            let threads = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).compactMap { pid_t($0) }
            check(!memoryRegions(threads: threads).isEmpty, "no MR of the threads of \(pid) in `rdma resource show mr` before the kill: \(rdmaResources())")

            kill(pid, SIGKILL)
            check(server.waitExit(timeout: .seconds(20)) != nil, "the server outlived SIGKILL")
            check(server.process.terminationReason == .uncaughtSignal, "server ended by \(server.process.terminationReason)")

            // After: the kernel dropped the lease and the MR (and with it the pin).
            check(waitUntil(timeout: .seconds(10)) { leaseLines(pid: pid).isEmpty }, "lease after: \(leaseLines(pid: pid))")
            check(waitUntil(timeout: .seconds(10)) { memoryRegions(threads: threads).isEmpty }, "MR after: \(memoryRegions(threads: threads))")
            // The client notices (its RDMA fails or the connection drops) and ends by itself.
            let clientStatus = client.waitExit(timeout: .seconds(60))
            check(clientStatus == 4 || clientStatus == 3, "client after the kill: \(client.everything)")
            client.kill(SIGKILL)
            _ = client.waitExit(timeout: .seconds(5))

            // Every acknowledged range holds that pass's bytes, or the next pass's (written after
            // the acknowledgement, possibly cut short by the kill), byte by byte.
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            check(bytes.count == Self.size, "file size \(bytes.count)")
            let acks = DurableAck.parse(client.stdout)
            var latest: [UInt64: DurableAck] = [:]
            for ack in acks { latest[ack.offset] = ack }
            var lost = 0
            for ack in latest.values where ack.offset + ack.length <= UInt64(bytes.count) {
                let next = ack.seed &+ 7919
                for offset in ack.offset..<(ack.offset + ack.length) {
                    let byte = bytes[Int(offset)]
                    if byte != StorageProtocol.patternByte(seed: ack.seed, offset: offset),
                       byte != StorageProtocol.patternByte(seed: next, offset: offset) { lost += 1 }
                }
            }
            check(!latest.isEmpty && lost == 0, "\(lost) acknowledged bytes lost of \(latest.count) ranges (\(acks.count) acks)")

            // Nothing holds the file: a truncate proceeds at once (a held lease would block it for
            // the 45 s lease-break-time; starting python takes about 2 s under emulation).
            let truncate = try Breaker.truncate(file.path)
            let result = truncate.wait(timeout: .seconds(20))
            check(result?.status == 0 && (result?.blocked ?? .seconds(99)) < .seconds(10),
                  "truncate after the kill: \(String(describing: result))")
            check(file.size == 0, "size after truncate \(file.size)")

            // ls no longer shows it and removes the dead process's file.
            check(run.files == ["\(pid).json"], "kill -9 should leave the registry file behind: \(run.files)")
            let after = try listed(run)
            check(!after.contains { $0.pid == pid }, "ls after: \(after)")
            check(run.files.isEmpty, "registry after ls: \(run.files)")
            print("kill trial \(trial): \(acks.count) durable acks, client exit \(String(describing: clientStatus)), truncate \(String(describing: result?.blocked))")
            return problems
        }

        func listed(_ run: ScratchRunDirectory) throws -> [ListJSON.Pin] {
            let result = try DaxPinBinary.run(["ls", "--json"], runDirectory: run.path)
            return try JSONDecoder().decode(ListJSON.self, from: Data(result.stdout.utf8)).pins
        }
    }
}

/// /proc/locks lease lines of `pid`.
func leaseLines(pid: pid_t) -> [Substring] {
    readTextFile("/proc/locks").split(separator: "\n").filter {
        $0.contains("LEASE") && $0.split(separator: " ", omittingEmptySubsequences: true).contains { $0 == "\(pid)" }
    }
}

/// The memory registrations the kernel's RDMA resource tracking (iproute2 `rdma`) lists for
/// any of `threads` (it records the id of the thread that registered, not the process id).
func memoryRegions(threads: [pid_t]) -> [Substring] {
    let ids = Set(threads.map { "\($0)" })
    return rdmaResources().split(separator: "\n").filter { line in
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        return zip(words, words.dropFirst()).contains { $0 == "pid" && ids.contains(String($1)) }
    }
}

/// `rdma resource show mr` (all of it, for messages).
func rdmaResources() -> String {
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("daxpin-rdma-res-\(getpid())").path
    defer { unlink(output) }
    guard let process = try? Breaker.start(["/bin/sh", "-c", "/usr/bin/rdma resource show mr > \"$0\" 2>&1", output]),
          process.wait(timeout: .seconds(10)) != nil else { return "rdma resource show mr did not finish" }
    return (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
}

/// Polls `condition` every 50 ms until `timeout`.
func waitUntil(timeout: Duration, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
