import DaxPin
import SystemPackage
import Synchronization

/// The registration stand-in for hosts without an RDMA device: it hands out keys and counts
/// live registrations, so the soak can prove that none is left behind. In the testbed the
/// soak registers on the real Soft-RoCE device instead.
final class SoakVerbs: VerbsProvider {
    let name = "soak-stand-in"
    let capabilities = DeviceCapabilities(maxMRSize: 1 << 40, maxMRCount: 1 << 20)
    let verdictKey = "soak-stand-in"
    let pathMTU = 1024
    private let live = Atomic<Int>(0)
    private let keys = Atomic<UInt32>(0x100)

    /// Registrations made and not deregistered.
    var liveRegistrations: Int { live.load(ordering: .relaxed) }

    func register(address: UnsafeMutableRawPointer, length: Int, access: RegistrationAccess, onDemand: Bool) -> Result<Registration, Errno> {
        guard !onDemand else { return .failure(.notSupported) }
        live.add(1, ordering: .relaxed)
        let key = keys.add(1, ordering: .relaxed).newValue
        return .success(Registration(token: UInt(bitPattern: address), address: UInt64(UInt(bitPattern: address)),
                                     length: length, localKey: key, remoteKey: key))
    }

    func deregister(_ registration: Registration) -> Errno? {
        live.subtract(1, ordering: .relaxed)
        return nil
    }

    func prefetch(_ registration: Registration, writable: Bool) -> Errno? { .notSupported }

    func makeOnDemandPagingLoopback(length: Int, target: OnDemandPagingTarget) -> Result<any OnDemandPagingLoopback, DaxPinError> {
        .failure(.deviceFailure(device: name, operation: "ibv_reg_mr(IBV_ACCESS_ON_DEMAND)", errno: .notSupported))
    }
}
