@testable import DaxPin
import Foundation
import Glibc
import StorageProtocol
import Testing

extension DaxPin {
    /// Zero copy into files through On-Demand Paging, on real rxe, with no test-only trust:
    /// what DaxPin decides is what the running kernel's rxe earns in DaxPin's check. With the
    /// rxe that Tools/rxe-odp-fix patches (`Scripts/testbed --rxe fixed`) the check verifies and
    /// a peer's bytes go straight into fs-dax and page-cache files; with the stock rxe of 7.x
    /// the check fails and fs-dax stages; before 6.15 rxe offers no ODP. Every test asserts the
    /// outcome the running kernel and module call for.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct ZeroCopy {
        enum Target: String, CaseIterable, CustomTestStringConvertible {
            case ext4DAX, xfsDAX, pageCache, tmpfs
            var testDescription: String { rawValue }
            var memory: MemoryKind {
                switch self {
                case .ext4DAX: .fsDAX(fileSystem: "ext4")
                case .xfsDAX: .fsDAX(fileSystem: "xfs")
                case .pageCache: .pageCache(fileSystem: "ext4")
                case .tmpfs: .sharedMemory(fileSystem: "tmpfs")
                }
            }
            /// The device's verdict for this memory: the check runs on a scratch target of its kind.
            func verdict(on device: RDMADevice) throws -> OnDemandPagingVerdict {
                device.onDemandPaging(for: .readWrite, memory: memory, directory: try directory)
            }
            var directory: String {
                get throws {
                    switch self {
                    case .ext4DAX: try Testbed.required("DAXPIN_FSDAX_EXT4_DIR")
                    case .xfsDAX: try Testbed.required("DAXPIN_FSDAX_XFS_DIR")
                    case .pageCache: try Testbed.required("DAXPIN_PAGECACHE_DIR")
                    case .tmpfs: try Testbed.required("DAXPIN_TMPFS_DIR")
                    }
                }
            }
        }

        /// rxe0 (path MTU 1024) and rxe3 (path MTU 4096).
        static var devices: [String] {
            get throws { [try Testbed.required("DAXPIN_RDMA_DEVICE"), try Testbed.required("DAXPIN_JUMBO_DEVICE")] }
        }

        /// The verdict the running kernel and rxe module call for.
        static func expect(_ verdict: OnDemandPagingVerdict, _ context: String) {
            switch Testbed.expectedRXEVerdictIsFailure {
            case nil: #expect(verdict == .notOffered, "\(context): \(verdict)")
            case true?:
                guard case .failed(let reason) = verdict else { Issue.record("\(context): \(verdict), expected a failed check"); return }
                #expect(reason.contains("completed successfully, but"), "\(context): \(reason)")
            case false?: #expect(verdict == .verified, "\(context): \(verdict)")
            }
        }

        /// rxe0 and its ODP verdict for `target`, checked against what the loaded rxe calls for.
        static func rxe0(for target: Target) throws -> (RDMADevice, OnDemandPagingVerdict) {
            let device = try Testbed.rdmaDevice()
            let verdict = try target.verdict(on: device)
            expect(verdict, "\(device.name) \(target)")
            return (device, verdict)
        }

        @Test("DaxPin's ODP check on rxe0 and rxe3, on every memory kind ODP serves: verified with the fixed rxe, failed with the stock one, absent before 6.15")
        func checkJudgesTheLoadedRXE() throws {
            for name in try Self.devices {
                let device = try RDMADevice.open(named: name)
                Self.expect(device.onDemandPaging(for: .readWrite), "\(name) memfd")
                for target in Target.allCases {
                    Self.expect(try target.verdict(on: device), "\(name) \(target)")
                }
            }
            Testbed.ran(.objectsOnly)
        }

