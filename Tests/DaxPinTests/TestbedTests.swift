@_spi(Testing) @testable import DaxPin
import Foundation
import Glibc
import SystemPackage
import Testing

extension DaxPin {
    /// Claims about RDMA and DAX, proven against the real kernel objects of the testbed:
    /// Soft-RoCE rxe0, fs-dax ext4 and xfs, device-dax, tmpfs. Skipped on a plain host;
    /// inside the testbed a missing device fails the run.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason)) struct RealDevices {
        static let regionSize = 1 << 20
        static let writerBlocks = 200
        static let lateBlock = 250  // only the post-revocation write targets it

        enum Memory: String, CaseIterable, CustomTestStringConvertible {
            case tmpfs, ext4DAX, xfsDAX
            var testDescription: String { rawValue }
            var directory: String {
                get throws {
                    switch self {
                    case .tmpfs: try Testbed.required("DAXPIN_TMPFS_DIR")
                    case .ext4DAX: try Testbed.required("DAXPIN_FSDAX_EXT4_DIR")
                    case .xfsDAX: try Testbed.required("DAXPIN_FSDAX_XFS_DIR")
                    }
                }
            }
        }

        @Test("rxe0 advertises On-Demand Paging as the kernel table says, and DaxPin's check judges it")
        func deviceCapabilities() throws {
            let device = try Testbed.rdmaDevice()
            #expect(device.name == (try Testbed.required("DAXPIN_RDMA_DEVICE")))
            let kernel = KernelBehaviour.running
            #expect(device.capabilities.odp == kernel.rxeAdvertisesOnDemandPaging)
            #expect(device.capabilities.odpUsable(for: .readWrite) == kernel.rxeAdvertisesOnDemandPaging)
            for name in [try Testbed.required("DAXPIN_RDMA_DEVICE"), try Testbed.required("DAXPIN_JUMBO_DEVICE")] {
                let checked = try RDMADevice.open(named: name)
                let verdict = checked.onDemandPaging(for: .readWrite)
                switch Testbed.expectedRXEVerdictIsFailure {
                case nil: #expect(verdict == .notOffered, "\(name)")
                case true?:
                    // Linux 7.2's rxe acknowledges ODP WRITEs whose payload lands at the page start.
                    guard case .failed(let reason) = verdict else { Issue.record("\(name): \(verdict)"); break }
                    #expect(reason.contains("RDMA WRITE") && reason.contains("completed successfully, but"), "\(reason)")
                case false?: #expect(verdict == .verified, "\(name)")
                }
                // Cached per device and kernel: a second device object gets the same verdict.
                #expect(try RDMADevice.open(named: name).onDemandPaging(for: .readWrite) == verdict)
            }
            #expect(device.capabilities.maxMRSize > UInt64(Self.regionSize))
            #expect(RDMADevice.availableDevices().contains(device.name))
            Testbed.ran(.objectsOnly)
        }

        @Test("memory kinds are classified from statx, statfs and libdaxctl")
        func classification() throws {
            let device = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let tmpfs = try ScratchFile(in: Memory.tmpfs.directory, size: 4096)
            let ext4 = try ScratchFile(in: Memory.ext4DAX.directory, size: 4096)
            let xfs = try ScratchFile(in: Memory.xfsDAX.directory, size: 4096)
            #expect(try LayoutLease(path: tmpfs.path).memory == .sharedMemory(fileSystem: "tmpfs"))
            #expect(try LayoutLease(path: ext4.path).memory == .fsDAX(fileSystem: "ext4"))
            #expect(try LayoutLease(path: xfs.path).memory == .fsDAX(fileSystem: "xfs"))
            let dax = try LayoutLease(path: device)
            let name = String(device.split(separator: "/").last!)
            #expect(dax.memory == .deviceDAX(name: name, alignment: 2 << 20))
            guard case .none = dax.kind else { Issue.record("device-dax got a lease: \(dax.kind)"); return }
            #expect(DeviceDAXCatalog.device(named: name)?.size ?? 0 > 0)
            Testbed.ran(.objectsOnly)
        }

