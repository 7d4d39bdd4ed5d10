import Synchronization

/// A point in pinning, unpinning, revocation or the watcher where a test can hold a thread to
/// force an interleaving with a lease break (races forced, not hoped for), or count what passed.
package enum InterleavingPoint: Sendable, Hashable {
    /// `pin` has mapped the range (the lease lock is not held).
    case pinMapped
    /// `pin` has populated the mapping.
    case pinPopulated
    /// `pin` has registered the range (`ibv_reg_mr` returned).
    case pinRegistered
    /// `unpin` is about to take its region out of the lease.
    case unpinStarting
    /// A revocation has started (the lease is `revoking`), before its first step.
    case revocationBegan(RevocationReason)
    /// The revocation has closed and drained byte access (the lease is tearing down).
    case accessClosed
    /// The revocation is about to give the lease back (`F_UNLCK`): everything before it ran.
    case unlocking
    /// The watcher took a signal for a watched lease and trusts it (sent by the kernel).
    case signalTrusted
    /// The watcher took a signal for a watched lease and checks it with `F_GETLEASE`.
    case signalVerified
}

#if DAXPIN_TESTING
/// Test-only hook at each ``InterleavingPoint``: the thread that reaches a point runs the hook
/// there. One atomic load per point while no hook is set.
package enum Interleavings {
    private static let armed = Atomic<Bool>(false)
    /// A class, so that reading the hook retains a reference and allocates nothing (a test
    /// counts the allocations of the path to `F_UNLCK` through these points).
    private final class Hook: Sendable {
        let body: @Sendable (InterleavingPoint) -> Void
        init(_ body: @escaping @Sendable (InterleavingPoint) -> Void) { self.body = body }
    }
    private static let hook = AnnotatedMutex<Hook?>(nil)

    /// Runs `body` at every point any thread reaches, until ``clear()``.
    package static func set(_ body: @escaping @Sendable (InterleavingPoint) -> Void) {
        let made = Hook(body)
        hook.withLock { $0 = made }
        armed.store(true, ordering: .releasing)
    }

    /// Removes the hook.
    package static func clear() {
        armed.store(false, ordering: .releasing)
        hook.withLock { $0 = nil }
    }

    static func reached(_ point: InterleavingPoint) {
        guard armed.load(ordering: .acquiring), let current = hook.withLock({ $0 }) else { return }
        current.body(point)
    }
}
#else
/// Release builds: no hook can be set.
enum Interleavings {
    @inline(__always) static func reached(_ point: InterleavingPoint) {}
}
#endif
