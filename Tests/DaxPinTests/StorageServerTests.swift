@testable import DaxPin
import Foundation
import Glibc
import StorageProtocol
import Testing

extension DaxPin {
    /// daxpin-server and daxpin-client as separate processes over the testbed's rxe0
    /// (rdma_cm loopback to 192.0.2.1). Every wait is bounded.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct StorageServer {
        static let exportSize = 1 << 20

        @Test("write, read back and verify with checksums")
        func roundTrip() throws {
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: Self.exportSize, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            let client = try StorageProcess.client(port: server.port, ["--seed", "7", "--block-size", "16384", "--queue-depth", "4",
                                                                       "--passes", "2", "--verify"])
            #expect(client.waitExit(timeout: .seconds(120)) == 0, "client: \(client.everything)")
            #expect(client.stdout.contains("verified pass=1"))
            #expect(client.stdout.contains("throughput: wrote \(2 * Self.exportSize) bytes"))
            try server.stop()
            #expect(server.stdout.contains("release trace"))
            // The file holds the last pass, byte for byte.
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            let seed: UInt32 = 7 &+ 7919
            #expect(StorageProtocol.checksum(bytes) == StorageProtocol.checksum((0..<UInt64(bytes.count)).lazy.map {
                StorageProtocol.patternByte(seed: seed, offset: $0) }))
            Testbed.ran(.movedBytes)
        }

        @Test("a durable write is acknowledged and is in the file")
        func durableWrite() throws {
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: Self.exportSize, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            let client = try StorageProcess.client(port: server.port, ["--seed", "3", "--blocks", "32", "--persist-every", "8"])
            #expect(client.waitExit(timeout: .seconds(60)) == 0, "client: \(client.everything)")
            let acks = DurableAck.parse(client.stdout)
            #expect(acks.count == 4)
            #expect(acks.map(\.offset) == [0, 32768, 65536, 98304])
            try server.stop()
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            for ack in acks {
                #expect(ack.matches(bytes), "durable range \(ack.offset)+\(ack.length) differs in the file")
            }
            #expect(bytes[131072..<Self.exportSize].allSatisfy { $0 == 0 }, "bytes beyond what was written changed")
            Testbed.ran(.movedBytes)
        }

        @Test("a truncate during traffic: clients stop, the breaker proceeds, acknowledged writes survive")
        func truncateDuringTraffic() throws {
            let size = 4 << 20, truncated = 1 << 20
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: size, fill: 0)
            let server = try StorageProcess.server(file: file.path, ["--quiesce-budget", "4000"])
            let client = try StorageProcess.client(port: server.port, ["--seed", "11", "--block-size", "65536", "--queue-depth", "8",
                                                                       "--persist-every", "4", "--loop"])
            #expect(client.waitFor("durable", timeout: .seconds(60)), "client: \(client.everything)")
            usleep(500_000)
            let started = ContinuousClock.now
            let breaker = try StorageProcess(["/usr/bin/python3", "-c", "import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))",
                                              file.path, "\(truncated)"])
            #expect(breaker.waitExit(timeout: .seconds(40)) == 0, "truncate: \(breaker.everything)")
            let blocked = started.duration(to: .now)
            #expect(blocked < .seconds(10), "the breaker waited \(blocked)")
            #expect(client.waitExit(timeout: .seconds(30)) == 3, "client: \(client.everything)")
            #expect(client.stderr.contains("the server is revoking its export"))
            #expect(server.waitExit(timeout: .seconds(20)) == 0, "server: \(server.everything)")
            // Revocation order: quiesce, QPs to error, deregister, unmap, unlock.
            let trace = server.stdout
            let order = ["quiesce finished", "queue pair(s) moved to error", "MR deregistered", "unmapped", "F_UNLCK"]
            let positions = order.map { trace.range(of: $0)?.lowerBound }
            #expect(positions.allSatisfy { $0 != nil }, "trace: \(trace)")
            #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "trace order: \(trace)")
            #expect(server.stderr.contains("every client stopped"))
            #expect(file.size == truncated)
            // Every acknowledged range below the new size holds that pass's data, or the same
            // client's next pass (written after the acknowledgement, before the stop).
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            let acks = DurableAck.parse(client.stdout)
            #expect(!acks.isEmpty)
            var latest: [UInt64: DurableAck] = [:]
            for ack in acks { latest[ack.offset] = ack }
            for ack in latest.values where ack.offset + ack.length <= UInt64(truncated) {
                for block in stride(from: ack.offset, to: ack.offset + ack.length, by: 65536) {
                    let range = Int(block)..<Int(block) + 65536
                    let ok = [ack.seed, ack.seed &+ 7919].contains { seed in
                        range.allSatisfy { bytes[$0] == StorageProtocol.patternByte(seed: seed, offset: UInt64($0)) }
                    }
                    #expect(ok, "acknowledged block at \(block) (pass \(ack.pass)) was lost")
                }
            }
            Testbed.ran(.movedBytes)
        }

        @Test("a client that ignores the stop is cut off: its QP goes to error before the MR is deregistered")
        func forcedRevocation() throws {
            let size = 2 << 20, truncated = 1 << 20
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: size, fill: 0)
            let server = try StorageProcess.server(file: file.path, ["--quiesce-budget", "1000"])
            let client = try StorageProcess.client(port: server.port, ["--seed", "13", "--block-size", "65536", "--loop",
                                                                       "--ignore-stop"])
            #expect(client.waitFor("durable", timeout: .seconds(60)), "client: \(client.everything)")
            let breaker = try StorageProcess(["/usr/bin/python3", "-c", "import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))",
                                              file.path, "\(truncated)"])
            #expect(breaker.waitExit(timeout: .seconds(40)) == 0, "truncate: \(breaker.everything)")
            #expect(client.waitExit(timeout: .seconds(60)) == 4, "client: \(client.everything)")
            #expect(client.stderr.contains("RDMA to the export failed"))
            #expect(server.waitExit(timeout: .seconds(20)) == 0, "server: \(server.everything)")
            #expect(server.stderr.contains("did not stop in time"))
            let trace = server.stdout
            let error = trace.range(of: "queue pair(s) moved to error"), deregistered = trace.range(of: "MR deregistered")
            #expect(error != nil && deregistered != nil && error!.lowerBound < deregistered!.lowerBound, "trace: \(trace)")
            #expect(file.size == truncated)
            Testbed.ran(.movedBytes)
        }

        @Test("four concurrent clients on disjoint ranges")
        func fourClients() throws {
            let quarter = Self.exportSize / 4
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: Self.exportSize, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            let clients = try (0..<4).map { index in
                try StorageProcess.client(port: server.port, ["--seed", "\(20 + index)", "--offset", "\(index * quarter)",
                                                              "--blocks", "\(quarter / 8192)", "--block-size", "8192",
                                                              "--queue-depth", "\(2 + index * 2)", "--passes", "2", "--verify"])
            }
            for (index, client) in clients.enumerated() {
                #expect(client.waitExit(timeout: .seconds(180)) == 0, "client \(index): \(client.everything)")
                #expect(client.stdout.contains("verified pass=1"))
            }
            try server.stop()
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            for index in 0..<4 {
                let seed = UInt32(20 + index) &+ 7919
                let range = index * quarter..<(index + 1) * quarter
                #expect(range.allSatisfy { bytes[$0] == StorageProtocol.patternByte(seed: seed, offset: UInt64($0)) },
                        "client \(index)'s range")
            }
            Testbed.ran(.movedBytes)
        }

        @Test("malformed requests are rejected while another client's traffic continues")
        func malformedRequestRejected() throws {
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: Self.exportSize, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            let good = try StorageProcess.client(port: server.port, ["--seed", "5", "--block-size", "16384", "--passes", "3", "--verify"])
            #expect(good.waitFor("durable", timeout: .seconds(60)))
            let bad = try StorageProcess.client(port: server.port, ["--malformed", "--blocks", "0"])
            #expect(bad.waitExit(timeout: .seconds(60)) == 0, "malformed client: \(bad.everything)")
            let rejected = bad.stdout.split(separator: "\n").filter { $0.hasPrefix("rejected") }
            #expect(rejected.count == 4, "\(bad.everything)")
            #expect(bad.stdout.contains("outside the export"))
            #expect(good.waitExit(timeout: .seconds(120)) == 0, "good client: \(good.everything)")
            #expect(good.stdout.contains("verified pass=2"))
            #expect(server.stderr.contains("rejected request"))
            #expect(server.isRunning)
            try server.stop()
            Testbed.ran(.movedBytes)
        }

        @Test("a client killed mid-operation leaves the server healthy")
        func clientKilledMidOperation() throws {
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: Self.exportSize, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            let doomed = try StorageProcess.client(port: server.port, ["--seed", "1", "--loop", "--block-size", "16384"])
            #expect(doomed.waitFor("durable", timeout: .seconds(60)))
            doomed.kill(SIGKILL)
            _ = doomed.waitExit(timeout: .seconds(10))
            #expect(server.waitFor("client left", in: .stderr, timeout: .seconds(20)), "server: \(server.everything)")
            let next = try StorageProcess.client(port: server.port, ["--seed", "2", "--block-size", "16384", "--verify"])
            #expect(next.waitExit(timeout: .seconds(120)) == 0, "client after the kill: \(next.everything)")
            #expect(next.stdout.contains("verified pass=0"))
            #expect(server.isRunning)
            try server.stop()
            Testbed.ran(.movedBytes)
        }
    }

    /// daxpin-server on rxe2 and daxpin-client on rxe1, the two ends of the testbed's veth
    /// pair (Scripts/testbed-guest, setup_veth): the RoCE packets cross a link instead of
    /// rxe's internal loopback. Separate from the loopback suite so that nothing else
    /// touches the veth counters while it runs.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason), .serialized) struct StorageServerOverVeth {
        /// rx/tx bytes of both veth ends, from /sys/class/net/NETDEV/statistics.
        struct Counters {
            var clientTx = 0, clientRx = 0, serverTx = 0, serverRx = 0
            /// The veth pair of this namespace, or (`namespaces`) of the two network namespaces.
            init(namespaces: Bool = false) throws {
                func read(_ netdev: String, _ name: String, in namespace: String?) throws -> Int {
                    let path = "/sys/class/net/\(netdev)/statistics/\(name)"
                    let text: String
                    if let namespace {
                        // `ip netns exec` mounts that namespace's /sys for the command.
                        let cat = try StorageProcess(StorageProcess.inNamespace(namespace) + ["/bin/cat", path])
                        guard cat.waitExit(timeout: .seconds(20)) == 0 else { throw StorageProcess.StartFailure() }
                        text = cat.stdout
                    } else {
                        text = try String(contentsOfFile: path, encoding: .utf8)
                    }
                    guard let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw StorageProcess.StartFailure() }
                    return value
                }
                let prefix = namespaces ? "DAXPIN_NETNS" : "DAXPIN_VETH"
                let client = try Testbed.required("\(prefix)_CLIENT_NETDEV"), server = try Testbed.required("\(prefix)_SERVER_NETDEV")
                let clientSpace = namespaces ? try Testbed.required("DAXPIN_NETNS_CLIENT") : nil
                let serverSpace = namespaces ? try Testbed.required("DAXPIN_NETNS_SERVER") : nil
                clientTx = try read(client, "tx_bytes", in: clientSpace); clientRx = try read(client, "rx_bytes", in: clientSpace)
                serverTx = try read(server, "tx_bytes", in: serverSpace); serverRx = try read(server, "rx_bytes", in: serverSpace)
            }
        }

        @Test("round trip and a truncate between rxe1 and rxe2 across the veth pair")
        func roundTripAndTruncateAcrossVeth() throws {
            try Self.roundTripAndTruncate(namespaces: false)
        }

        @Test("from Linux 7.1: round trip and a truncate between rxe4 and rxe5 in two network namespaces")
        func roundTripAndTruncateAcrossNamespaces() throws {
            guard KernelBehaviour.running.rxeWorksAcrossNetworkNamespaces else {
                // This kernel's rxe works only in the initial namespace: the testbed made no
                // namespaces, and the single-namespace veth pair above is its cross-link test.
                #expect(Testbed.env["DAXPIN_NETNS_SERVER"] == nil, "the testbed made namespaces on a kernel whose rxe cannot use them")
                return
            }
            try Self.roundTripAndTruncate(namespaces: true)
        }

        /// The server on the server end, the client on the client end (of the veth pair in this
        /// namespace, or in their own network namespaces), a verified round trip whose bytes
        /// cross the link, then a truncate during traffic that revokes in order.
        static func roundTripAndTruncate(namespaces: Bool) throws {
            let size = 1 << 20, truncated = 256 << 10
            let prefix = namespaces ? "DAXPIN_NETNS" : "DAXPIN_VETH"
            let serverAddress = try Testbed.required("\(prefix)_SERVER_ADDR")
            let clientAddress = try Testbed.required("\(prefix)_CLIENT_ADDR")
            let clientDevice = try Testbed.required("\(prefix)_CLIENT_DEVICE")
            let serverSpace = namespaces ? try Testbed.required("DAXPIN_NETNS_SERVER") : nil
            let clientSpace = namespaces ? try Testbed.required("DAXPIN_NETNS_CLIENT") : nil
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: size, fill: 0)
            let server = try StorageProcess.server(file: file.path, address: serverAddress, ["--quiesce-budget", "4000"],
                                                   namespace: serverSpace)
            #expect(server.stdout.contains("address=\(serverAddress)"), "server: \(server.everything)")
            if namespaces {
                #expect(server.stderr.contains("device=\(try Testbed.required("DAXPIN_NETNS_SERVER_DEVICE"))"), "server: \(server.everything)")
            }

            // Round trip: two passes of WRITEs, each read back (READ) and checksummed.
            let before = try Counters(namespaces: namespaces)
            let client = try StorageProcess.client(port: server.port, address: serverAddress, source: clientAddress,
                                                   ["--seed", "7", "--block-size", "16384", "--queue-depth", "4", "--passes", "2", "--verify"],
                                                   namespace: clientSpace)
            #expect(client.waitExit(timeout: .seconds(120)) == 0, "client: \(client.everything)")
            #expect(client.stdout.contains("device=\(clientDevice)"), "the client is not on \(clientDevice): \(client.stdout)")
            #expect(client.stdout.contains("verified pass=1"))
            let after = try Counters(namespaces: namespaces)
            // The WRITE payload (2 MiB) left the client's end and arrived at the server's end; the
            // READ responses (2 MiB) went the other way. Headers and acks only add to it.
            let written = 2 * size
            #expect(after.clientTx - before.clientTx >= written, "client end tx \(before.clientTx) -> \(after.clientTx)")
            #expect(after.serverRx - before.serverRx >= written, "server end rx \(before.serverRx) -> \(after.serverRx)")
            #expect(after.serverTx - before.serverTx >= written, "server end tx \(before.serverTx) -> \(after.serverTx)")
            #expect(after.clientRx - before.clientRx >= written, "client end rx \(before.clientRx) -> \(after.clientRx)")
            print("\(namespaces ? "two namespaces" : "veth") round trip: client end tx +\(after.clientTx - before.clientTx) rx +\(after.clientRx - before.clientRx) bytes,"
                  + " server end tx +\(after.serverTx - before.serverTx) rx +\(after.serverRx - before.serverRx) bytes")

            // Truncate during traffic: the stop and the revocation cross the link too.
            let looper = try StorageProcess.client(port: server.port, address: serverAddress, source: clientAddress,
                                                   ["--seed", "11", "--block-size", "65536", "--queue-depth", "8",
                                                    "--persist-every", "4", "--loop"], namespace: clientSpace)
            #expect(looper.waitFor("durable", timeout: .seconds(60)), "client: \(looper.everything)")
            let beforeTruncate = try Counters(namespaces: namespaces)
            let breaker = try StorageProcess(["/usr/bin/python3", "-c", "import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))",
                                              file.path, "\(truncated)"])
            #expect(breaker.waitExit(timeout: .seconds(40)) == 0, "truncate: \(breaker.everything)")
            #expect(looper.waitExit(timeout: .seconds(30)) == 3, "client: \(looper.everything)")
            #expect(looper.stderr.contains("the server is revoking its export"))
            #expect(server.waitExit(timeout: .seconds(20)) == 0, "server: \(server.everything)")
            #expect(server.stderr.contains("every client stopped"), "server: \(server.everything)")
            let trace = server.stdout
            let order = ["quiesce finished", "queue pair(s) moved to error", "MR deregistered", "unmapped", "F_UNLCK"]
            let positions = order.map { trace.range(of: $0)?.lowerBound }
            #expect(positions.allSatisfy { $0 != nil }, "trace: \(trace)")
            #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "trace order: \(trace)")
            #expect(file.size == truncated)
            let afterTruncate = try Counters(namespaces: namespaces)
            // The stop message went server -> client over the veth, `stopped` came back.
            #expect(afterTruncate.serverTx > beforeTruncate.serverTx && afterTruncate.clientTx > beforeTruncate.clientTx)
            Testbed.ran(.movedBytes, namespaces ? "roundTripAndTruncateAcrossNamespaces()" : "roundTripAndTruncateAcrossVeth()")
        }
    }

    /// `--direct-write-to-pmem` and `--persist-method`: the one-sided (appliance) persistency
    /// method is opt-in on the server, only for persistent memory, and a client uses it only
    /// when the server advertises it.
    @Suite(.serialized) struct StorageServerDirectWrite {
        /// Refused before any RDMA resource exists, so it runs on the host too.
        @Test("daxpin-server refuses --direct-write-to-pmem on a tmpfs export")
        func refusedOnTmpfs() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 65536)
            let server = try StorageProcess([StorageProcess.binaries.appendingPathComponent("daxpin-server").path,
                                             "--file", file.path, "--port", "0", "--direct-write-to-pmem"])
            #expect(server.waitExit(timeout: .seconds(30)) == 2, "\(server.everything)")
            #expect(server.stderr.contains("--direct-write-to-pmem needs a persistent-memory export (device-dax or fs-dax)"),
                    "\(server.everything)")
            #expect(!server.stdout.contains("ready"))
        }

        @Test("--persist-method read against a device-dax server with --direct-write-to-pmem gets durable acks",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func readMethodOnDevDAX() throws {
            let dax = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let server = try StorageProcess.server(file: dax, ["--length", "\(2 << 20)", "--direct-write-to-pmem"])
            let client = try StorageProcess.client(port: server.port, ["--seed", "5", "--blocks", "32", "--persist-every", "8",
                                                                       "--persist-method", "read", "--verify"])
            #expect(client.waitExit(timeout: .seconds(60)) == 0, "client: \(client.everything)")
            #expect(client.stdout.contains("persist-method=read"))
            #expect(DurableAck.parse(client.stdout).map(\.offset) == [0, 32768, 65536, 98304])
            #expect(client.stdout.contains("verified pass=0"))
            // Queue depth 1 with a persist per block takes the client's one-block path (the
            // durable benchmark's shape): every block acknowledged, in order, and the data verified.
            let single = try StorageProcess.client(port: server.port, ["--seed", "9", "--blocks", "16", "--block-size", "4096",
                                                                       "--queue-depth", "1", "--persist-every", "1",
                                                                       "--persist-method", "read", "--verify"])
            #expect(single.waitExit(timeout: .seconds(60)) == 0, "client: \(single.everything)")
            #expect(DurableAck.parse(single.stdout).map(\.offset) == (0..<16).map { UInt64($0 * 4096) })
            #expect(single.stdout.contains("verified pass=0"))
            // auto picks from the hello: native FLUSH where this build and kernel offer it (the
            // server offers it for device-dax too), else read; send still works against the same server.
            let auto = try StorageProcess.client(port: server.port, ["--blocks", "4", "--persist-every", "2"])
            let autoMethod = StorageServerFlush.flushPossible ? "flush" : "read"
            #expect(auto.waitExit(timeout: .seconds(60)) == 0, "client: \(auto.everything)")
            #expect(auto.stdout.contains("persist-method=\(autoMethod)") && DurableAck.parse(auto.stdout).count == 2, "\(auto.everything)")
            let send = try StorageProcess.client(port: server.port, ["--blocks", "4", "--persist-every", "1", "--persist-method", "send"])
            #expect(send.waitExit(timeout: .seconds(60)) == 0, "client: \(send.everything)")
            #expect(send.stdout.contains("persist-method=send") && DurableAck.parse(send.stdout).count == 4)
            try server.stop()
            Testbed.ran(.movedBytes)
        }

        @Test("--persist-method read is refused against a server without --direct-write-to-pmem",
              .enabled(if: Testbed.isActive, Testbed.skipReason))
        func readMethodRefused() throws {
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: 1 << 20, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            let client = try StorageProcess.client(port: server.port, ["--blocks", "4", "--persist-method", "read"])
            #expect(client.waitExit(timeout: .seconds(60)) == 4, "client: \(client.everything)")
            #expect(client.stderr.contains("--persist-method read needs a server started with --direct-write-to-pmem"))
            #expect(DurableAck.parse(client.stdout).isEmpty)
            // auto falls back to the server's flush.
            let auto = try StorageProcess.client(port: server.port, ["--blocks", "4", "--persist-every", "2", "--offset", "65536"])
            #expect(auto.waitExit(timeout: .seconds(60)) == 0, "client: \(auto.everything)")
            #expect(auto.stdout.contains("persist-method=send") && DurableAck.parse(auto.stdout).count == 2)
            try server.stop()
            // (Read after the server let go of its lease: opening the file would break it.)
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            #expect(bytes[0..<65536].allSatisfy { $0 == 0 }, "the refused client wrote anyway")
            Testbed.ran(.movedBytes)
        }
    }

    /// Native RDMA FLUSH as a durability method (`--persist-method flush`), for both outcomes:
    /// offered where this build (rdma-core 45+), the kernel and persistent memory allow it,
    /// refused with the reason everywhere else. Serialized with the device-dax tests above: the
    /// servers export the same device range.
    @Suite(.serialized, .enabled(if: Testbed.isActive, Testbed.skipReason)) struct StorageServerFlush {
        static var flushPossible: Bool { RDMABuildFeatures.current.flush && KernelBehaviour.running.rxeAcceptsFlushAccess }

        @Test("--persist-method flush against a device-dax server: durable acks from FLUSH, or a refusal that names the cause")
        func flushOnDevDAX() throws {
            let dax = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let server = try StorageProcess.server(file: dax, ["--length", "\(2 << 20)"])
            let flush = try StorageProcess.client(port: server.port, ["--seed", "7", "--blocks", "32", "--persist-every", "8",
                                                                      "--persist-method", "flush", "--verify"])
            let flushStatus = flush.waitExit(timeout: .seconds(60))
            let auto = try StorageProcess.client(port: server.port, ["--blocks", "4", "--persist-every", "2", "--offset", "262144"])
            #expect(auto.waitExit(timeout: .seconds(60)) == 0, "client: \(auto.everything)")
            if Self.flushPossible {
                #expect(server.stderr.contains("rdma-flush=offered"), "\(server.everything)")
                #expect(flushStatus == 0, "client: \(flush.everything)")
                #expect(flush.stdout.contains("persist-method=flush"))
                #expect(DurableAck.parse(flush.stdout).map(\.offset) == [0, 32768, 65536, 98304])
                #expect(flush.stdout.contains("verified pass=0"))
                // A FLUSH per block at queue depth 1: every block acknowledged, in order.
                let single = try StorageProcess.client(port: server.port, ["--seed", "3", "--blocks", "8", "--queue-depth", "1",
                                                                           "--persist-every", "1", "--persist-method", "flush",
                                                                           "--verify", "--offset", "524288"])
                #expect(single.waitExit(timeout: .seconds(60)) == 0, "client: \(single.everything)")
                #expect(DurableAck.parse(single.stdout).map(\.offset) == (0..<8).map { 524288 + UInt64($0 * 4096) })
                #expect(single.stdout.contains("verified pass=0"))
                // auto prefers FLUSH when both ends offer it.
                #expect(auto.stdout.contains("persist-method=flush"), "\(auto.everything)")
            } else {
                #expect(server.stderr.contains("rdma-flush=not offered"), "\(server.everything)")
                #expect(flushStatus == 4, "client: \(flush.everything)")
                let cause = RDMABuildFeatures.current.flush ? "needs a server that offers RDMA FLUSH" : "compiled against rdma-core"
                #expect(flush.stderr.contains("--persist-method flush") && flush.stderr.contains(cause), "\(flush.everything)")
                #expect(DurableAck.parse(flush.stdout).isEmpty)
                #expect(auto.stdout.contains("persist-method=send"), "\(auto.everything)")
            }
            #expect(DurableAck.parse(auto.stdout).count == 2)
            try server.stop()
            Testbed.ran(.movedBytes)
        }

        @Test("FLUSH is never offered for a tmpfs export: the client asking for it and a server required to offer it are refused")
        func flushRefusedOnTmpfs() throws {
            let file = try ScratchFile(in: Testbed.required("DAXPIN_TMPFS_DIR"), size: 1 << 20, fill: 0)
            let required = try StorageProcess([StorageProcess.binaries.appendingPathComponent("daxpin-server").path,
                                               "--file", file.path, "--port", "0", "--persist-method", "flush"])
            #expect(required.waitExit(timeout: .seconds(60)) == 2, "\(required.everything)")
            let why = RDMABuildFeatures.current.flush ? "not persistent memory" : "compiled against rdma-core"
            #expect(required.stderr.contains("--persist-method flush: RDMA FLUSH cannot be offered") && required.stderr.contains(why),
                    "\(required.everything)")
            #expect(!required.stdout.contains("ready"))

            let server = try StorageProcess.server(file: file.path)
            let client = try StorageProcess.client(port: server.port, ["--blocks", "4", "--persist-method", "flush"])
            #expect(client.waitExit(timeout: .seconds(60)) == 4, "client: \(client.everything)")
            let cause = RDMABuildFeatures.current.flush ? "needs a server that offers RDMA FLUSH" : "compiled against rdma-core"
            #expect(client.stderr.contains(cause), "\(client.everything)")
            #expect(DurableAck.parse(client.stdout).isEmpty)
            try server.stop()
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            #expect(bytes[0..<65536].allSatisfy { $0 == 0 }, "the refused client wrote anyway")
            Testbed.ran(.refusalOnly)
        }
    }

    /// The request decoder is pure: these run on any host.
    @Suite struct StorageProtocolDecoder {
        let length: UInt64 = 1 << 20

        @Test("valid requests round-trip")
        func roundTrip() throws {
            let requests: [Request] = [.persist(id: 1, offset: 0, length: 4096), .checksum(id: 2, offset: 4096, length: length - 4096),
                                       .stopped(id: 3), .goodbye(id: 4)]
            for request in requests {
                #expect(try StorageProtocol.decodeRequest(request.encoded, exportLength: length).get() == request)
            }
            let responses: [Response] = [.persisted(id: 1, offset: 2, length: 3), .checksum(id: 4, offset: 5, length: 6, value: 7),
                                         .stop(deadlineMilliseconds: 900, reason: "truncate"), .error(id: 8, code: 7, message: "no")]
            for response in responses { #expect(StorageProtocol.decodeResponse(response.encoded) == response) }
            let hello = ServerHello(clientID: 9, address: 0xdead_beef, length: length, rkey: 0x42)
            #expect(ServerHello(decoding: hello.encoded) == hello)
            #expect(hello.encoded[5] == 0 && hello.flags.isEmpty)
        }

        @Test("the server hello's flags byte round-trips; a hello from before it decodes with no flags")
        func helloFlags() throws {
            let flagged = ServerHello(flags: .directWriteToPMem, clientID: 3, address: 0x1000, length: length, rkey: 0x77)
            let bytes = flagged.encoded
            #expect(bytes.count == 36 && bytes[5] == 1)
            #expect(ServerHello(decoding: bytes) == flagged)
            #expect(ServerHello(decoding: bytes)?.flags.contains(.directWriteToPMem) == true)
            // A version-1 server before the flags byte: magic, version, three zero bytes, ...
            var old: [UInt8] = [0x44, 0x58, 0x50, 0x53, 1, 0, 0, 0, 3, 0, 0, 0]
            old += [0, 0x10, 0, 0, 0, 0, 0, 0] + withUnsafeBytes(of: length.littleEndian, Array.init) + [0x77, 0, 0, 0, 0, 0, 0, 0]
            let decoded = try #require(ServerHello(decoding: old))
            #expect(decoded.flags.isEmpty)
            #expect(decoded == ServerHello(clientID: 3, address: 0x1000, length: length, rkey: 0x77))
            // Unknown bits from a newer server are kept but do not imply direct-write-to-pmem.
            var newer = ServerHello(clientID: 3, address: 0x1000, length: length, rkey: 0x77).encoded
            newer[5] = 0x80
            #expect(ServerHello(decoding: newer)?.flags.contains(.directWriteToPMem) == false)
            #expect(ClientHello(decoding: ClientHello().encoded) == ClientHello())
            #expect(ClientHello(decoding: [1, 2, 3]) == nil)
        }

        static let badRequests: [([UInt8], UInt16)] = [
            ([], 1), ([1, 1, 0], 1),
            ([1, 9, 0, 0, 0, 0, 0, 0], 2), ([1, 1, 1, 0, 0, 0, 0, 0], 3), ([0x7f, 1, 0, 0, 0, 0, 0, 0], 4),
            ([1, 1, 0, 0, 0, 0, 0, 0], 5), ([3, 1, 0, 0, 0, 0, 0, 0, 0], 5),
        ]

        @Test("bad requests get the right problem", arguments: badRequests)
        func rejected(bytes: [UInt8], code: UInt16) {
            guard case .failure(let error) = StorageProtocol.decodeRequest(bytes, exportLength: length) else {
                Issue.record("accepted \(bytes)"); return
            }
            #expect(error.code == code, "\(error)")
        }

        @Test("ranges are checked against the export without overflow")
        func ranges() {
            func problem(_ offset: UInt64, _ count: UInt64) -> RequestError.Problem? {
                if case .failure(let error) = StorageProtocol.decodeRequest(Request.persist(id: 1, offset: offset, length: count).encoded,
                                                                           exportLength: length) { return error.problem }
                return nil
            }
            #expect(problem(0, length) == nil)
            #expect(problem(length - 1, 1) == nil)
            #expect(problem(0, 0) == .emptyRange)
            #expect(problem(length, 1) == .outOfRange(offset: length, length: 1, exportLength: length))
            #expect(problem(UInt64.max - 10, 4096) == .outOfRange(offset: UInt64.max - 10, length: 4096, exportLength: length))
            #expect(problem(1, UInt64.max) != nil)
        }

        @Test("random bytes never trap and never pass out-of-range requests")
        func fuzz() {
            var generator = SystemRandomNumberGenerator()
            for round in 0..<20_000 {
                let count = Int.random(in: 0...40, using: &generator)
                var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if round % 2 == 0, count >= 4 { bytes[0] = UInt8.random(in: 1...4); bytes[1] = 1; bytes[2] = 0; bytes[3] = 0 }
                if case .success(let request) = StorageProtocol.decodeRequest(bytes, exportLength: length) {
                    switch request {
                    case .persist(_, let offset, let count), .checksum(_, let offset, let count):
                        #expect(count > 0 && offset < length && count <= length - offset)
                    case .stopped, .goodbye: break
                    }
                    #expect(request.encoded == bytes)
                }
                _ = StorageProtocol.decodeResponse(bytes)
            }
        }
    }
}

