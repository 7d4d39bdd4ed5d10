import SystemPackage

/// One registration as the provider reports it. `token` identifies it to the provider.
package struct Registration: Sendable, Hashable {
    package let token: UInt
    package let address: UInt64
    package let length: Int
    package let localKey: UInt32
    package let remoteKey: UInt32
    package init(token: UInt, address: UInt64, length: Int, localKey: UInt32, remoteKey: UInt32) {
        self.token = token; self.address = address; self.length = length
        self.localKey = localKey; self.remoteKey = remoteKey
    }
}

/// The memory-registration calls DaxPin makes on a device. libibverbs implements it; host
/// unit tests substitute a recorder because the build machines have no RDMA device. Every
/// claim about real registrations is proven in the testbed against libibverbs.
package protocol VerbsProvider: Sendable {
    var name: String { get }
    var capabilities: DeviceCapabilities { get }
    /// `ibv_reg_mr`; `onDemand` adds `IBV_ACCESS_ON_DEMAND`.
    func register(address: UnsafeMutableRawPointer, length: Int, access: RegistrationAccess, onDemand: Bool) -> Result<Registration, Errno>
    /// `ibv_dereg_mr`.
    func deregister(_ registration: Registration) -> Errno?
    /// `ibv_advise_mr(IBV_ADVISE_MR_ADVICE_PREFETCH[_WRITE])` on an ODP registration.
    func prefetch(_ registration: Registration, writable: Bool) -> Errno?
    /// Names the device (not this object) for caching its On-Demand Paging verdict: its name
    /// and node GUID.
    var verdictKey: String { get }
    /// The path MTU, in bytes, of queue pairs on the device's port (its active MTU): the
    /// packet size DaxPin's On-Demand Paging check moves data at.
    var pathMTU: Int { get }
    /// The loopback DaxPin's On-Demand Paging check runs on, with `length`-byte buffers and a
    /// target of the kind `target` names.
    func makeOnDemandPagingLoopback(length: Int, target: OnDemandPagingTarget) -> Result<any OnDemandPagingLoopback, DaxPinError>
}

/// The access flags of a registration, narrowest that serves the request.
public struct RegistrationAccess: OptionSet, Sendable, Hashable {
    /// The `IBV_ACCESS_*` bits.
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// The local NIC may write (needed for RDMA READ responses and receives into it).
    public static let localWrite = RegistrationAccess(rawValue: 1 << 0)
    /// Peers may RDMA WRITE into it.
    public static let remoteWrite = RegistrationAccess(rawValue: 1 << 1)
    /// Peers may RDMA READ from it.
    public static let remoteRead = RegistrationAccess(rawValue: 1 << 2)
    /// Peers may perform atomics on it.
    public static let remoteAtomic = RegistrationAccess(rawValue: 1 << 3)
    /// Peers may RDMA FLUSH it to the persistence domain (`IBV_ACCESS_FLUSH_PERSISTENT`, the
    /// uverbs ABI value). Kernels accept it only on persistent memory, and rxe from Linux 6.2.
    public static let flushPersistent = RegistrationAccess(rawValue: 1 << 9)

    /// The narrowest flags for `access`: no remote write on read-only memory, atomics and
    /// FLUSH only on request (FLUSH only with write access: it makes peers' WRITEs durable).
    public static func narrowest(for access: Access, remoteAtomics: Bool = false, remoteFlush: Bool = false) -> RegistrationAccess {
        switch access {
        case .readOnly: return [.remoteRead]
        case .readWrite:
            var flags: RegistrationAccess = [.localWrite, .remoteWrite, .remoteRead]
            if remoteAtomics { flags.insert(.remoteAtomic) }
            if remoteFlush { flags.insert(.flushPersistent) }
            return flags
        }
    }
}
