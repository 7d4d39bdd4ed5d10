@testable import DaxPin
import CAllocationCounter
import Synchronization
import Testing

extension DaxPin {
    /// A lease's life is one state (`Lifecycle`), moved forward by one setter that keeps the
    /// public state, the access gate, `isRevoked` and the `finished` signal in step.
    @Suite(.serialized) struct LeaseLifecycle {
        @Test("the states follow one order, and each derived fact reads from it")
        func derivedFacts() {
            let order: [Lifecycle] = [.held, .revoking(.leaseBreak), .tearingDown(.leaseBreak), .revoked(.leaseBreak)]
            #expect(order.map(\.rank) == [0, 1, 2, 3])
            #expect(Lifecycle.lost(.leaseBreak).rank == 3 && Lifecycle.lost(.leaseBreak).isFinal)
            #expect(order.map(\.acceptsAccess) == [true, true, false, false])
            #expect(order.map(\.publicState) == [.held, .revoking(.leaseBreak), .revoking(.leaseBreak), .revoked(.leaseBreak)])
            #expect(Lifecycle.lost(.dropped).publicState == .revoked(.dropped))
        }

        @Test("a release walks held, revoking, tearing down, revoked; isRevoked and finished follow the last step")
        func releaseWalksTheLifecycle() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let lease = try LayoutLease(path: file.path)
            let core = lease.core
            final class Notes: Sendable { let items = Mutex<[(String, Lifecycle, Bool)]>([]) }
            let seen = Notes()
            @Sendable func note(_ where: String) {
                let (lifecycle, revoked) = (core.state.withLock { $0.lifecycle }, core.isRevoked.load(ordering: .acquiring))
                seen.items.withLock { $0.append((`where`, lifecycle, revoked)) }
            }
            note("before")
            _ = core.attach { note("queue pairs stopped") }
            Interleavings.set { point in
                switch point {
                case .revocationBegan: note("began")
                case .accessClosed: note("access closed")
                default: break
                }
            }
            defer { Interleavings.clear() }
            #expect(core.waitUntilRevoked(timeout: .zero) == nil, "finished before any teardown")
            lease.release()
            Interleavings.clear()
            note("after")
            let steps = seen.items.withLock { $0 }
            #expect(steps.map(\.0) == ["before", "began", "queue pairs stopped", "access closed", "after"])
            #expect(steps.map(\.1) == [.held, .revoking(.released), .revoking(.released), .tearingDown(.released), .revoked(.released)])
            #expect(steps.map(\.2) == [false, false, false, false, true], "isRevoked moved before the last step")
            #expect(core.waitUntilRevoked(timeout: .zero) != nil, "finished was not left")
        }
    }
}

extension DaxPin.LeaseLifecycle {
    /// The breaker is blocked until `F_UNLCK`, so the path to it must not wait on the allocator
    /// (a lock another thread may hold, or page faults of a fresh arena).
    @Test("a revocation allocates nothing on its thread from its start to F_UNLCK",
          .enabled(if: daxpin_allocation_counting_available() != 0, "a sanitizer interposes malloc itself"))
    func noAllocationBeforeUnlock() throws {
        // The counter itself works: an array allocates.
        daxpin_allocation_count_begin()
        let control = [Int](repeating: 7, count: 1000)
        let counted = daxpin_allocation_count_end()
        #expect(counted >= 1 && control.count == 1000, "the allocation counter saw \(counted) allocations of an array")

        let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
        let recording = RecordingVerbs()
        recording.reserveLog(64)  // the stand-in's own bookkeeping must not count
        let device = RDMADevice(provider: recording)
        // One revocation first: the runtime allocates the metadata of generic types the first
        // time they are used, once per process, which is not the path's own cost. The mapping
        // ledger (test bookkeeping another suite may have started) is off throughout.
        try MappingLedger.withoutAccounting { () throws in
            for round in 0..<2 {
                var lease = try LayoutLease(path: file.path)
                for index in 0..<3 { _ = try lease.pin(offset: index * (256 << 10), length: 256 << 10, on: device) }
                _ = lease.core.attach {}  // a stop hook, as a queue pair attaches
                if round == 0 { lease.release(); continue }
                try measureRelease(lease)
            }
        }
    }

    private func measureRelease(_ lease: consuming LayoutLease) throws {
        final class Count: Sendable { let value = Atomic<Int>(-1) }
        let allocations = Count()
        Interleavings.set { point in
            switch point {
            case .revocationBegan: daxpin_allocation_count_begin()
            case .unlocking: allocations.value.store(Int(daxpin_allocation_count_end()), ordering: .releasing)
            default: break
            }
        }
        defer { Interleavings.clear() }
        let trace = lease.release()
        Interleavings.clear()
        #expect(trace.steps.contains(.leaseReleased))
        #expect(allocations.value.load(ordering: .acquiring) == 0, "allocations between the start of the revocation and F_UNLCK")
    }
}

extension DaxPin.LeaseLifecycle {
    @Test("a lease break's revocation allocates nothing on the watcher from its start to F_UNLCK",
          .enabled(if: daxpin_allocation_counting_available() != 0, "a sanitizer interposes malloc itself"))
    func noAllocationBeforeUnlockOnBreak() throws {
        let file = try ScratchFile(in: HostDirs.tmpfs, size: 1 << 20)
        let recording = RecordingVerbs()
        recording.reserveLog(64)
        let device = RDMADevice(provider: recording)
        final class Count: Sendable { let value = Atomic<Int>(-1) }
        try MappingLedger.withoutAccounting { () throws in  // test bookkeeping, off (see above)
            for round in 0..<2 {  // the first warms the runtime's generic metadata up
                var lease = try LayoutLease(path: file.path)
                for index in 0..<3 { _ = try lease.pin(offset: index * (256 << 10), length: 256 << 10, on: device) }
                _ = lease.core.attach {}
                let allocations = Count()
                Interleavings.set { point in
                    switch point {
                    case .revocationBegan(.leaseBreak): daxpin_allocation_count_begin()
                    case .unlocking: allocations.value.store(Int(daxpin_allocation_count_end()), ordering: .releasing)
                    default: break
                    }
                }
                defer { Interleavings.clear() }
                let breaker = try Breaker.openForWrite(file.path)
                let trace = lease.waitUntilRevoked(timeout: .seconds(30))
                _ = breaker.wait()
                Interleavings.clear()
                #expect(trace?.reason == .leaseBreak)
                if round == 1 {
                    #expect(allocations.value.load(ordering: .acquiring) == 0, "allocations on the watcher between the break and F_UNLCK")
                }
                lease.release()
            }
        }
    }
}
