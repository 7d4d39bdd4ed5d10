@testable import DaxPin
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
