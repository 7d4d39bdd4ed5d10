import CIbverbs
import CLease
import Glibc
import SystemPackage

/// The libibverbs implementation of `VerbsProvider`: one opened device context and one
/// protection domain, released when the last `RDMADevice` reference goes away.
final class IbverbsProvider: VerbsProvider, @unchecked Sendable {
    // The context and PD are immutable after init and libibverbs calls on them are thread-safe.
    let name: String
    let capabilities: DeviceCapabilities
    let context: UnsafeMutablePointer<ibv_context>
    let pd: UnsafeMutablePointer<ibv_pd>
    /// False when the context belongs to librdmacm (an rdma_cm id's `verbs`): only the PD is ours.
    private let ownsContext: Bool

    /// Device names in libibverbs order.
    static func deviceNames() -> [String] {
        var count: Int32 = 0
        guard let list = try? VerbsCalls.ibv_get_device_list(&count) else { return [] }
        defer { VerbsCalls.ibv_free_device_list(list) }
        return (0..<Int(count)).compactMap { list[$0].map { String(cString: VerbsCalls.ibv_get_device_name($0)) } }
    }

    /// Opens `name`, or the first device when nil.
    init(named requested: String?) throws(DaxPinError) {
        var count: Int32 = 0
        guard let list = try? VerbsCalls.ibv_get_device_list(&count) else {
            throw requested.map { .unknownDevice(name: $0, available: []) } ?? .noRDMADevice
        }
        defer { VerbsCalls.ibv_free_device_list(list) }
        let devices = (0..<Int(count)).compactMap { list[$0] }
        let names = devices.map { String(cString: VerbsCalls.ibv_get_device_name($0)) }
        if names.isEmpty, requested == nil { throw .noRDMADevice }
        guard let index = requested.map({ names.firstIndex(of: $0) }) ?? 0 else {
            throw .unknownDevice(name: requested ?? "", available: names)
        }
        let name = names[index]
        let context: UnsafeMutablePointer<ibv_context>
        do throws(Errno) { context = try VerbsCalls.ibv_open_device(devices[index]) } catch {
            throw .deviceFailure(device: name, operation: "ibv_open_device", errno: error)
        }
        let pd: UnsafeMutablePointer<ibv_pd>
        do throws(Errno) { pd = try VerbsCalls.ibv_alloc_pd(context) } catch {
            VerbsCalls.ibv_close_device(context)
            throw .deviceFailure(device: name, operation: "ibv_alloc_pd", errno: error)
        }
        self.name = name
        self.context = context
        self.pd = pd
        self.ownsContext = true
        self.capabilities = Self.query(context)
        Self.guardFromFork(context)
    }

    /// Adopts a context opened by someone else (librdmacm opens one per device and process,
    /// `rdma_cm_id.verbs`) and allocates a protection domain on it. librdmacm keeps its contexts
    /// open until the process exits (destroying its last id only frees librdmacm's own PD), so
    /// this PD may outlive the ids.
    init(adopting context: UnsafeMutablePointer<ibv_context>) throws(DaxPinError) {
        let name = String(cString: VerbsCalls.ibv_get_device_name(context.pointee.device))
        let pd: UnsafeMutablePointer<ibv_pd>
        do throws(Errno) { pd = try VerbsCalls.ibv_alloc_pd(context) } catch {
            throw .deviceFailure(device: name, operation: "ibv_alloc_pd", errno: error)
        }
        self.name = name
        self.context = context
        self.pd = pd
        self.ownsContext = false
        self.capabilities = Self.query(context)
        Self.guardFromFork(context)  // librdmacm keeps its contexts open until exit: never removed
    }

    /// A child forked without exec must not keep this context's uverbs descriptors: they would
    /// keep the context, and every MR on it, alive after this process is gone. They are closed
    /// in the child at fork.
    private static func guardFromFork(_ context: UnsafeMutablePointer<ibv_context>) {
        daxpin_fork_guard_add(context.pointee.cmd_fd)
        daxpin_fork_guard_add(context.pointee.async_fd)
    }

    deinit {
        VerbsCalls.ibv_dealloc_pd(pd)
        if ownsContext {
            let (command, async) = (context.pointee.cmd_fd, context.pointee.async_fd)
            VerbsCalls.ibv_close_device(context)
            daxpin_fork_guard_remove(command)
            daxpin_fork_guard_remove(async)
        }
    }

