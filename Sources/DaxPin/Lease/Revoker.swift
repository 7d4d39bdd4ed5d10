/// Who runs a revocation. It decides three things: whether the revocation may wait for one
/// already under way, whether the watcher has to be woken to forget the descriptor, and
/// whether the lease must still be held for the revocation to start.
enum Revoker {
    /// `release()` or a dropped lease: waits for a teardown already under way, and returns its trace.
    case owner
    /// A break, run on the watcher thread itself (no quiesce handler): never blocks.
    case watcher(BreakSignal)
    /// A break with a quiesce handler, on a thread of its own: the handler may take its whole
    /// budget, and the watcher stays free for other leases.
    case breakThread(BreakSignal)

    /// How the watcher knows that the lease is breaking.
    enum BreakSignal {
        /// The kernel's signal, taken without `F_GETLEASE`: the revocation starts only if a
        /// kernel lease is still held.
        case trusted
        /// Any other signal, checked against the kernel's view of the lease.
        case checked
    }

    /// Whether this is the watcher thread, which must never block or signal itself.
    var isWatcher: Bool {
        if case .watcher = self { true } else { false }
    }

    /// Whether the revocation starts only while a kernel lease is held.
    var requiresHeldLease: Bool {
        switch self {
        case .owner: false
        case .watcher(let signal), .breakThread(let signal): signal == .trusted
        }
    }

    /// Whether a caller that finds a teardown under way waits for it: only the owner, whose
    /// `release()` returns the trace.
    var waitsForTeardownUnderWay: Bool {
        if case .owner = self { true } else { false }
    }
}
