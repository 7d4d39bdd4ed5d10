@testable import DaxPin
@testable import DaxPinVisibility
import Foundation
import Glibc
import Testing

extension DaxPin.Visibility {
    /// The RDMA cases, on rxe0 in the testbed (both kernels).
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct RDMA {
        /// `rdma -j -dd resource show mr`: the iproute2 tool's view, an independent oracle.
        struct OracleRegion: Decodable {
            let ifname: String; let mrn: UInt32; let mrlen: UInt64; let pid: Int32?; let rkey: UInt32?

            enum Key: String, CodingKey { case ifname, mrn, mrlen, pid, rkey }

            /// iproute2 versions print the rkey as a number or as a hex string (with or without 0x).
            init(from decoder: Decoder) throws {
                let container = try decoder.container(keyedBy: Key.self)
                ifname = try container.decode(String.self, forKey: .ifname)
                mrn = try container.decode(UInt32.self, forKey: .mrn)
                mrlen = try container.decode(UInt64.self, forKey: .mrlen)
                pid = try container.decodeIfPresent(Int32.self, forKey: .pid)
                if let number = try? container.decodeIfPresent(UInt32.self, forKey: .rkey) {
                    rkey = number
                } else if let text = try container.decodeIfPresent(String.self, forKey: .rkey) {
                    rkey = UInt32(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: 16)
                } else {
                    rkey = nil
                }
            }
        }

        static func oracle() throws -> [OracleRegion] {
            let result = try DaxPinBinary.run(["-j", "-dd", "resource", "show", "mr"], executable: "/usr/bin/rdma",
                                              environment: ProcessInfo.processInfo.environment, timeout: 60)
            try #require(result.status == 0, "rdma resource show mr: \(result.stderr)")
            return try JSONDecoder().decode([OracleRegion].self, from: Data(result.stdout.utf8))
        }

        @Test("a raw C program's MR over an unleased tmpfs mapping: listed as rdma's own tool lists it, flagged circumstantially")
        func unleasedMemoryRegionIsFlagged() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            let file = try DaxPin.Visibility.tmpfsFile(size: 1 << 20)
            let (child, ready) = try UnleasedPin.start(["rdma", device, file.path, "\(1 << 20)", "120"])
            defer { child.stop() }
            let (listing, _, table) = try listAll()
            let process = try #require(listing.process(ready.pid), "pid \(ready.pid) not listed:\n\(table)")
            let regions = try #require(process.memoryRegions.first { $0.device == device })
            #expect(regions.count == 1 && regions.bytes == 1 << 20)
            #expect(regions.regions.first?.rkey == ready.rkey)
            #expect((process.vmPinBytes ?? 0) >= 1 << 20, "VmPin counts the MR's pinned pages")
            let mapping = try #require(process.mappings.first { $0.path == file.path })
            #expect(mapping.kind == "tmpfs" && mapping.lease == "none" && mapping.state == "AT RISK")
            #expect(!process.mappings.contains { $0.path.hasPrefix("/dev/infiniband/") }, "uverbs queues are not file memory")
            let warning = try #require(process.warnings.first)
            #expect(process.warnings.count == 1 && warning.path == file.path && warning.evidence == "circumstantial")
            #expect(warning.reason.contains("a truncate would leave its NIC writing into orphaned pages"))
            expectTableMatches(process, table: table)
            // The same MR as `rdma resource show mr -dd` shows it.
            let theirs = try Self.oracle().filter { $0.pid == ready.pid }
            #expect(theirs.count == 1)
            #expect(theirs.first?.ifname == device && theirs.first?.mrlen == 1 << 20 && theirs.first?.mrn == regions.regions.first?.mrn)
            #expect(theirs.first?.rkey == ready.rkey)
            #expect(child.stop() == 0, "\(child.output)")
            Testbed.ran(.objectsOnly)
        }

