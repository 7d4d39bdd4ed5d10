@testable import DaxPin
@testable import DaxPinVisibility
import Foundation
import Glibc
import Testing

extension DaxPin {
    /// `daxpin ls --all` against real processes: io_uring and the non-root view on the host and
    /// in the testbed; RDMA pins without a lease, perftest, and a DaxPin holder in the testbed
    /// (rxe0 on both kernels). Every child is stopped and reaped, on failure too.
    @Suite struct Visibility {
        /// A file on tmpfs of `size` bytes that `owner` may open read-write.
        static func tmpfsFile(size: Int, owner: uid_t = 0, name: String = #function) throws -> ScratchFile {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: size, name: name)
            if owner != 0 { chown(file.path, owner, owner) }
            return file
        }

        @Test("io_uring buffers inside an unleased tmpfs mapping: listed with their addresses, flagged with exact evidence")
        func ioUringIsExactEvidence() throws {
            let file = try Self.tmpfsFile(size: 1 << 16)
            let (child, ready) = try UnleasedPin.start(["io-uring", file.path, "65536", "120"])
            defer { child.stop() }
            let (listing, _, table) = try listAll()
            let process = try #require(listing.process(ready.pid), "pid \(ready.pid) not listed:\n\(table)")
            #expect(process.process == "unleased_pin" && process.uid == 0 && !process.daxpin)
            // VmPin counts registered buffers on some kernels only: found by the ring, not by VmPin.
            print("io_uring test: Linux \(runningKernelRelease()), VmPin \(process.vmPinBytes.map(String.init) ?? "nil") bytes for 80 KiB of buffers")
            if let pinned = process.vmPinBytes, pinned > 0 { #expect(pinned >= 65536 + 16384) }
            let ring = try #require(process.ioUring.first)
            #expect(ring.bufferCount == 2 && ring.addressesListed)
            #expect(ring.buffers.map(\.address) == [ready.address, try #require(ready.anonymousAddress)])
            #expect(ring.buffers.map(\.length) == [65536, 16384])
            let mapping = try #require(process.mappings.first { $0.path == file.path })
            #expect(mapping.kind == "tmpfs" && mapping.writable && mapping.lease == "none" && mapping.state == "AT RISK")
            #expect(mapping.inode == statIdentity(file.path).inode && mapping.bytes == 65536)
            #expect(process.warnings.count == 1)
            let warning = try #require(process.warnings.first)
            #expect(warning.path == file.path && warning.evidence == "exact")
            #expect(warning.reason.contains("io_uring buffer 0 of ring fd \(ring.fd)"))
            #expect(warning.reason.contains("orphaned pages"))
            expectTableMatches(process, table: table)
            #expect(child.stop() == 0, "unleased_pin released its buffers: \(child.output)")
            #expect(try listAll().json.process(ready.pid) == nil, "gone once it exits")
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("without root: only the user's own processes, no MR keys, and the table says so")
        func nonRootSeesOwnProcessesOnly() throws {
            let mine = try Self.tmpfsFile(size: 1 << 16, name: "root")
            let theirs = try Self.tmpfsFile(size: 1 << 16, owner: 65534, name: "nobody")
            let (rootChild, rootReady) = try UnleasedPin.start(["io-uring", mine.path, "65536", "120"])
            defer { rootChild.stop() }
            // In the testbed nobody pins through rxe0 (MRs whose keys must stay hidden); on the host through io_uring.
            var arguments = ["io-uring", theirs.path, "65536", "120"]
            if Testbed.isActive { arguments = ["rdma", try Testbed.required("DAXPIN_RDMA_DEVICE"), theirs.path, "65536", "120"] }
            let (nobodyChild, nobodyReady) = try UnleasedPin.start(arguments, wrapper: asNobody)
            defer { nobodyChild.stop() }
            let run = ScratchRunDirectory()
            let (listing, text, table) = try listAll(wrapper: asNobody, runDirectory: run.path)
            #expect(!listing.viewer.allUsers && !listing.viewer.keysShown && listing.viewer.uid == 65534)
            #expect(listing.process(rootReady.pid) == nil, "root's process is hidden from nobody")
            #expect(listing.processes.allSatisfy { $0.uid == 65534 }, "\(listing.processes.map(\.pid))")
            let process = try #require(listing.process(nobodyReady.pid), "nobody's own pinner is listed:\n\(table)")
            #expect(process.warnings.count == 1 && process.mappings.first { $0.path == theirs.path }?.state == "AT RISK")
            #expect(!text.contains("\"rkey\"") && !text.contains("\"lkey\""), "no MR keys without root")
            if Testbed.isActive {
                let device = try #require(process.memoryRegions.first)
                #expect(device.count == 1 && device.bytes == 65536)
                #expect(!table.contains("rkey"), "no rkey in nobody's table")
            }
            #expect(table.contains("only your own processes are shown"))
            expectTableMatches(process, table: table)
            // Root's own view has both.
            let root = try listAll().json
            #expect(root.process(rootReady.pid) != nil && root.process(nobodyReady.pid)?.uid == 65534)
            if Testbed.isActive {
                #expect(root.process(nobodyReady.pid)?.memoryRegions.first?.regions.first?.rkey == nobodyReady.rkey, "root sees the rkey")
                Testbed.ran(.objectsOnly)
            }
        }

        @Test("an MR's thread id (what rdma netlink reports) maps to its process")
        func threadsMapToTheirProcess() throws {
            let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { Int32($0) }
            #expect(threads.allSatisfy { PinSurvey.threadGroup(of: $0) == getpid() }, "\(threads)")
            #expect(PinSurvey.threadGroup(of: Int32.max) == Int32.max, "an unknown id stays as it is")
        }

        @Test("--all is root's default; --no-all gives DaxPin's registry view alone, as before")
        func allIsRootsDefault() throws {
            let run = ScratchRunDirectory()
            let registryOnly = try DaxPinBinary.run(["ls", "--no-all", "--json"], runDirectory: run.path)
            #expect(registryOnly.status == 0 && registryOnly.stdout.contains("\"pins\"") && !registryOnly.stdout.contains("\"processes\""))
            let table = try DaxPinBinary.run(["ls", "--no-all"], runDirectory: run.path)
            #expect(table.stdout.hasPrefix("PID ") && table.stdout.contains("STRATEGY") && !table.stdout.contains("WHAT"))
            let byDefault = try DaxPinBinary.run(["ls", "--json"], runDirectory: run.path)
            #expect(byDefault.stdout.contains("\"processes\"") == (geteuid() == 0))
            let asNobodyAll = try DaxPinBinary.run(Array(asNobody.dropFirst()) + [DaxPinBinary.path, "ls", "--json"],
                                                   executable: asNobody[0], environment: DaxPinBinary.environment(runDirectory: run.path),
                                                   timeout: 60)
            #expect(asNobodyAll.status == 0 && !asNobodyAll.stdout.contains("\"processes\""), "not the default without root")
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("without RDMA support the listing still works and says why MRs are missing",
              .disabled(if: Testbed.isActive, "the testbed has RDMA"))
        func withoutRDMASupport() throws {
            let (listing, _, table) = try listAll()
            if (try? RdmaMemoryRegionTable.current()) == nil {
                #expect(listing.problems.contains { $0.contains("rdma netlink unavailable") && $0.contains("modprobe") },
                        "\(listing.problems)")
                #expect(table.contains("note: rdma netlink unavailable"))
            } else {
                // Netlink answers: the listing must not claim it is missing.
                #expect(!listing.problems.contains { $0.contains("rdma netlink unavailable") }, "\(listing.problems)")
                #expect(!table.contains("note: rdma netlink unavailable"))
            }
        }

        @Test("a failing netlink call is a typed, actionable error and leaves no descriptor open")
        func netlinkFailuresAreTyped() throws {
            defer { SyscallFaults.disarm() }
            SyscallFaults.arm(.netlinkOpen, errno: EPROTONOSUPPORT)
            #expect(throws: VisibilityError.rdmaNetlinkUnavailable(errno: EPROTONOSUPPORT)) { try RdmaMemoryRegionTable.current() }
            SyscallFaults.arm(.netlinkOpen, errno: EMFILE)
            #expect(throws: VisibilityError.rdmaNetlinkFailed(operation: "socket", errno: EMFILE)) { try RdmaMemoryRegionTable.current() }
            guard Testbed.isActive else { return }
            // ResourceCount leaves sockets out (Foundation's children); count them here.
            func sockets() -> Int { openFileTargets().filter { $0.hasPrefix("socket:") }.count }
            let before = sockets()
            SyscallFaults.arm(.netlinkBind, errno: EADDRINUSE)
            #expect(throws: VisibilityError.rdmaNetlinkFailed(operation: "bind", errno: EADDRINUSE)) { try RdmaMemoryRegionTable.current() }
            SyscallFaults.arm(.netlinkReceive, errno: EAGAIN)
            #expect(throws: VisibilityError.rdmaNetlinkTimedOut(command: "RDMA_NLDEV_CMD_GET",
                                                                milliseconds: RdmaNetlinkSocket.receiveTimeoutMilliseconds)) {
                try RdmaMemoryRegionTable.current()
            }
            SyscallFaults.arm(.netlinkSend, errno: ENOBUFS, skip: 1)
            #expect(throws: VisibilityError.rdmaNetlinkFailed(operation: "send RDMA_NLDEV_CMD_RES_MR_GET", errno: ENOBUFS)) {
                try RdmaMemoryRegionTable.current()
            }
            #expect(sockets() == before, "every failed call closed its netlink socket")
            #expect(try RdmaMemoryRegionTable.current().allSatisfy { !$0.device.isEmpty }, "and a clean call works")
            #expect(sockets() == before)
            Testbed.ran(.refusalOnly)
        }
    }
}
