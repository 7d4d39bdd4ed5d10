@testable import DaxPin
import CLease
import Glibc
import SystemPackage
import Testing

extension DaxPin {
    /// The types that own the lease's kernel objects, used on their own: each `deinit` is a
    /// backstop that releases what is left in the same dependency order as the revocation
    /// (registration before mapping, lease before descriptor), and nothing is left behind.
    @Suite(.serialized) struct Ownership {
        init() { MappingLedger.start() }

        @Test("a dropped region deregisters while its pages are still mapped, then unmaps")
        func droppedRegionKeepsTheOrder() throws {
            let recording = RecordingVerbs()
            let device = RDMADevice(provider: recording)
            let before = MappingLedger.mappedBytes
            let mapping = try anonymousMapping(64 << 10)
            let base = mapping.base
            let registered = try recording.register(address: base, length: 64 << 10, access: [.localWrite], onDemand: false).get()
            do {
                _ = OwnedRegion(id: 1, offset: 0, length: 64 << 10, strategy: .pinned,
                                registration: MemoryRegistration(registered, on: device, mapping: mapping, staging: nil),
                                flushIsDurable: false)
            }
            #expect(recording.calls.last == .deregister(address: UInt64(UInt(bitPattern: base)), stillMapped: true))
            #expect(recording.liveRegistrations == 0)
            #expect(!isMapped(base, 64 << 10))
            #expect(MappingLedger.mappedBytes == before)
        }

        @Test("a dropped region table releases every region, each in order")
        func droppedTableReleasesAll() throws {
            let recording = RecordingVerbs()
            let device = RDMADevice(provider: recording)
            let before = MappingLedger.mappedBytes
            var bases: [UnsafeMutableRawPointer] = []
            do {
                var table = RegionTable(capacity: 1)  // grows while regions are added
                for id in 1...5 {
                    let mapping = try anonymousMapping(4096)
                    bases.append(mapping.base)
                    let registered = try recording.register(address: mapping.base, length: 4096, access: [], onDemand: false).get()
                    table.add(OwnedRegion(id: id, offset: 0, length: 4096, strategy: .pinned,
                                          registration: MemoryRegistration(registered, on: device, mapping: mapping, staging: nil),
                                          flushIsDurable: false))
                }
                var removed = table.remove(id: 3)
                #expect(removed?.info.id == 3)
                #expect(table.infos.map(\.id) == [1, 2, 4, 5])
                #expect(removed?.deregister() == nil)
                #expect(removed?.deregister() == nil, "a second deregistration does nothing")
            }
            let deregistrations = recording.calls.compactMap { call -> Bool? in
                if case .deregister(_, let stillMapped) = call { stillMapped } else { nil }
            }
            #expect(deregistrations == [true, true, true, true, true])
            #expect(recording.liveRegistrations == 0)
            #expect(bases.allSatisfy { !isMapped($0, 4096) })
            #expect(MappingLedger.mappedBytes == before)
        }

        @Test("a range given back to a reservation is reserved again, never a hole; the reservation's deinit removes it all")
        func reservationGivesBackAndCleansUp() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let fd = open(file.path, O_RDWR)
            defer { close(fd) }
            let before = MappingLedger.mappedBytes
            var start: UInt = 0
            do {
                guard var reservation = AddressReservation.make(capacity: 256 << 10, alignment: 4096) else {
                    Issue.record("no reservation")
                    return
                }
                start = UInt(bitPattern: reservation.base)
                let first = try mapped(reservation.map(length: 64 << 10, protection: PROT_READ | PROT_WRITE,
                                                       flags: MAP_SHARED, fd: fd, offset: 0))
                let second = try mapped(reservation.map(length: 64 << 10, protection: PROT_READ | PROT_WRITE,
                                                        flags: MAP_SHARED, fd: fd, offset: 64 << 10))
                #expect(first.isReserved && UInt(bitPattern: second.base) == start + UInt(64 << 10))
                #expect(mapping(containing: start)?.path == file.path)
                first.giveBack(to: &reservation)
                let hole = try #require(mapping(containing: start), "the given-back range became a hole")
                #expect(hole.path == nil && hole.permissions.hasPrefix("---"))
                let intact = reservation.intact
                #expect(intact)
                second.coveredByReservation()
            }
            #expect(mapping(containing: start) == nil, "the reservation's deinit left something")
            #expect(!mappedFiles().contains(file.path))
            #expect(MappingLedger.mappedBytes == before)
        }

        @Test("a dropped lease handle gives the lease back, then closes the descriptor")
        func droppedLeaseHandle() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let before = ResourceCount.now()
            let fd = open(file.path, O_RDWR)
            try #require(fd >= 0)
            do {
                var handle = LeaseHandle(fd: fd)
                #expect(throws: Never.self) { try handle.take(Int32(DAXPIN_F_WRLCK)) }
                #expect(handle.held == Int32(DAXPIN_F_WRLCK) && !handle.isBeingBroken)
                #expect(ResourceCount.now().locks == before.locks + 1)
            }
            #expect(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "the descriptor is still open")
            #expect(ResourceCount.after(expecting: before) == before)
        }

        @Test("a released lease's handle reports the unlock once; close is the last step")
        func leaseHandleSteps() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let fd = open(file.path, O_RDONLY)
            try #require(fd >= 0)
            var handle = LeaseHandle(fd: fd)
            #expect(throws: Never.self) { try handle.take(Int32(DAXPIN_F_RDLCK)) }
            #expect(handle.unlock() == (wasHeld: true, lost: false))
            #expect(handle.unlock() == (wasHeld: false, lost: false))
            #expect(daxpin_get_lease(fd) == Int32(DAXPIN_F_UNLCK))
            handle.close()
            #expect(fcntl(fd, F_GETFD) == -1)
        }
    }
}

private struct NotMapped: Error {}

/// A private anonymous read-write mapping of `length` bytes.
private func anonymousMapping(_ length: Int) throws -> Mapping {
    try mapped(Mapping.map(length: length, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: -1, offset: 0))
}

/// The mapping in `result` (`#require` takes copyable values only).
private func mapped(_ result: consuming Result<Mapping, Errno>?) throws -> Mapping {
    switch consume result {
    case .success(let mapping)?: return mapping
    default: throw NotMapped()
    }
}
