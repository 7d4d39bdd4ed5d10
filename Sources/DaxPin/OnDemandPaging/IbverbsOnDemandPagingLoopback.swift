import CIbverbs
import Glibc

/// The real loopback of the On-Demand Paging check on a libibverbs device: two RC queue pairs
/// connected to each other, a scratch target of the kind being pinned (``OnDemandPagingTarget``)
/// mapped shared, left untouched and registered with `IBV_ACCESS_ON_DEMAND`, and a pinned
/// anonymous local buffer.
final class IbverbsOnDemandPagingLoopback: OnDemandPagingLoopback {
    let pathMTU: Int
    let local: UnsafeMutableRawBufferPointer
    var target: UnsafeMutableRawBufferPointer { scratch.bytes }
    var invalidationKeepsContents: Bool { scratch.invalidationKeepsContents }
    /// Released after deinit has deregistered it.
    private let scratch: OnDemandPagingScratch
    private let provider: IbverbsProvider
    private var targetRegistration: Registration?
    private var localRegistration: Registration?
    private var requester: QueuePair?
    private var responder: QueuePair?

    /// Builds the loopback with `length`-byte buffers; every step's failure is a typed error.
    init(provider: IbverbsProvider, length: Int, target kind: OnDemandPagingTarget) throws(DaxPinError) {
        self.provider = provider
        let scratch = try OnDemandPagingScratch(kind, length: length)
        let anonymous: UnsafeMutableRawPointer
        do throws(Errno) { anonymous = try Syscalls.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0) } catch {
            throw .systemCall(operation: "mmap", path: "anonymous memory", errno: error)
        }
        self.scratch = scratch
        local = UnsafeMutableRawBufferPointer(start: anonymous, count: length)
        pathMTU = provider.pathMTU
        // From here deinit undoes whatever was made.
        switch provider.register(address: scratch.bytes.baseAddress!, length: length, access: [.localWrite, .remoteWrite, .remoteRead], onDemand: true) {
        case .success(let registration): targetRegistration = registration
        case .failure(let code): throw .deviceFailure(device: provider.name, operation: "ibv_reg_mr(IBV_ACCESS_ON_DEMAND)", errno: code)
        }
        switch provider.register(address: anonymous, length: length, access: [.localWrite], onDemand: false) {
        case .success(let registration): localRegistration = registration
        case .failure(let code): throw .deviceFailure(device: provider.name, operation: "ibv_reg_mr", errno: code)
        }
        let device = RDMADevice(provider: provider)
        let requester = try QueuePair(device: device, depth: 4)
        self.requester = requester
        let responder = try QueuePair(device: device, depth: 4)
        self.responder = responder
        try requester.connect(to: responder.endpoint)
        try responder.connect(to: requester.endpoint)
    }

    func invalidate() -> Result<Void, DaxPinError> { scratch.invalidate() }

    /// Queue pairs first, then registrations, then mappings (the scratch target's as it is
    /// released): the dependency order.
    deinit {
        requester?.moveToError()
        responder?.moveToError()
        requester = nil
        responder = nil
        if let targetRegistration { _ = provider.deregister(targetRegistration) }
        if let localRegistration { _ = provider.deregister(localRegistration) }
        if let base = local.baseAddress { try? Syscalls.munmap(base, local.count) }
    }

    func write(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError> {
        transfer(offset: offset, length: length) { qp, buffer, remote throws(DaxPinError) in
            try qp.write(buffer, to: remote, offset: offset, timeout: .seconds(5))
        }
    }

    func read(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError> {
        transfer(offset: offset, length: length) { qp, buffer, remote throws(DaxPinError) in
            try qp.read(into: buffer, from: remote, offset: offset, timeout: .seconds(5))
        }
    }

    private func transfer(offset: Int, length: Int,
                          _ post: (QueuePair, QueuePair.LocalBuffer, MemoryRegion.RemoteAccess) throws(DaxPinError) -> QueuePair.Completion)
        -> Result<QueuePair.Completion, DaxPinError> {
        guard let requester, let targetRegistration, let localRegistration else {
            return .failure(.deviceFailure(device: provider.name, operation: "ODP check", errno: .badFileDescriptor))
        }
        let buffer = QueuePair.LocalBuffer(address: localRegistration.address + UInt64(offset), length: length,
                                           localKey: localRegistration.localKey)
        let remote = MemoryRegion.RemoteAccess(address: targetRegistration.address, length: targetRegistration.length,
                                               rkey: targetRegistration.remoteKey)
        do throws(DaxPinError) {
            return .success(try post(requester, buffer, remote))
        } catch {
            return .failure(error)
        }
    }
}
