/// Waits, in Swift concurrency, for a lease to be revoked: a small `Sendable` handle made from
/// the lease (``LayoutLease/revocation``), so that a task can await the revocation without
/// borrowing the noncopyable lease across a suspension (which would keep the lease from being
/// used, released or moved until the wait ends).
///
/// The handle works whenever it was made and whenever it is awaited: before, during or after
/// a break. It is built on ``LayoutLease/events``, which replays what already happened, so a
/// wait that starts after the revocation returns its trace at once.
///
/// Every end of the lease counts: a lease break, a ``LayoutLease/release()``, and the drop of
/// an unreleased lease all give the trace of that teardown (``RevocationTrace/reason`` says
/// which), so a waiter never outlives the lease. To act on breaks only, check the reason:
///
/// ```swift
/// let revocation = lease.revocation          // Sendable: give it to a task
/// Task {
///     if let trace = await revocation.trace(), trace.reason == .leaseBreak {
///         print("lease broken: \(trace)")
///     }
/// }
/// ```
///
/// Cancellation-safe: cancelling the waiting task ends the wait promptly with nil and does
/// nothing to the lease (the wait only listens).
public struct LeaseRevocation: Sendable {
    let core: LeaseCore

    init(core: LeaseCore) { self.core = core }

    /// The leased path (as ``LayoutLease/path``).
    public var path: String { core.path }

    /// Whether the lease has been revoked (its teardown has finished), by a break, a release or
    /// a drop. Does not wait.
    public var isRevoked: Bool { core.isRevoked.load(ordering: .acquiring) }

    /// Suspends until the lease has been revoked (the teardown has finished, by a break, a
    /// release or a drop) and returns its trace; returns at once if that already happened.
    ///
    /// Returns nil if the awaiting task is cancelled before the lease is revoked (also when it
    /// was cancelled before the call); the lease is not affected. A lease revoked before the
    /// call gives its trace even to a cancelled task.
    public func trace() async -> RevocationTrace? {
        // Set with the `revoked` phase, after the trace is complete.
        if isRevoked { return core.trace }
        for await event in core.events() {
            if case .revoked(let trace) = event { return trace }
        }
        return nil
    }

    /// The same as ``trace()``, so that `await lease.revocation()` reads as it does: the lease
    /// is borrowed only to make the handle, never across the suspension.
    public func callAsFunction() async -> RevocationTrace? {
        await trace()
    }
}

extension LayoutLease {
    /// A `Sendable` handle that awaits this lease's revocation (a break, a release or a drop)
    /// and returns its trace: `await lease.revocation()` or, from another task,
    /// `let r = lease.revocation; Task { await r.trace() }`. See ``LeaseRevocation``.
    public var revocation: LeaseRevocation { LeaseRevocation(core: core) }
}