        /// BRIEF.md's table: fs-dax pins are refused (EOPNOTSUPP); tmpfs, device-dax and
        /// anonymous memory pin; `auto` takes ODP for fs-dax only where rxe0's ODP passed
        /// DaxPin's check, and stages it otherwise (no ODP on 6.1; ODP that misplaces WRITEs on 7.2).
        @Test("ibv_reg_mr per memory kind, and what auto chooses", arguments: Memory.allCases)
        func registrationPerFileKind(memory: Memory) throws {
            let device = try Testbed.rdmaDevice()
            let verdict = device.onDemandPaging(for: .readWrite)
            let file = try ScratchFile(in: memory.directory, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            let isDAX = memory != .tmpfs
            do {
                let id = try lease.pin(on: device, policy: .only(.pinned))
                #expect(!isDAX, "the kernel pinned fs-dax memory")
                try lease.unpin(id)
            } catch let DaxPinError.registrationRefused(refusal) {
                #expect(isDAX)
                #expect(refusal.attempts.first?.errno == .notSupported)
            }
            if isDAX, verdict.isUsable {
                // Zero copy through verified ODP (the fixed rxe).
                let id = try lease.pin(on: device, policy: .zeroCopy)
                #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
                try lease.unpin(id)
            } else if isDAX {
                #expect {
                    _ = try lease.pin(on: device, policy: .zeroCopy)
                } throws: { error in
                    let text = "\(error)"
                    return text.contains("EOPNOTSUPP") && text.contains("rxe0") && text.contains("fs-dax")
                        && text.contains("device-dax") && text.contains("On-Demand Paging")
                }
            }
            // An explicit ODP policy follows the verdict: refused with the reason unless verified.
            do {
                let id = try lease.pin(on: device, policy: .only(.onDemandPaging))
                #expect(verdict.isUsable, "ODP was used although the verdict is \(verdict)")
                try lease.unpin(id)
            } catch let DaxPinError.registrationRefused(refusal) {
                #expect(!verdict.isUsable)
                let text = refusal.description
                #expect(verdict == .notOffered ? text.contains("does not offer On-Demand Paging")
                                               : text.contains("failed DaxPin's check"), "\(text)")
            }
            // What the kernel itself allows, past the check (test only): ODP registrations of
            // tmpfs and fs-dax (MAP_SYNC) files wherever rxe advertises ODP.
            let trusted = try Testbed.rdmaDevice()
            trusted.trustOnDemandPagingWithoutCheck()
            do {
                let id = try lease.pin(on: trusted, policy: .only(.onDemandPaging))
                #expect(KernelBehaviour.running.rxeAdvertisesOnDemandPaging)
                #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
                try lease.unpin(id)
            } catch let DaxPinError.registrationRefused(refusal) {
                #expect(!KernelBehaviour.running.rxeAdvertisesOnDemandPaging, "\(refusal)")
            }
            let id = try lease.pin(on: device, policy: .auto)
            let expected: Strategy = isDAX ? (verdict.isUsable ? .onDemandPaging : .staged) : .pinned
            #expect(try lease.withRegion(id) { $0.strategy } == expected)
            Testbed.ran(.objectsOnly)
        }

        /// Page-cache files (ext4 without DAX, on a loop device): the kernel refuses writable
        /// long-term pins from 6.5 and read-only ones before 6.2 (``KernelBehaviour``); `auto`
        /// then takes On-Demand Paging only where rxe0's ODP passed the check, else stages.
        @Test("page-cache file: pins as the kernel table says, auto falls back in order")
        func pageCachePerKernel() throws {
            let device = try Testbed.rdmaDevice()
            let kernel = KernelBehaviour.running
            let verdict = device.onDemandPaging(for: .readWrite)
            let file = try ScratchFile(in: Testbed.required("DAXPIN_PAGECACHE_DIR"), size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            #expect(lease.memory == .pageCache(fileSystem: "ext4"))
            do {
                let id = try lease.pin(on: device, policy: .only(.pinned))
                #expect(kernel.pinsWritablePageCache, "the kernel pinned a writable page-cache file")
                try lease.unpin(id)
            } catch {
                guard case .registrationRefused(let refusal) = error else { throw error }
                let text = refusal.description
                let errno = refusal.attempts.first?.errno
                #expect(!kernel.pinsWritablePageCache, "\(text)")
                #expect(errno == .badAddress, "\(text)")
                #expect(text.contains("refuses writable long-term pins of page-cache files"))
            }
            let id = try lease.pin(on: device)
            let expected: Strategy = kernel.pinsWritablePageCache ? .pinned : verdict.isUsable ? .onDemandPaging : .staged
            #expect(try lease.withRegion(id) { $0.strategy } == expected)
            _ = lease.release()

            var reader = try LayoutLease(path: file.path, access: .readOnly)
            let readID = try reader.pin(on: device)
            #expect(try reader.withRegion(readID) { $0.strategy } == (kernel.pinsReadOnlySharedFileMappings ? .pinned : .staged))
            _ = reader.release()
            Testbed.ran(.objectsOnly)
        }

        @Test("device-dax and anonymous memory pin; device-dax alignment is enforced")
        func deviceDAXAndAnonymous() throws {
            let device = try Testbed.rdmaDevice()
            let path = try Testbed.required("DAXPIN_DEVDAX_PATH")
            var lease = try LayoutLease(path: path)
            let alignment = 2 << 20
            #expect(throws: DaxPinError.invalidRange(path: path, offset: 4096, length: alignment, problem: .misaligned(alignment: alignment))) {
                _ = try lease.pin(offset: 4096, length: alignment, on: device)
            }
            #expect(throws: DaxPinError.invalidRange(path: path, offset: 0, length: 4096, problem: .misaligned(alignment: alignment))) {
                _ = try lease.pin(offset: 0, length: 4096, on: device)
            }
            let id = try lease.pin(offset: 0, length: alignment, on: device, policy: .zeroCopy)
            #expect(try lease.withRegion(id) { $0.strategy } == .pinned)

            // A peer writes into device-dax; the bytes are there, and persist flushes them.
            let peer = try Peer(device: device)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            #expect(try peer.write(block: 3, pattern: 0x5C, to: remote) == .success)
            try lease.withRegion(id) { region in
                try region.withBytes { #expect($0.unsafeLoad(fromByteOffset: 3 * 4096 + 17, as: UInt8.self) == 0x5C) }
                try region.persist(offset: 3 * 4096, length: 4096)
            }
            // Device-dax is mapped without a populate (the registration's pin faults it in):
            // the CPU's stores through the mapping reach the registered pages the peer reads.
            try lease.withRegion(id) { region in
                try region.withMutableBytes { bytes in
                    for offset in 0..<4096 { bytes.storeBytes(of: 0xC3, toByteOffset: 5 * 4096 + offset, as: UInt8.self) }
                }
            }
            #expect(try peer.read(block: 5, from: remote) == [UInt8](repeating: 0xC3, count: 4096))
            let trace = lease.release()
            #expect(trace.steps == [.deregistered(region: 1), .unmapped(region: 1), .closed])
            #expect(try peer.write(block: 3, pattern: 0x11, to: remote) == .remoteAccessError)

            var anonymous = LayoutLease.anonymous()
            let anonymousID = try anonymous.pin(length: 64 << 10, on: device, policy: .zeroCopy)
            #expect(try anonymous.withRegion(anonymousID) { $0.strategy } == .pinned)
            Testbed.ran(.movedBytes)
        }

        /// Device-dax has no lease. ndctl refuses to reconfigure an enabled namespace unless
        /// forced (a check in ndctl, not aware of pins), and the pinned memory and the peer's
        /// access stay intact.
        /// (With `--force`, Linux 6.1 tears the device down under the pin in about a second
        /// instead of failing with EBUSY: a kernel hazard recorded in the StrategiesAndKernels article; this test
        /// does not force, so the namespace survives for the rest of the run.)
        @Test("reconfiguring a pinned device-dax namespace without --force is refused; the pin survives")
        func deviceDAXReconfigureWhilePinned() throws {
            let device = try Testbed.rdmaDevice()
            let path = try Testbed.required("DAXPIN_DEVDAX_PATH")
            let namespace = try Testbed.required("DAXPIN_DEVDAX_NAMESPACE")
            var lease = try LayoutLease(path: path)
            let id = try lease.pin(offset: 0, length: 2 << 20, on: device)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)
            #expect(try peer.write(block: 1, pattern: 0x3C, to: remote) == .success)

            let output = "\(try Testbed.required("DAXPIN_TESTBED_OUT"))/ndctl-reconfigure.log"
            let attempt = try Breaker.start(["/bin/sh", "-c", "ndctl create-namespace -e \"$0\" -m fsdax > \"$1\" 2>&1", namespace, output])
            let result = try #require(attempt.wait(timeout: .seconds(60)))
            let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            #expect(result.status != 0, "the namespace was reconfigured under a pin: \(log)")
            #expect(log.contains("is active"), "\(log)")
            #expect(DeviceDAXCatalog.devices().contains { path.hasSuffix("/" + $0.name) })

            // The pin survived: the peer still writes and the bytes are there.
            #expect(try peer.write(block: 2, pattern: 0x3D, to: remote) == .success)
            try lease.withRegion(id) { region in
                try region.withBytes { bytes in
                    #expect(bytes.unsafeLoad(fromByteOffset: 4096, as: UInt8.self) == 0x3C)
                    #expect(bytes.unsafeLoad(fromByteOffset: 8192, as: UInt8.self) == 0x3D)
                }
            }
            lease.release()
            Testbed.ran(.movedBytes)
        }

        /// A peer writes continuously; another process opens the file for write. The quiesce
        /// handler drains the peer, DaxPin revokes, and then: the breaker is released, every
        /// acknowledged write is in the file, nothing else changed, and the peer's next RDMA
        /// WRITE fails with a remote access error.
        @Test("break during traffic: acked writes intact, later writes refused", arguments: Memory.allCases)
        func breakDuringTraffic(memory: Memory) throws {
            let device = try Testbed.rdmaDevice()
            let file = try ScratchFile(in: memory.directory, size: Self.regionSize)
            let writer = Writer()
            // fs-dax: ODP only where rxe0's ODP passed the check, else staged (never trusted on the bit).
            let odp = memory != .tmpfs && device.onDemandPaging(for: .readWrite).isUsable
            let staged = memory != .tmpfs && !odp
            let regionBox = RegionBox()
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(5)) { _ in
                writer.stopAndDrain()
                regionBox.writeBackIfStaged()  // staged regions: the quiesce handler persists what peers wrote
            })
            let id = try lease.pin(on: device)
            #expect(try lease.withRegion(id) { $0.strategy } == (staged ? .staged : odp ? .onDemandPaging : .pinned))
            regionBox.set(lease.core, id.rawValue, staged: staged)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)
            try Self.openDuringTraffic(lease, path: file.path, peer: peer, remote: remote, writer: writer,
                                       writtenBack: staged ? Self.regionSize : nil) { _ in 0xA5 }
            Testbed.ran(.movedBytes)
        }

        /// A peer writes blocks round-robin until another process opens `path` for write; the
        /// quiesce handler (which drains `writer`) runs, then revocation: checks the order,
        /// every acknowledged write in the file (blocks not written hold `before(block)`), and
        /// that the peer's next WRITE is a remote access error.
        /// `writtenBack`: the bytes a staged region 1 is written back with on the break (nil when
        /// the region is not staged).
        static func openDuringTraffic(_ lease: borrowing LayoutLease, path: String, peer: Peer, remote: MemoryRegion.RemoteAccess,
                                      writer: Writer, writtenBack: Int? = nil, before: (Int) -> UInt8) throws {
            writer.start(peer, remote: remote, blocks: Self.writerBlocks)
            #expect(eventually(timeout: .seconds(30)) { writer.ackCount >= 50 }, "no traffic")
            let breaker = try Breaker.openForWrite(path)
            let result = try #require(breaker.wait(timeout: .seconds(40)))
            #expect(result.blocked < .seconds(10), "breaker blocked \(result.blocked)")
            #expect(eventually { lease.state.isRevoked })
            #expect(writer.waitFinished())
            #expect(lease.trace.steps == [.breakNoticed, .quiesceStarted, .quiesceFinished]
                + (writtenBack.map { [.wroteBack(region: 1, bytes: $0)] } ?? [])
                + [.deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            #expect(writer.state.withLock { $0.failure } == nil, "the drained writer saw a failure")
            #expect(try peer.write(block: Self.lateBlock, pattern: 0xEE, to: remote) == .remoteAccessError)

            let bytes = try #require(FileManager.default.contents(atPath: path))
            let acked = writer.lastAcked
            #expect(acked.count > 0)
            var wrong = 0
            for block in 0..<(Self.regionSize / Peer.blockSize) {
                let expected = acked[block] ?? before(block)
                let slice = bytes[(block * Peer.blockSize)..<((block + 1) * Peer.blockSize)]
                if !slice.allSatisfy({ $0 == expected }) { wrong += 1 }
            }
            #expect(wrong == 0, "\(wrong) blocks differ from the acknowledged writes")
            #expect(!bytes.contains(0xEE))
        }

        /// The On-Demand Paging path end to end on the real kernel. rxe3's path MTU is 4096, so
        /// the peer's page-aligned 4 KiB WRITEs are single packets, which rxe's ODP places
        /// correctly even where it fails DaxPin's check; the check is passed over (test only).
        /// Registration of tmpfs and fs-dax (MAP_SYNC) files, a peer's WRITE and READ landing,
        /// then an open during traffic: revoked in order, every acknowledged write in the file,
        /// the peer's next WRITE a remote access error. Where rxe has no ODP (6.1) the explicit
        /// ODP policy is refused with that reason.
        @Test("ODP end to end: peer WRITE and READ land, a break during traffic loses nothing", arguments: Memory.allCases)
        func onDemandPagingEndToEnd(memory: Memory) throws {
            let device = try Testbed.jumboDevice()
            device.trustOnDemandPagingWithoutCheck()
            let file = try ScratchFile(in: memory.directory, size: Self.regionSize)
            guard KernelBehaviour.running.rxeAdvertisesOnDemandPaging else {
                var lease = try LayoutLease(path: file.path)
                #expect {
                    _ = try lease.pin(on: device, policy: .only(.onDemandPaging))
                } throws: { error in
                    "\(error)".contains("does not offer On-Demand Paging")
                }
                Testbed.ran(.refusalOnly)
                return
            }
            let writer = Writer()
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(5)) { _ in
                writer.stopAndDrain()
            })
            let id = try lease.pin(on: device, policy: .only(.onDemandPaging))
            #expect(try lease.withRegion(id) { $0.strategy } == .onDemandPaging)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)

            // A WRITE lands in the file's pages, and a READ returns what the CPU stored.
            #expect(try peer.write(block: 7, pattern: 0x3C, to: remote) == .success)
            try lease.withRegion(id) { region in
                try region.withBytes { bytes in
                    #expect((0..<Peer.blockSize).allSatisfy { bytes.unsafeLoad(fromByteOffset: 7 * Peer.blockSize + $0, as: UInt8.self) == 0x3C })
                }
                try region.withMutableBytes { bytes in
                    for offset in 0..<Peer.blockSize { bytes.storeBytes(of: 0xC3, toByteOffset: 9 * Peer.blockSize + offset, as: UInt8.self) }
                }
            }
            #expect(try peer.read(block: 9, from: remote) == [UInt8](repeating: 0xC3, count: Peer.blockSize))

            try Self.openDuringTraffic(lease, path: file.path, peer: peer, remote: remote, writer: writer) { block in
                block == 7 ? 0x3C : block == 9 ? 0xC3 : 0xA5
            }
            Testbed.ran(.movedBytes)
        }

        /// Truncate while a peer writes and nobody drains it: revocation is forced. The breaker
        /// is released well before lease-break-time, no write is acknowledged after the MR was
        /// deregistered, the peer sees a remote access error, and the re-extended file holds
        /// none of the peer's bytes.
        @Test("truncate of a pinned tmpfs file during traffic")
        func truncateDuringTraffic() throws {
            let device = try Testbed.rdmaDevice()
            let file = try ScratchFile(in: Memory.tmpfs.directory, size: Self.regionSize)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: device)
            let remote = try lease.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)
            let writer = Writer()
            writer.start(peer, remote: remote, blocks: Self.writerBlocks)
            #expect(eventually(timeout: .seconds(30)) { writer.ackCount >= 50 }, "no traffic")

            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(40)))
            #expect(result.status == 0)
            #expect(result.blocked < .seconds(10), "breaker blocked \(result.blocked)")
            #expect(eventually { lease.state.isRevoked })
            #expect(writer.waitFinished())
            let final = writer.state.withLock { $0 }
            #expect(final.failure == .remoteAccessError)
            let deregisteredAt = try #require(lease.trace.entries.first { $0.step == .deregistered(region: 1) }?.at)
            #expect(final.acks.allSatisfy { $0.at <= deregisteredAt + .milliseconds(5) },
                    "a write was acknowledged after deregistration")
            #expect(try peer.write(block: Self.lateBlock, pattern: 0xEE, to: remote) != .success)

            #expect(file.size == 0)
            #expect(truncate(file.path, off_t(Self.regionSize)) == 0)
            let bytes = try #require(FileManager.default.contents(atPath: file.path))
            #expect(bytes.allSatisfy { $0 == 0 }, "peer bytes reappeared in the file")
            Testbed.ran(.movedBytes)
        }
    }
}

/// Lets the quiesce handler reach the region it must write back (staged strategy).
/// Holds the lease weakly: the lease holds the handler, which holds this box, and a strong
/// reference back would be a cycle that leaks the lease.
final class RegionBox: @unchecked Sendable {
    private let lock = NSLock()
    private weak var core: LeaseCore?
    private var id = 0
    private var staged = false
    func set(_ core: LeaseCore, _ id: Int, staged: Bool) {
        lock.lock(); defer { lock.unlock() }
        self.core = core; self.id = id; self.staged = staged
    }
    func writeBackIfStaged() {
        lock.lock(); let (core, id, staged) = (self.core, self.id, self.staged); lock.unlock()
        guard staged, let core else { return }
        _ = try? core.access(id) { region in
            region.mapping.copyMemory(from: region.registered, byteCount: region.length)
        }
    }
}
