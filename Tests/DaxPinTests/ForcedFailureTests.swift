@testable import DaxPin
import Foundation
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// Failures forced at the system-call seam (`Syscalls` + `SyscallFaults`) and in the verbs
    /// stand-in, where a kernel would refuse: each asserts the error, the order, and that the
    /// process holds nothing more afterwards (descriptors, mappings, locks, registrations).
    @Suite(.serialized) struct ForcedFailures {
        init() { SyscallFaults.disarm() }

        @Test("madvise(MADV_POPULATE_*) refused: populating is best effort, nothing is faulted in and nothing throws")
        func populateAdviceRefused() throws {
            defer { SyscallFaults.disarm() }
            let length = 8 << 20
            let base = try #require(mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
            try #require(base != MAP_FAILED)
            defer { munmap(base, length) }
            // Many, as another suite's pin may take some meanwhile (faults are process-wide).
            SyscallFaults.arm(.madvise, errno: EINVAL, times: 1_000_000)
            Populate.range(base, length: length, write: true, alignment: 4096, threads: 1)
            // Through libc, every page would be resident now: the call went through the seam.
            // A few may be resident without this test touching them, which says nothing about
            // the seam.
            let pages = length / Int(sysconf(Int32(_SC_PAGESIZE)))
            #expect(PopulateRange.residentPages(base, length: length) < pages / 100)
            SyscallFaults.disarm()
            Populate.range(base, length: length, write: true, alignment: 4096, threads: 1)
            #expect(PopulateRange.residentPages(base, length: length) == length / Int(sysconf(Int32(_SC_PAGESIZE))))
        }

        @Test("opendir refused (EMFILE): a run directory reads as empty, and reads again once it is allowed")
        func openDirectoryRefused() throws {
            defer { SyscallFaults.disarm() }
            #expect(RunDirectory.listDirectory("/proc/self/fd").contains("0"))
            SyscallFaults.arm(.openDirectory, errno: EMFILE, times: 1_000_000)
            #expect(RunDirectory.listDirectory("/proc/self/fd") == [])
            SyscallFaults.disarm()
            #expect(RunDirectory.listDirectory("/proc/self/fd").contains("0"))
        }

        @Test("pthread_create refused (EAGAIN) for the break thread and the quiesce handler: the watcher revokes and the handler runs all the same, in order")
        func threadCreationRefused() throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let ran = Atomic<Bool>(false)
            let lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(3)) { _ in
                ran.store(true, ordering: .releasing)
            })
            // The watcher already runs (it starts once per process); the next two threads asked
            // for are the break's and the handler's.
            SyscallFaults.arm(.createThread, errno: EAGAIN, times: 2)
            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)), "the breaker never finished")
            #expect(result.status == 0)
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            #expect(SyscallFaults.isSpent(.createThread), "the break did not ask for its threads")
            let handlerRan = ran.load(ordering: .acquiring)
            #expect(handlerRan, "the quiesce handler did not run")
            #expect(lease.trace.steps.prefix(3) == [.breakNoticed, .quiesceStarted, .quiesceFinished])
            #expect(lease.trace.steps.suffix(2) == [.leaseReleased, .closed])
            lease.release()
        }

        @Test("a MAP_FIXED over the lease's reservation fails: the region is mapped on its own, released in order, nothing left")
        func mapFixedFails() throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            SyscallFaults.arm(.mmapFixed, errno: EINVAL)
            let first = try lease.pin(offset: 0, length: 64 << 10, on: RDMADevice(provider: recording))
            #expect(SyscallFaults.isSpent(.mmapFixed), "the pin did not map over the reservation")
            let second = try lease.pin(offset: 64 << 10, length: 64 << 10, on: RDMADevice(provider: recording))
            let addresses = try [first, second].map { id in try lease.withRegion(id) { $0.memoryRegion.remote.address } }
            // The second region went into the (still intact) reservation, the first did not.
            #expect(addresses[1] != addresses[0] + UInt64(64 << 10))
            let trace = lease.release()
            #expect(trace.steps == [.deregistered(region: 1), .deregistered(region: 2), .unmapped(region: 1), .unmapped(region: 2),
                                    .leaseReleased, .closed])
            #expect(recording.calls.filter { if case .deregister(_, stillMapped: true) = $0 { true } else { false } }.count == 2)
            #expect(recording.liveRegistrations == 0)
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before)), mappings \(before.mappings) -> \(after.mappings)")
        }

        @Test("F_SETLEASE refused: a typed error, and no descriptor, lease or watch left", arguments: [
            (EAGAIN, "file in use"), (ENOLCK, "lease unavailable"),
        ])
        func setLeaseFails(code: Int32, expected: String) throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let before = ResourceCount.now()
            SyscallFaults.arm(.setLease, errno: code, times: 2)  // F_LAYOUT first, then F_WRLCK
            #expect {
                _ = try LayoutLease(path: file.path)
            } throws: { error in
                switch (error as? DaxPinError, expected) {
                case (.fileInUse?, "file in use"): true
                case (.leaseUnavailable(_, let errno)?, "lease unavailable"): errno.rawValue == code
                default: false
                }
            }
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before))")
            // The watcher forgot the descriptor: a lease taken now works and breaks as usual.
            SyscallFaults.disarm()
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(length: 4096, on: try testDevice())
            #expect(lease.release().steps.last == .closed)
        }

        @Test("F_SETOWN_EX refused: the lease is given back (F_UNLCK) and the descriptor closed")
        func setOwnerFails() throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let before = ResourceCount.now()
            SyscallFaults.arm(.setOwner, errno: EPERM)
            #expect(throws: DaxPinError.systemCall(operation: "fcntl(F_SETOWN_EX)", path: file.path, errno: .notPermitted)) {
                _ = try LayoutLease(path: file.path)
            }
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before)), locks \(before.locks) -> \(after.locks)")
        }

        @Test("ibv_reg_mr refused: a typed refusal, and the pin leaves no mapping, reservation or registration")
        func registrationRefused() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs(refusePinned: .notPermitted)
            let device = RDMADevice(provider: recording)
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            let held = ResourceCount.now()
            // The first pin of the lease (it made the reservation) and a later one (it keeps it).
            let kept = try lease.pin(offset: 0, length: 64 << 10, on: device, policy: .only(.staged))
            let keptCount = ResourceCount.now()
            for _ in 0..<2 {
                #expect {
                    _ = try lease.pin(offset: 64 << 10, length: 64 << 10, on: device, policy: .only(.pinned))
                } throws: { error in
                    guard case .registrationRefused(let refusal)? = error as? DaxPinError else { return false }
                    return refusal.attempts.first?.strategy == .pinned && refusal.attempts.first?.errno == .notPermitted
                }
                #expect(ResourceCount.now() == keptCount, "a refused pin left something behind")
            }
            try lease.unpin(kept)
            #expect {
                _ = try lease.pin(offset: 0, length: 64 << 10, on: device, policy: .only(.pinned))
            } throws: { ($0 as? DaxPinError).map { if case .registrationRefused = $0 { true } else { false } } ?? false }
            #expect(ResourceCount.now() == held, "the refused first pin left its reservation behind")
            #expect(lease.release().steps.suffix(2) == [.leaseReleased, .closed])
            #expect(recording.liveRegistrations == 0)
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before)), mappings \(before.mappings) -> \(after.mappings)")
        }

        @Test("open(2) refused: a typed error, nothing held", arguments: [
            (EMFILE, "systemCall"), (EACCES, "permissionDenied"), (EROFS, "readOnlyFileSystem"),
        ])
        func openFails(code: Int32, expected: String) throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let before = ResourceCount.now()
            SyscallFaults.arm(.open, errno: code)
            #expect {
                _ = try LayoutLease(path: file.path)
            } throws: { error in
                switch (error as? DaxPinError, expected) {
                case (.systemCall("open", _, let errno)?, "systemCall"): errno.rawValue == code
                case (.permissionDenied(_, let errno)?, "permissionDenied"): errno.rawValue == code
                case (.readOnlyFileSystem?, "readOnlyFileSystem"): true
                default: false
                }
            }
            #expect(SyscallFaults.isSpent(.open))
            #expect(ResourceCount.after(expecting: before) == before)
        }

        @Test("fstatfs refused while classifying: a typed error, and the opened descriptor is closed")
        func classifyFails() throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let before = ResourceCount.now()
            SyscallFaults.arm(.statfs, errno: EIO)
            #expect(throws: DaxPinError.systemCall(operation: "fstatfs", path: file.path, errno: .ioError)) {
                _ = try LayoutLease(path: file.path)
            }
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before))")
        }

        @Test("msync refused in persist: a typed error; the region stays usable and persists afterwards")
        func msyncFails() throws {
            defer { SyscallFaults.disarm() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(length: 4096, on: RDMADevice(provider: RecordingVerbs()))
            SyscallFaults.arm(.msync, errno: EIO)
            try lease.withRegion(id) { region in
                #expect(throws: DaxPinError.systemCall(operation: "msync", path: file.path, errno: .ioError)) {
                    try region.persist()
                }
                try region.withMutableBytes { $0.storeBytes(of: 0x5A, toByteOffset: 0, as: UInt8.self) }
                try region.persist()
            }
            #expect(lease.release().steps.last == .closed)
        }

        @Test("ibv_dereg_mr fails mid-teardown: the rest still deregisters, every region unmaps, the lease is released; the trace says which failed")
        func deregistrationFailsMidTeardown() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            let device = RDMADevice(provider: recording)
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            for index in 0..<3 { _ = try lease.pin(offset: index * (64 << 10), length: 64 << 10, on: device) }
            recording.failDeregistration(skip: 1, errno: .resourceBusy)
            let trace = lease.release()
            #expect(trace.steps == [
                .deregistered(region: 1), .deregistrationFailed(region: 2, errno: EBUSY), .deregistered(region: 3),
                .unmapped(region: 1), .unmapped(region: 2), .unmapped(region: 3), .leaseReleased, .closed,
            ])
            #expect(trace.description.contains("region 2: ibv_dereg_mr failed: Device or resource busy"))
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before)), mappings \(before.mappings) -> \(after.mappings)")
        }
    }
}