        /// `auto` with default options (prefetch on): ODP for fs-dax wherever the check verified
        /// rxe's ODP, staged elsewhere; for a writable page-cache file, pinned where the kernel
        /// still allows it, else ODP when verified, else staged.
        @Test("auto picks ODP for fs-dax and refused page-cache pins when the check verified it",
              arguments: [Target.ext4DAX, .xfsDAX, .pageCache])
        func autoChoosesZeroCopy(target: Target) throws {
            #expect(LeaseOptions().prefetchOnDemandPaging, "the default options prefetch")
            let (device, verdict) = try Self.rxe0(for: target)
            let file = try ScratchFile(in: target.directory, size: 256 << 10)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: device)
            let strategy = try lease.withRegion(id) { $0.strategy }
            let kernel = KernelBehaviour.running
            let expected: Strategy = target == .pageCache && kernel.pinsWritablePageCache ? .pinned
                : verdict.isUsable ? .onDemandPaging : .staged
            #expect(strategy == expected, "\(target): \(strategy), verdict \(verdict)")
            if verdict.isUsable, target != .pageCache {
                // zero copy is then possible too, where it is refused without ODP.
                let strict = try lease.pin(offset: 128 << 10, length: 64 << 10, on: device, policy: .zeroCopy)
                #expect(try lease.withRegion(strict) { $0.strategy } == .onDemandPaging)
            }
            _ = lease.release()
            Testbed.ran(.objectsOnly)
        }

        /// Unaligned offsets and sizes, inside a page, across one and several page boundaries,
        /// one byte to many packets: every WRITE lands exactly and changes nothing else in the
        /// file; every READ returns exactly the file's bytes. At path MTU 1024 and 4096.
        @Test("a peer's WRITEs and READs through ODP are byte-exact at unaligned offsets and sizes",
              arguments: [Target.ext4DAX, .xfsDAX, .pageCache, .tmpfs])
        func peerTransfersAreExact(target: Target) throws {
            var moved = false  // where no device's ODP is usable, only the refusal is checked
            for name in try Self.devices {
                let device = try RDMADevice.open(named: name)
                let verdict = try target.verdict(on: device)
                Self.expect(verdict, name)
                let size = 256 << 10
                let file = try ScratchFile(in: target.directory, size: size)
                var lease = try LayoutLease(path: file.path)
                guard verdict.isUsable else {
                    #expect {
                        _ = try lease.pin(on: device, policy: .only(.onDemandPaging))
                    } throws: { error in
                        let text = "\(error)"
                        return text.contains("does not offer On-Demand Paging") || text.contains("failed DaxPin's check")
                    }
                    continue
                }
                let id = try lease.pin(on: device, policy: .only(.onDemandPaging))
                let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
                let peer = try BulkPeer(device: device, length: 64 << 10)
                var model = [UInt8](repeating: 0xA5, count: size)
                let cases: [(offset: Int, length: Int)] = [
                    (3, 1), (100, 5000), (4032, 128), (512, 16384), (2048, 8192), (4095, 4098),
                    (12288, 1000), (65536 - 7, 40000), (size - 333, 333),
                ]
                for (index, transfer) in cases.enumerated() {
                    let seed = UInt8(truncatingIfNeeded: 17 &* index &+ 5)
                    let payload = (0..<transfer.length).map { BulkPeer.pattern($0, seed) }
                    let write = try peer.write(payload, to: remote, offset: transfer.offset)
                    #expect(write == .success, "\(name) \(target): WRITE \(transfer) completed \(write)")
                    model.replaceSubrange(transfer.offset..<(transfer.offset + transfer.length), with: payload)
                    // The whole file against the model: a misplaced byte anywhere is caught.
                    let same = try lease.withRegion(id) { region in
                        try region.withBytes { span in
                            span.withUnsafeBytes { file in model.withUnsafeBytes { memcmp(file.baseAddress!, $0.baseAddress!, size) == 0 } }
                        }
                    }
                    #expect(same, "\(name) \(target): after WRITE \(transfer), bytes of the file differ from what was written")
                    let read = try peer.read(length: transfer.length, from: remote, offset: transfer.offset)
                    #expect(read == Array(model[transfer.offset..<(transfer.offset + transfer.length)]),
                            "\(name) \(target): READ \(transfer) returned other bytes")
                }
                _ = lease.release()
                Testbed.movedBytesThroughODP("\(#function) \(target) \(name)")
                moved = true
            }
            Testbed.ran(moved ? .movedBytes : .refusalOnly)
        }

        /// A lease break (another process opens the file) while the peer writes through ODP:
        /// the quiesce handler drains the peer, revocation runs in order, every acknowledged
        /// write is in the file, and the peer's next WRITE is a remote access error.
        @Test("a break during ODP traffic revokes in order and loses no acknowledged write",
              arguments: [Target.ext4DAX, .xfsDAX])
        func breakDuringTraffic(target: Target) throws {
            let (device, verdict) = try Self.rxe0(for: target)
            let file = try ScratchFile(in: target.directory, size: RealDevices.regionSize)
            let writer = Writer()
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(5)) { _ in
                writer.stopAndDrain()
            })
            let id = try lease.pin(on: device)
            guard verdict.isUsable else {
                #expect(try lease.withRegion(id) { $0.strategy } == .staged)
                Testbed.ran(.objectsOnly)
                return
            }
            #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)
            try RealDevices.openDuringTraffic(lease, path: file.path, peer: peer, remote: remote, writer: writer) { _ in 0xA5 }
            Testbed.movedBytesThroughODP("\(#function) \(target)")
            Testbed.ran(.movedBytes)
        }

        /// A truncate of an ODP-registered range: DaxPin revokes before the truncate proceeds,
        /// the peer's next WRITE fails with a remote access error, and a new file that takes
        /// the freed blocks holds none of the peer's bytes.
        @Test("after a truncate the peer's next WRITE fails and nothing lands in reused blocks",
              arguments: [Target.ext4DAX, .xfsDAX])
        func truncateCutsThePeerOff(target: Target) throws {
            let (device, verdict) = try Self.rxe0(for: target)
            let directory = try target.directory
            let size = 1 << 20
            let file = try ScratchFile(in: directory, size: size)
            var lease = try LayoutLease(path: file.path)
            guard verdict.isUsable else {
                let staged = try lease.pin(on: device)
                #expect(try lease.withRegion(staged) { $0.strategy } == .staged)
                Testbed.ran(.objectsOnly)
                return
            }
            let id = try lease.pin(on: device, policy: .zeroCopy)
            #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)
            #expect(try peer.write(block: 128, pattern: 0x3C, to: remote) == .success)  // at 512 KiB
            #expect(try lease.withRegion(id) { region in try region.withBytes { $0.unsafeLoad(fromByteOffset: 128 * 4096 + 99, as: UInt8.self) } } == 0x3C)

            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(40)))
            #expect(result.status == 0)
            #expect(eventually { lease.state.isRevoked })
            #expect(lease.trace.steps.contains(.deregistered(region: 1)))
            #expect(file.size == 0)
            // New files take the freed blocks; the peer then tries every block it once could reach.
            let reusers = try (0..<2).map { _ in try ScratchFile(in: directory, size: size / 2, fill: 0x5A) }
            // The first WRITE fails with a remote access error and puts the queue pair in error;
            // a fresh pair per try keeps every later WRITE reaching the responder.
            for block in stride(from: 0, to: size / Peer.blockSize, by: 64) {
                let fresh = try Peer(device: device)
                #expect(try fresh.write(block: block, pattern: 0xEE, to: remote) == .remoteAccessError, "block \(block)")
            }
            #expect(try peer.write(block: 128, pattern: 0xEE, to: remote) == .remoteAccessError)
            for reuser in reusers {
                let bytes = try #require(FileManager.default.contents(atPath: reuser.path))
                #expect(bytes.allSatisfy { $0 == 0x5A }, "the peer's bytes reached \(reuser.path)")
            }
            Testbed.movedBytesThroughODP("\(#function) \(target)")
            Testbed.ran(.movedBytes)
        }

        /// daxpin-server exporting an ext4-dax file: through On-Demand Paging where the check
        /// verified rxe's ODP on fs-dax, staged elsewhere; either way the client's verified and
        /// persisted pass is in the file byte for byte (a staged export writes its bounce buffer
        /// back when it persists), and the server's log and `daxpin ls` name the strategy.
        @Test("the storage server serves an fs-dax export zero copy where the check verified ODP, staged elsewhere")
        func storageServerExportsFSDAX() throws {
            let (_, verdict) = try Self.rxe0(for: .ext4DAX)
            let strategy = verdict.isUsable ? "on-demand paging" : "staged"
            let size = 1 << 20
            let file = try ScratchFile(in: Target.ext4DAX.directory, size: size, fill: 0)
            let server = try StorageProcess.server(file: file.path)
            #expect(server.stderr.contains("strategy=\(strategy)"), "\(server.everything)")
            let listing = try DaxPinBinary.run(["ls"])
            #expect(listing.stdout.contains(file.path) && listing.stdout.contains(strategy), "\(listing.stdout)")
            let client = try StorageProcess.client(port: server.port, ["--seed", "11", "--block-size", "16384", "--queue-depth", "4", "--persist-every", "16", "--verify"])
            #expect(client.waitExit(timeout: .seconds(120)) == 0, "client: \(client.everything)")
            #expect(client.stdout.contains("verified pass=0"), "\(client.stdout)")
            try server.stop()
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: file.path)))
            #expect(bytes.count == size)
            let wrong = bytes.indices.filter { bytes[$0] != StorageProtocol.patternByte(seed: 11, offset: UInt64($0)) }.count
            #expect(wrong == 0, "\(wrong) bytes of the DAX file differ from the client's pattern")
            if verdict.isUsable { Testbed.movedBytesThroughODP() }
            Testbed.ran(.movedBytes)
        }
    }
}

