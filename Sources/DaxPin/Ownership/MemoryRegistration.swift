import Glibc
import SystemPackage

/// Owns one memory registration (`ibv_mr`): ``deregister()`` releases it, and `deinit` does if
/// nothing else did. The device (its protection domain) stays open while the registration lives.
struct MemoryRegistration: ~Copyable, Sendable {
    /// The registration's address, length and keys.
    let registration: Registration
    let device: RDMADevice
    /// Cleared by ``deregister()``; `deinit` does nothing then.
    private var owned = true
    /// The registering process: a forked child's copy does not deregister (its uverbs
    /// descriptors were closed at fork, and the number may name another file by then).
    private let owner = Syscalls.processID()

    init(_ registration: Registration, on device: RDMADevice) {
        self.registration = registration
        self.device = device
    }

    /// `ibv_dereg_mr`; its errno when it fails (the registration is given up either way).
    consuming func deregister() -> Errno? {
        owned = false
        return device.provider.deregister(registration)
    }

    deinit {
        if owned, Syscalls.processID() == owner { _ = device.provider.deregister(registration) }
    }
}
