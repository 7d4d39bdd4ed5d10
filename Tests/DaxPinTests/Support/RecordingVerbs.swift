@testable import DaxPin
import Glibc
import Synchronization
import SystemPackage

/// Host stand-in for libibverbs (the build machines have no RDMA device). It records every
/// call and, at deregistration, whether the registered memory was still mapped: the
/// property the dependency order protects. Real registrations are tested in the testbed.
final class RecordingVerbs: VerbsProvider {
    enum Call: Equatable, CustomStringConvertible {
        case register(address: UInt64, onDemand: Bool, access: RegistrationAccess)
        case deregister(address: UInt64, stillMapped: Bool)
        case prefetch(address: UInt64)
        var description: String {
            switch self {
            case .register(let a, let odp, _): "register(\(String(a, radix: 16)), odp: \(odp))"
            case .deregister(let a, let mapped): "deregister(\(String(a, radix: 16)), mapped: \(mapped))"
            case .prefetch(let a): "prefetch(\(String(a, radix: 16)))"
            }
        }
    }

    let name = "recording0"
    let capabilities: DeviceCapabilities
    /// How the advertised ODP behaves in DaxPin's check.
    let simulatedODP: SimulatedODP
    /// Path MTU of the simulated loopback.
    let pathMTU: Int
    /// Unique per stand-in unless given, so that each gets its own cached ODP verdict.
    let verdictKey: String
    private static let instances = Atomic<Int>(0)
    /// How many ODP loopbacks (checks) this stand-in made.
    var checksRun: Int { checks.withLock { $0.count } }
    /// The target of each check this stand-in ran, in order.
    var checkedTargets: [OnDemandPagingTarget] { checks.withLock { $0 } }
    private let checks = Mutex<[OnDemandPagingTarget]>([])
    /// Errno to answer for pinned (file-backed memory only, as the kernel refuses pins of
    /// fs-dax and page-cache files but not of anonymous bounce buffers) and on-demand
    /// registrations, to play a refusing kernel.
    let refusePinned: Errno?
    let refuseOnDemand: Errno?
    private let log = Mutex<[Call]>([])
    private let nextKey = Atomic<UInt32>(0x100)

    init(odp: Bool = false, refusePinned: Errno? = nil, refuseOnDemand: Errno? = nil,
         simulatedODP: SimulatedODP = .faithful, pathMTU: Int = 1024, verdictKey: String? = nil) {
        self.simulatedODP = simulatedODP
        self.pathMTU = pathMTU
        self.verdictKey = verdictKey ?? "recording\(Self.instances.add(1, ordering: .relaxed).newValue)"
        let support = DeviceCapabilities.ODPSupport(write: odp, read: odp)
        self.capabilities = DeviceCapabilities(odp: odp, odpRC: support, maxMRSize: 1 << 40, maxMRCount: 1 << 20)
        self.refusePinned = refusePinned
        self.refuseOnDemand = refuseOnDemand
    }

    var calls: [Call] { log.withLock { $0 } }

    /// Room for `count` more recorded calls, so that recording allocates nothing.
    func reserveLog(_ count: Int) { log.withLock { $0.reserveCapacity($0.count + count) } }
    var liveRegistrations: Int {
        calls.reduce(0) { count, call in
            switch call {
            case .register: count + 1
            case .deregister: count - 1
            default: count
            }
        }
    }

    func register(address: UnsafeMutableRawPointer, length: Int, access: RegistrationAccess, onDemand: Bool) -> Result<Registration, Errno> {
        if onDemand, let refusal = refuseOnDemand { return .failure(refusal) }
        if !onDemand, let refusal = refusePinned, isFileBacked(address) { return .failure(refusal) }
        let key = nextKey.add(1, ordering: .relaxed).newValue
        let registration = Registration(token: UInt(bitPattern: address), address: UInt64(UInt(bitPattern: address)),
                                        length: length, localKey: key, remoteKey: key | 0x8000_0000)
        log.withLock { $0.append(.register(address: registration.address, onDemand: onDemand, access: access)) }
        return .success(registration)
    }

    func deregister(_ registration: Registration) -> Errno? {
        let mapped = isMapped(UnsafeMutableRawPointer(bitPattern: UInt(registration.address))!, registration.length)
        let failure: Errno? = deregisterFault.withLock { fault in
            guard let code = fault.errno else { return nil }
            if fault.skip > 0 { fault.skip -= 1; return nil }
            fault.errno = nil
            return code
        }
        if let failure { return failure }  // a failed ibv_dereg_mr leaves the MR registered
        log.withLock { $0.append(.deregister(address: registration.address, stillMapped: mapped)) }
        return nil
    }

    /// Makes the deregistration after `skip` successful ones fail with `errno`, once.
    func failDeregistration(skip: Int, errno: Errno) {
        deregisterFault.withLock { $0 = (skip, errno) }
    }
    private let deregisterFault = Mutex<(skip: Int, errno: Errno?)>((0, nil))

    func makeOnDemandPagingLoopback(length: Int, target: OnDemandPagingTarget) -> Result<any OnDemandPagingLoopback, DaxPinError> {
        checks.withLock { $0.append(target) }
        if case .refused(let code) = simulatedODP {
            return .failure(.deviceFailure(device: name, operation: "ibv_reg_mr(IBV_ACCESS_ON_DEMAND)", errno: code))
        }
        return .success(SimulatedODPLoopback(length: length, pathMTU: pathMTU, behaviour: simulatedODP, target: target))
    }

    func prefetch(_ registration: Registration, writable: Bool) -> Errno? {
        log.withLock { $0.append(.prefetch(address: registration.address)) }
        return nil
    }
}

/// Whether [address, address+length) is mapped: msync reports ENOMEM for unmapped pages.
func isMapped(_ address: UnsafeMutableRawPointer, _ length: Int) -> Bool {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = UInt(bitPattern: address) / UInt(page) * UInt(page)
    return msync(UnsafeMutableRawPointer(bitPattern: start), length + Int(UInt(bitPattern: address) - start), MS_ASYNC) == 0
}

/// Whether `address` lies in a file-backed mapping of this process.
func isFileBacked(_ address: UnsafeMutableRawPointer) -> Bool {
    let target = UInt(bitPattern: address)
    for line in readTextFile("/proc/self/maps").split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
        guard bounds.count == 2, bounds[0] <= target, target < bounds[1] else { continue }
        return fields.count >= 6 && fields[5].hasPrefix("/")
    }
    return false
}