    private static func query(_ context: UnsafeMutablePointer<ibv_context>) -> DeviceCapabilities {
        var attr = ibv_device_attr_ex()
        guard (try? VerbsCalls.ibv_query_device_ex(context, &attr)) != nil else {
            var basic = ibv_device_attr()
            guard (try? VerbsCalls.ibv_query_device(context, &basic)) != nil else { return DeviceCapabilities() }
            return DeviceCapabilities(maxMRSize: basic.max_mr_size, maxMRCount: Int(basic.max_mr))
        }
        func support(_ bits: UInt32) -> DeviceCapabilities.ODPSupport {
            .init(send: bits & IBV_ODP_SUPPORT_SEND.rawValue != 0,
                  receive: bits & IBV_ODP_SUPPORT_RECV.rawValue != 0,
                  write: bits & IBV_ODP_SUPPORT_WRITE.rawValue != 0,
                  read: bits & IBV_ODP_SUPPORT_READ.rawValue != 0,
                  atomic: bits & IBV_ODP_SUPPORT_ATOMIC.rawValue != 0)
        }
        let odp = attr.odp_caps
        return DeviceCapabilities(
            odp: odp.general_caps & UInt64(IBV_ODP_SUPPORT.rawValue) != 0,
            odpRC: support(odp.per_transport_caps.rc_odp_caps),
            odpUC: support(odp.per_transport_caps.uc_odp_caps),
            odpUD: support(odp.per_transport_caps.ud_odp_caps),
            maxMRSize: attr.orig_attr.max_mr_size,
            maxMRCount: Int(attr.orig_attr.max_mr))
    }

    func register(address: UnsafeMutableRawPointer, length: Int, access: RegistrationAccess, onDemand: Bool) -> Result<Registration, Errno> {
        var flags = access.rawValue
        if onDemand { flags |= Int32(IBV_ACCESS_ON_DEMAND.rawValue) }
        let mr: UnsafeMutablePointer<ibv_mr>
        do throws(Errno) { mr = try VerbsCalls.ibv_reg_mr(pd, address, length, flags) } catch { return .failure(error) }
        return .success(Registration(
            token: UInt(bitPattern: mr), address: UInt64(UInt(bitPattern: mr.pointee.addr)),
            length: mr.pointee.length, localKey: mr.pointee.lkey, remoteKey: mr.pointee.rkey))
    }

    func deregister(_ registration: Registration) -> Errno? {
        guard let mr = UnsafeMutablePointer<ibv_mr>(bitPattern: registration.token) else { return .invalidArgument }
        do throws(Errno) { try VerbsCalls.ibv_dereg_mr(mr) } catch { return error }
        return nil
    }

    var verdictKey: String {
        "\(name) (node GUID \(String(VerbsCalls.ibv_get_device_guid(context.pointee.device), radix: 16)))"
    }

    /// The port's active MTU in bytes (`IBV_MTU_256` is 1, each step doubles), 1024 when the
    /// port cannot be queried.
    var pathMTU: Int {
        var attributes = ibv_port_attr()
        guard (try? VerbsCalls.ibv_query_port(context, 1, &attributes)) != nil, attributes.active_mtu.rawValue >= 1 else { return 1024 }
        return 128 << Int(attributes.active_mtu.rawValue)
    }

    func makeOnDemandPagingLoopback(length: Int, target: OnDemandPagingTarget) -> Result<any OnDemandPagingLoopback, DaxPinError> {
        do throws(DaxPinError) {
            return .success(try IbverbsOnDemandPagingLoopback(provider: self, length: length, target: target))
        } catch {
            return .failure(error)
        }
    }

    func prefetch(_ registration: Registration, writable: Bool) -> Errno? {
        var sge = ibv_sge(addr: registration.address, length: UInt32(clamping: registration.length), lkey: registration.localKey)
        let advice = writable ? IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE : IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH
        do throws(Errno) { try VerbsCalls.ibv_advise_mr(pd, advice, UInt32(IB_UVERBS_ADVISE_MR_FLAG_FLUSH.rawValue), &sge, 1) } catch { return error }
        return nil
    }
}