/// A `durable pass=P seed=S offset=O length=L` line of daxpin-client.
struct DurableAck {
    let pass: Int, seed: UInt32, offset: UInt64, length: UInt64

    static func parse(_ output: String) -> [DurableAck] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("durable ") else { return nil }
            var fields: [String: String] = [:]
            for pair in line.split(separator: " ").dropFirst() {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            guard let pass = fields["pass"].flatMap({ Int($0) }), let seed = fields["seed"].flatMap({ UInt32($0) }),
                  let offset = fields["offset"].flatMap({ UInt64($0) }), let length = fields["length"].flatMap({ UInt64($0) })
            else { return nil }
            return DurableAck(pass: pass, seed: seed, offset: offset, length: length)
        }
    }

    func matches(_ bytes: [UInt8]) -> Bool {
        guard offset + length <= UInt64(bytes.count) else { return false }
        return (offset..<offset + length).allSatisfy { bytes[Int($0)] == StorageProtocol.patternByte(seed: seed, offset: $0) }
    }
}

/// A child process with its output in files (no pipe can fill up); killed if still running at the end.
final class StorageProcess {
    enum Stream { case stdout, stderr }
    let process = Process()
    let directory: URL
    private(set) var port: UInt16 = 0

    /// The built binaries sit next to the test bundle (/proc/self/exe's directory).
    static var binaries: URL {
        URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "/proc/self/exe")
            .deletingLastPathComponent()
    }

    init(_ arguments: [String], environment: [String: String]? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("daxpin-storage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("out").path, contents: nil)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("err").path, contents: nil)
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = try FileHandle(forWritingTo: directory.appendingPathComponent("out"))
        process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("err"))
        process.standardInput = FileHandle.nullDevice
        if let environment { process.environment = environment }
        try process.run()
    }

    /// Starts daxpin-server on `file` (any free port) and waits for its ready line.
    /// The command prefix that runs a program in network namespace `namespace` (`ip netns exec`
    /// execs it: the process is the program itself).
    static func inNamespace(_ namespace: String?) -> [String] {
        namespace.map { ["/usr/bin/env", "ip", "netns", "exec", $0] } ?? []
    }

    static func server(file: String, address: String? = nil, _ extra: [String] = [],
                       environment: [String: String]? = nil, namespace: String? = nil) throws -> StorageProcess {
        let server = try StorageProcess(inNamespace(namespace) + [binaries.appendingPathComponent("daxpin-server").path, "--file", file,
                                         "--address", address ?? Testbed.required("DAXPIN_RDMA_ADDR"), "--port", "0"] + extra,
                                        environment: environment)
        guard server.waitFor("ready", timeout: .seconds(60)),
              let field = server.stdout.split(separator: " ").first(where: { $0.hasPrefix("port=") }),
              let port = UInt16(field.dropFirst(5)) else {
            Issue.record("the server did not get ready: \(server.everything)")
            throw StartFailure()
        }
        server.port = port
        return server
    }

    /// Starts daxpin-client; `source` picks the local RDMA device (`--source`).
    static func client(port: UInt16, address: String? = nil, source: String? = nil, _ arguments: [String],
                       namespace: String? = nil) throws -> StorageProcess {
        try StorageProcess(inNamespace(namespace) + [binaries.appendingPathComponent("daxpin-client").path,
                            "--address", address ?? Testbed.required("DAXPIN_RDMA_ADDR"), "--port", "\(port)"]
                           + (source.map { ["--source", $0] } ?? []) + arguments)
    }

    struct StartFailure: Error {}

    var stdout: String { (try? String(contentsOf: directory.appendingPathComponent("out"), encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: directory.appendingPathComponent("err"), encoding: .utf8)) ?? "" }
    var everything: String { "status \(process.isRunning ? "running" : "\(process.terminationStatus)")\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    var isRunning: Bool { process.isRunning }

    /// Waits for a line containing `text`.
    func waitFor(_ text: String, in stream: Stream = .stdout, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (stream == .stdout ? stdout : stderr).contains(text) { return true }
            usleep(50_000)
        }
        return false
    }

    /// The exit status, or nil if still running after `timeout`.
    func waitExit(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func kill(_ signal: Int32) { if process.isRunning { Glibc.kill(process.processIdentifier, signal) } }

    /// SIGTERM (graceful shutdown); expects exit 0 within 30 s.
    func stop() throws {
        kill(SIGTERM)
        let status = waitExit(timeout: .seconds(30))
        #expect(status == 0, "server shutdown: \(everything)")
    }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }
}
