@testable import DaxPin
import Foundation
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// Application-initiated teardown follows the same dependency order as a lease break.
    @Suite struct TeardownOrder {
        @Test("who revokes: only the owner waits for a teardown under way, only a trusted break signal needs a held lease, only the watcher must not wake itself")
        func revokers() {
            let callers: [Revoker] = [.owner, .watcher(.trusted), .watcher(.checked), .breakThread(.trusted), .breakThread(.checked)]
            #expect(callers.map(\.waitsForTeardownUnderWay) == [true, false, false, false, false])
            #expect(callers.map(\.requiresHeldLease) == [false, true, false, true, false])
            #expect(callers.map(\.isWatcher) == [false, true, true, false, false])
        }

        @Test("release deregisters every MR before unmapping any region, then unlocks and closes")
        func releaseOrder() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let recording = RecordingVerbs()
            let device = try testDevice(recording)
            var lease = try LayoutLease(path: file.path)
            for index in 0..<3 { _ = try lease.pin(offset: index * (256 << 10), length: 256 << 10, on: device) }
            let before = ResourceCount.now()
            #expect(mappedFiles().contains(file.path))
            let trace = lease.release()
            #expect(trace.reason == .released)
            #expect(trace.steps == [
                .deregistered(region: 1), .deregistered(region: 2), .deregistered(region: 3),
                .unmapped(region: 1), .unmapped(region: 2), .unmapped(region: 3),
                .leaseReleased, .closed,
            ])
            let after = ResourceCount.now()
            #expect(after.fds == before.fds - 1)
            #expect(!mappedFiles().contains(file.path))
            #expect(after.locks == before.locks - 1)
            if !Testbed.isActive {
                #expect(recording.liveRegistrations == 0)
                #expect(recording.calls.filter { if case .deregister(_, stillMapped: true) = $0 { true } else { false } }.count == 3)
            }
        }

        /// A file-backed lease maps its regions into one reserved address range (file offset X at
        /// base + X), so a teardown unmaps them all with one `munmap`. An unpinned region's range
        /// must go back to the reservation, never become a hole another mapping could take (the
        /// final `munmap` of the whole range would remove that mapping), and a release must leave
        /// no mapping and no reservation behind.
        @Test("regions share one reserved range; unpin re-reserves, release removes everything")
        func regionsShareOneReservation() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let device = try testDevice()
            MappingLedger.start()
            let mappingsBefore = MappingLedger.mappedBytes
            var lease = try LayoutLease(path: file.path)
            let length = 128 << 10
            var ids: [PinnedRegion.ID] = []
            for index in [0, 1, 2, 3] { ids.append(try lease.pin(offset: index * length, length: length, on: device)) }
            var bases: [UInt] = []
            for id in ids { bases.append(UInt(try lease.withRegion(id) { $0.memoryRegion.remote.address })) }
            #expect(zip(bases, bases.dropFirst()).allSatisfy { $0.0 + UInt(length) == $0.1 }, "bases: \(bases)")
            #expect(mapping(containing: bases[1])?.path == file.path)
            try lease.unpin(ids[1])
            let hole = try #require(mapping(containing: bases[1]), "the unpinned range became a hole")
            #expect(hole.path == nil && hole.permissions.hasPrefix("---"), "not re-reserved: \(hole)")
            #expect(mapping(containing: bases[2])?.path == file.path)
            // A region pinned again lands in its place.
            let again = try lease.pin(offset: length, length: length, on: device)
            #expect(UInt(try lease.withRegion(again) { $0.memoryRegion.remote.address }) == bases[1])
            let trace = lease.release()
            // The trace keeps the unpin's steps too: one unmapped there, four at release.
            #expect(trace.steps.filter { if case .unmapped = $0 { true } else { false } }.count == 5)
            #expect(bases.allSatisfy { mapping(containing: $0) == nil }, "something is left of the reservation")
            #expect(MappingLedger.mappedBytes == mappingsBefore)
            #expect(!mappedFiles().contains(file.path))
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("deinit is the backstop and keeps the order (Swift destroys stored properties after deinit)")
        func dropOrder() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let recording = RecordingVerbs()
            let device = try testDevice(recording)
            let before = ResourceCount.now()
            let events: AsyncStream<LeaseEvent>
            do {
                var lease = try LayoutLease(path: file.path)
                _ = try lease.pin(length: 4096, on: device)
                _ = try lease.pin(offset: 8192, length: 4096, on: device)
                events = lease.events
            }  // dropped here without release()
            var trace: RevocationTrace?
            // The stream already ended with .revoked: this loop is bounded by it.
            for await event in events {
                if case .revoked(let final) = event { trace = final }
            }
            let final = try #require(trace)
            #expect(final.reason == .dropped)
            #expect(final.steps == [.deregistered(region: 1), .deregistered(region: 2),
                                    .unmapped(region: 1), .unmapped(region: 2), .leaseReleased, .closed])
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "resources leaked: \(after.fdDifference(from: before))")
            if !Testbed.isActive {
                #expect(recording.calls.filter { if case .deregister(_, stillMapped: true) = $0 { true } else { false } }.count == 2)
            }
        }

        @Test("unpin deregisters, then unmaps, and leaves the lease held")
        func unpinOrder() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
            let recording = RecordingVerbs()
            var lease = try LayoutLease(path: file.path)
            let device = try testDevice(recording)
            let keep = try lease.pin(length: 4096, on: device)
            let drop = try lease.pin(offset: 4096, length: 4096, on: device)
            try lease.unpin(drop)
            #expect(lease.trace.steps == [.deregistered(region: drop.rawValue), .unmapped(region: drop.rawValue)])
            #expect(lease.state == .held)
            try lease.withRegion(keep) { region in
                try region.withBytes { #expect($0.unsafeLoad(fromByteOffset: 0, as: UInt8.self) == 0xA5) }
            }
        }

        @Test("attached stop actions run after quiesce and before deregistration")
        func attachedStopsRunBeforeDeregistration() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(1)) { _ in })
            let recording = RecordingVerbs()
            let id = try lease.pin(on: try testDevice(recording))
            let regionWasLiveDuringStop = AtomicFlag()
            let core = lease.core
            _ = lease.attach {
                // The region must still be pinned and registered while queue pairs stop.
                if (try? core.access(id.rawValue) { _ in true }.get()) == true, Testbed.isActive || recording.liveRegistrations == 1 {
                    regionWasLiveDuringStop.set()
                }
            }
            let breaker = try Breaker.truncate(file.path)
            _ = try #require(breaker.wait())
            #expect(eventually { lease.state.isRevoked })
            #expect(regionWasLiveDuringStop.isSet)
            #expect(lease.trace.steps == [.breakNoticed, .quiesceStarted, .quiesceFinished, .queuePairsStopped(count: 1),
                                          .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        /// A break writes a staged region back once no RDMA can land (queue pairs stopped) and
        /// before its MR and bounce buffer go; the breaker, a plain read open here, reads it.
        @Test("a break writes staged regions back after stopping queue pairs and before deregistration")
        func stagedWriteBackComesBeforeDeregistration() throws {
            let length = 64 << 10
            let file = try ScratchFile(in: HostDirs.tmpfs, size: length, fill: 0x11)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice(), policy: .only(.staged))
            try lease.withRegion(id) { region in
                #expect(region.strategy == .staged)
                try region.withMutableBytes { span in
                    for page in stride(from: 0, to: length, by: 4096) { span.storeBytes(of: 0x77, toByteOffset: page + 5, as: UInt8.self) }
                }
            }
            _ = lease.attach { }
            let copy = file.path + ".read"
            defer { unlink(copy) }
            let breaker = try Breaker.readCopy(file.path, into: copy)
            #expect(try #require(breaker.wait()).status == 0)
            #expect(eventually { lease.state.isRevoked })
            let trace = lease.trace
            #expect(trace.steps == [.breakNoticed, .queuePairsStopped(count: 1), .wroteBack(region: 1, bytes: length),
                                    .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed], "\(trace)")
            #expect(trace.stagedBytesWrittenBack == length && trace.stagedBytesDropped == 0)
            let read = try #require(FileManager.default.contents(atPath: copy))
            #expect(read.count == length)
            #expect(stride(from: 0, to: length, by: 4096).allSatisfy { read[$0 + 5] == 0x77 && read[$0 + 4] == 0x11 })
            if Testbed.isActive { Testbed.ran(.movedBytes) }
        }

        @Test("anonymous memory: pinned, no lease, same order")
        func anonymousMemory() throws {
            var lease = LayoutLease.anonymous()
            #expect(lease.memory == .anonymous)
            #expect(lease.kind == .none(reason: "anonymous memory has no file to truncate"))
            let id = try lease.pin(length: 64 << 10, on: try testDevice())
            try lease.withRegion(id) { region in
                #expect(region.strategy == .pinned)
                try region.withMutableBytes { $0.storeBytes(of: 7, toByteOffset: 100, as: UInt8.self) }
                try region.withBytes { #expect($0.unsafeLoad(fromByteOffset: 100, as: UInt8.self) == 7) }
            }
            #expect(lease.release().steps == [.deregistered(region: 1), .unmapped(region: 1)])
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("staged regions copy in at pin time and write back on request")
        func stagedCopies() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10, fill: 0x11)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice(), policy: .only(.staged))
            try lease.withRegion(id) { region in
                #expect(region.strategy == .staged)
                try region.withBytes { #expect($0.unsafeLoad(fromByteOffset: 10, as: UInt8.self) == 0x11) }
                try region.withMutableBytes { $0.storeBytes(of: 0x77, toByteOffset: 10, as: UInt8.self) }
                try region.writeBack(offset: 0, length: 4096)
                #expect(throws: DaxPinError.self) { try region.writeBack(offset: 60 << 10, length: 8192) }
            }
            lease.release()  // reading the file from this process would break our own lease
            let bytes = try #require(FileManager.default.contents(atPath: file.path))
            #expect(bytes[10] == 0x77)
            #expect(bytes[11] == 0x11)
            if Testbed.isActive { Testbed.ran(.movedBytes) }
        }
    }
}

/// The mappings of /proc/self/maps: address range, permissions and path (nil for an
/// anonymous mapping).
func processMappings() -> [(range: Range<UInt>, permissions: String, path: String?)] {
    readTextFile("/proc/self/maps").split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
        guard bounds.count == 2, fields.count > 1 else { return nil }
        return (bounds[0]..<bounds[1], String(fields[1]), fields.count > 5 ? String(fields[5]) : nil)
    }
}

/// The mapping whose range contains `address`, or nil when nothing is mapped there.
func mapping(containing address: UInt) -> (permissions: String, path: String?)? {
    processMappings().first { $0.range.contains(address) }.map { ($0.permissions, $0.path) }
}

/// Paths of the files this process has mapped.
func mappedFiles() -> Set<String> {
    Set(processMappings().compactMap(\.path))
}

/// A flag set from a stop action on another thread.
final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}