/// A requester queue pair connected over rxe's loopback, with a pinned local buffer of any
/// length: WRITEs and READs of arbitrary offset and size, where ``Peer`` moves whole blocks.
final class BulkPeer {
    let responder: QueuePair
    let requester: QueuePair
    private var source: LayoutLease
    private let sourceID: PinnedRegion.ID
    private let local: QueuePair.LocalBuffer

    init(device: RDMADevice, length: Int) throws {
        responder = try QueuePair(device: device)
        requester = try QueuePair(device: device)
        try responder.connect(to: requester.endpoint)
        try requester.connect(to: responder.endpoint)
        source = LayoutLease.anonymous()
        sourceID = try source.pin(length: length, on: device)
        local = try source.withRegion(sourceID) { region in
            QueuePair.LocalBuffer(address: region.memoryRegion.remote.address, length: length,
                                  localKey: region.memoryRegion.localKey)
        }
    }

    /// A byte of a transfer's payload: never the 0xA5 fill, different per position and seed.
    static func pattern(_ index: Int, _ seed: UInt8) -> UInt8 {
        let byte = UInt8(truncatingIfNeeded: index &* 13 &+ index >> 9) ^ seed
        return byte == 0xA5 ? 0x5A : byte
    }

    /// Writes `payload` to `remote` at `offset` in one RDMA WRITE.
    func write(_ payload: [UInt8], to remote: MemoryRegion.RemoteAccess, offset: Int) throws -> QueuePair.Completion {
        try source.withRegion(sourceID) { region in
            try region.withMutableBytes { span in
                span.withUnsafeMutableBytes { bytes in payload.withUnsafeBytes { bytes.copyMemory(from: $0) } }
            }
        }
        let buffer = QueuePair.LocalBuffer(address: local.address, length: payload.count, localKey: local.localKey)
        return try requester.write(buffer, to: remote, offset: offset, timeout: .seconds(10))
    }

    /// Reads `length` bytes of `remote` at `offset` in one RDMA READ; nil when it failed.
    func read(length: Int, from remote: MemoryRegion.RemoteAccess, offset: Int) throws -> [UInt8]? {
        try source.withRegion(sourceID) { region in
            try region.withMutableBytes { span in span.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        }
        let buffer = QueuePair.LocalBuffer(address: local.address, length: length, localKey: local.localKey)
        guard try requester.read(into: buffer, from: remote, offset: offset, timeout: .seconds(10)) == .success else { return nil }
        return try source.withRegion(sourceID) { region in try region.withBytes { span in span.withUnsafeBytes { Array($0.prefix(length)) } } }
    }
}