        @Test("the live kernel's device and MR dumps, read in-process through libmnl, decode to what the rdma tool shows")
        func liveDumpDecodes() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            let file = try DaxPin.Visibility.tmpfsFile(size: 1 << 16)
            let (child, ready) = try UnleasedPin.start(["rdma", device, file.path, "65536", "120"])
            defer { child.stop() }
            var socket = try RdmaNetlinkSocket()
            let devices = try RdmaMemoryRegionTable.decode(socket.dump(command: RdmaNetlink.getDevice), command: "devices")
                .compactMap(RdmaResourceDecoder.device(in:))
            let named = try #require(devices.first { $0.name == device }, "\(devices)")
            let dump = try socket.dump(command: RdmaNetlink.getMemoryRegions, deviceIndex: named.index)
            socket.close()
            let entries = try RdmaMemoryRegionTable.decode(dump, command: "mrs").flatMap {
                RdmaResourceDecoder.memoryRegions(in: $0, device: device)
            }
            let mine = entries.filter { $0.pid == ready.pid }
            #expect(mine.count == 1 && mine.first?.length == 65536 && mine.first?.rkey == ready.rkey && mine.first?.iova == nil)
            let oracle = try Self.oracle().filter { $0.ifname == device }
            #expect(Set(oracle.map(\.mrn)) == Set(entries.compactMap(\.number)), "the same MRs as rdma resource show mr")
            // Real datagrams for the decoder tests and the fuzzer's seeds (not committed as is).
            if let out = Testbed.env["DAXPIN_TESTBED_OUT"] {
                let directory = "\(out)/netlink-captures/\(runningKernelRelease())"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                for (index, datagram) in dump.datagrams.enumerated() {
                    try Data(datagram).write(to: URL(fileURLWithPath: "\(directory)/mr-dump-\(index)"))
                }
            }
            Testbed.ran(.objectsOnly)
        }

        @Test("an On-Demand Paging MR over an unleased tmpfs mapping (where rxe offers ODP) is listed, pins nothing, and is not flagged")
        func onDemandPagingIsNotFlagged() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            guard KernelBehaviour.running.rxeAdvertisesOnDemandPaging else {
                // rxe without ODP refuses the registration: nothing to list.
                let file = try DaxPin.Visibility.tmpfsFile(size: 1 << 16)
                let child = try ChildProcess(try UnleasedPin.path(), ["rdma-odp", device, file.path, "65536", "60"])
                _ = child.line(startingWith: "unleased_pin: ibv_reg_mr")  // waits (bounded) for the refusal
                #expect(child.stop() == 1 && child.output.contains("ibv_reg_mr"), "\(child.output)")
                Testbed.ran(.refusalOnly)
                return
            }
            let file = try DaxPin.Visibility.tmpfsFile(size: 1 << 16)
            let (child, ready) = try UnleasedPin.start(["rdma-odp", device, file.path, "65536", "120"])
            defer { child.stop() }
            let (listing, _, table) = try listAll()
            let process = try #require(listing.process(ready.pid), "pid \(ready.pid) not listed:\n\(table)")
            #expect(process.memoryRegions.first?.count == 1 && process.memoryRegions.first?.bytes == 65536)
            #expect(process.vmPinBytes == 0, "an ODP MR pins nothing")
            #expect(process.mappings.first { $0.path == file.path }?.state == "not pinned")
            #expect(process.warnings.isEmpty, "\(process.warnings.map(\.reason))")
            expectTableMatches(process, table: table)
            Testbed.ran(.objectsOnly)
        }

        @Test("ib_write_bw (anonymous memory) is listed with its MRs and not flagged")
        func perftestIsNotFlagged() throws {
            let device = try Testbed.required("DAXPIN_RDMA_DEVICE")
            let address = try Testbed.required("DAXPIN_RDMA_ADDR")
            let port = String(20000 + Int(getpid() % 10000))
            let common = ["-d", device, "-D", "120", "-F", "-p", port]
            let server = try ChildProcess("/usr/bin/ib_write_bw", common)
            defer { server.stop() }
            usleep(500_000)  // the server listens before the client connects (it retries for a while anyway)
            let client = try ChildProcess("/usr/bin/ib_write_bw", common + [address])
            defer { client.stop() }
            var listing: AllJSON?
            var table = ""
            let both = eventually(timeout: .seconds(90)) {
                guard let found = try? listAll() else { return false }
                listing = found.json
                table = found.table
                return [server.pid, client.pid].allSatisfy { !(found.json.process($0)?.memoryRegions.isEmpty ?? true) }
            }
            try #require(both, "ib_write_bw's MRs never showed: server \(server.output) client \(client.output)\n\(table)")
            for pid in [server.pid, client.pid] {
                let process = try #require(listing?.process(pid))
                #expect(process.process == "ib_write_bw")
                #expect(process.warnings.isEmpty, "anonymous memory is not at risk: \(process.warnings.map(\.reason))")
                #expect(!process.mappings.contains { $0.state == "AT RISK" })
                expectTableMatches(process, table: table)
            }
            Testbed.ran(.objectsOnly)
        }

        @Test("a DaxPin holder shows its registry row and its mapping as leased, without a warning")
        func daxpinHolderIsLeased() throws {
            let file = try DaxPin.Visibility.tmpfsFile(size: 1 << 20)
            let run = ScratchRunDirectory()
            let holder = try DaxPinBinary.hold(file.path, seconds: 120, runDirectory: run.path)
            defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }; holder.waitUntilExit() }
            var listing: AllJSON?
            var table = ""
            let shown = eventually(timeout: .seconds(60)) {
                guard let found = try? listAll(runDirectory: run.path) else { return false }
                listing = found.json
                table = found.table
                // The MR shows in netlink at ibv_reg_mr; the registry row gets its region with
                // the registry's next write, a few milliseconds later (longer on a busy host).
                return found.json.process(holder.processIdentifier)?.memoryRegions.isEmpty == false
                    && found.json.pins.first { $0.pid == holder.processIdentifier }?.regions.count == 1
            }
            try #require(shown, "the holder never showed with an MR and a registry row with its region:\n\(table)")
            let process = try #require(listing?.process(holder.processIdentifier))
            #expect(process.daxpin && process.warnings.isEmpty)
            let mapping = try #require(process.mappings.first { $0.path == file.path })
            #expect(mapping.lease == "write lease" && mapping.state == "leased")
            let pin = try #require(listing?.pins.first { $0.pid == holder.processIdentifier })
            #expect(pin.state == "held" && pin.source == "registry" && pin.regions.count == 1)
            #expect(process.memoryRegions.first?.regions.first?.rkey == pin.regions.first?.rkey, "the registry's rkey is the kernel's")
            let registryRow = table.split(separator: "\n").first { $0.hasPrefix("\(holder.processIdentifier) ") }
            #expect(registryRow?.contains(" daxpin ") == true && registryRow?.contains("held") == true, "registry row first")
            expectTableMatches(process, table: table)
            holder.terminate()
            holder.waitUntilExit()
            Testbed.ran(.objectsOnly)
        }
    }
}
