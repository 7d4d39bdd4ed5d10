/// Where a lease is in its life: the one fact that ``LeaseState``, whether byte access is open,
/// `LeaseCore.isRevoked` and the `finished` signal are read from. It only moves forward, and
/// only through `LeaseCore.advance(_:to:)`, which keeps those in step.
enum Lifecycle: Sendable, Equatable {
    /// The lease is held; regions may be pinned and accessed.
    case held
    /// A teardown began (quiesce, queue pairs stopped): a quiesce handler may still use the
    /// regions, nothing new may be pinned.
    case revoking(RevocationReason)
    /// Byte access is closed and drained: the teardown owns the regions (write-back,
    /// deregistration, unmapping, `F_UNLCK`, close).
    case tearingDown(RevocationReason)
    /// Torn down.
    case revoked(RevocationReason)
    /// Torn down, but the kernel had dropped the lease first (`lease-break-time` ran out).
    case lost(RevocationReason)

    /// Its place in the order the states follow.
    var rank: Int {
        switch self {
        case .held: 0
        case .revoking: 1
        case .tearingDown: 2
        case .revoked, .lost: 3
        }
    }

    /// What the application sees.
    var publicState: LeaseState {
        switch self {
        case .held: .held
        case .revoking(let reason), .tearingDown(let reason): .revoking(reason)
        case .revoked(let reason), .lost(let reason): .revoked(reason)
        }
    }

    /// Whether a byte access may start: until the teardown closes access.
    var acceptsAccess: Bool { rank < 2 }

    /// Whether the teardown is complete.
    var isFinal: Bool { rank == 3 }
}
