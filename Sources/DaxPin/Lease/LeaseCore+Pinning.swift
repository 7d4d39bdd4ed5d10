import CLease
import Dispatch
import Glibc
import Logging
import Synchronization
import SystemPackage

// Pinning: map (into the lease's reservation), populate, choose the strategy, register.
extension LeaseCore {
    /// Maps, populates and registers a range; returns the new region's id. Counts the pin, or
    /// the refusal by its reason, in the metrics.
    func pin(offset: Int, length: Int?, device: RDMADevice, policy: StrategyPolicy,
             remoteAtomics: Bool, remoteFlush: Bool) throws(DaxPinError) -> Int {
        do {
            let (id, strategy) = try mapAndRegister(offset: offset, length: length, device: device, policy: policy,
                                                    remoteAtomics: remoteAtomics, remoteFlush: remoteFlush)
            LeaseMetrics.pinned(device: device.name, memory: memory, strategy: strategy)
            return id
        } catch {
            LeaseMetrics.refused(device: device.name, memory: memory, error: error)
            throw error
        }
    }

    private func mapAndRegister(offset: Int, length requested: Int?, device: RDMADevice, policy: StrategyPolicy,
                                remoteAtomics: Bool, remoteFlush: Bool) throws(DaxPinError) -> (id: Int, strategy: Strategy) {
        guard case .held = phase else { throw .revoked(path: path) }
        if remoteFlush {
            guard access == .readWrite else {
                throw .featureUnavailable(feature: "RDMA FLUSH", reason: "\(path) is leased read-only, and a FLUSH makes peers' WRITEs durable: lease it read-write")
            }
            if let refusal = RDMABuildFeatures.current.flushRefusal { throw refusal }
        }
        // Files can grow or shrink, so their size is read per pin; a device's is fixed.
        let size: Int
        if let deviceSize {
            size = deviceSize
        } else if fd >= 0 {
            size = try MemoryProbe.size(of: FileDescriptor(rawValue: fd), kind: memory, path: path)
        } else {
            size = Int.max
        }
        let length = requested ?? (fd >= 0 ? size - offset : 0)
        func invalid(_ problem: DaxPinError.RangeProblem) -> DaxPinError {
            .invalidRange(path: path, offset: offset, length: length, problem: problem)
        }
        guard offset >= 0, length >= 0 else { throw invalid(.negative) }
        guard length > 0 else { throw invalid(.zeroLength) }
        let alignment = memory.mappingAlignment
        if offset % alignment != 0 { throw invalid(.misaligned(alignment: alignment)) }
        if case .deviceDAX = memory, length % alignment != 0 { throw invalid(.misaligned(alignment: alignment)) }
        guard offset <= size - length else { throw invalid(.beyondEnd(size: size)) }

        let mappedLength = (length + alignment - 1) / alignment * alignment
        let protection = access == .readOnly ? PROT_READ : PROT_READ | PROT_WRITE
        let flags: Int32 = switch memory {
        case .anonymous: MAP_PRIVATE | MAP_ANONYMOUS
        case .fsDAX: Int32(DAXPIN_MAP_SHARED_VALIDATE) | Int32(DAXPIN_MAP_SYNC)
        default: MAP_SHARED
        }
        // Optionals, so that the lock's closures below can take them over (a closure cannot consume
        // what it captures); whatever is left when the pin throws is released as it goes out of scope.
        let mapped = try map(offset: offset, mappedLength: mappedLength, protection: protection, flags: flags,
                             size: size, alignment: alignment)
        let (base, reserved) = (mapped.base, mapped.isReserved)
        var mapping: Mapping? = .some(mapped)
        Interleavings.reached(.pinMapped)
        // ODP is used only once the device has passed DaxPin's check on this kind of memory, in
        // the pinned file's file system (cached). A plan that cannot use ODP never reads the
        // verdict, so it does not pay for the check.
        let onDemandPaging: OnDemandPagingVerdict = StrategyPlan.considersOnDemandPaging(memory: memory, policy: policy)
            ? device.onDemandPaging(for: access, memory: memory, directory: Self.directory(of: path),
                                    remoteAtomics: remoteAtomics, remoteFlush: remoteFlush)
            : .notOffered
        let plan = StrategyPlan(memory: memory, onDemandPaging: onDemandPaging, policy: policy)

        // Outside the lease lock. Device-dax is not populated: the registration's long-term pin
        // faults its huge pages in itself, writable, in one pass, while a populate maps them
        // read-only first and the pin then faults each again for write. Nor is a range that
        // goes to On-Demand Paging first: the NIC faults in what it touches (and the prefetch
        // what it can), which is what makes an ODP registration cheap.
        if case .deviceDAX = memory {} else if plan.candidates.first != .onDemandPaging {
            let privateWritable = flags & MAP_PRIVATE != 0 && protection & PROT_WRITE != 0
            Populate.range(base, length: mappedLength, write: privateWritable, alignment: alignment)
        }
        Interleavings.reached(.pinPopulated)
        let flagsWanted = RegistrationAccess.narrowest(for: access, remoteAtomics: remoteAtomics, remoteFlush: remoteFlush)
        var attempts: [RegistrationRefusal.Attempt] = []
        var chosen: Strategy?
        var registration: MemoryRegistration?
        for strategy in plan.candidates where chosen == nil {
            switch strategy {
            case .pinned, .onDemandPaging:
                let onDemand = strategy == .onDemandPaging
                switch device.provider.register(address: base, length: length, access: flagsWanted, onDemand: onDemand) {
                case .success(let registered):
                    if onDemand, options.prefetchOnDemandPaging,
                       let code = device.provider.prefetch(registered, writable: access == .readWrite) {
                        options.logger.notice("ODP prefetch failed; pages fault in on first access", metadata: ["errno": "\(code)"])
                    }
                    chosen = strategy
                    registration = MemoryRegistration(registered, on: device, mapping: mapping.take()!, staging: nil)
                case .failure(let code):
                    attempts.append(.init(strategy: strategy, errno: code, reason: explain(strategy, code, memory, remoteFlush: remoteFlush)))
                }
            case .staged where remoteFlush:
                attempts.append(.init(strategy: .staged, errno: nil,
                                      reason: "a staged region is a copy: an RDMA FLUSH to it would make nothing in \(path) durable"))
            case .staged:
                guard case .success(let bounce) = Mapping.map(length: mappedLength, protection: PROT_READ | PROT_WRITE,
                                                              flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, fd: -1, offset: 0) else {
                    attempts.append(.init(strategy: .staged, errno: .noMemory, reason: "no memory for the bounce buffer"))
                    continue
                }
                bounce.base.copyMemory(from: base, byteCount: length)
                switch device.provider.register(address: bounce.base, length: length, access: flagsWanted.union(.localWrite), onDemand: false) {
                case .success(let registered):
                    chosen = .staged
                    registration = MemoryRegistration(registered, on: device, mapping: mapping.take()!, staging: bounce)
                case .failure(let code):
                    // The bounce buffer is unmapped as it goes out of scope.
                    attempts.append(.init(strategy: .staged, errno: code, reason: explain(.staged, code, memory)))
                }
            }
        }
        if chosen != nil { Interleavings.reached(.pinRegistered) }
        guard let strategy = chosen else {
            state.withLock { $0.reservation.discard(mapping.take()!, regionsLeft: !$0.regions.isEmpty) }
            attempts += plan.skipped.map { .init(strategy: $0.strategy, errno: nil, reason: $0.reason) }
            throw .registrationRefused(RegistrationRefusal(
                path: path, memory: memory, device: device.name, attempts: attempts,
                advice: (remoteFlush ? ["pin without remoteFlush and make writes durable another way (msync by the process that owns the file)"] : [])
                    + StrategyPlan.advice(memory: memory, onDemandPaging: onDemandPaging, policy: policy)))
        }
        let id: Int? = state.withLock { s in
            guard case .held = s.phase else { return nil }  // the discard below ends the flight
            if reserved { s.reservation.landed() }
            let id = s.nextRegionID
            s.nextRegionID += 1
            s.regions.add(OwnedRegion(id: id, offset: offset, length: length, strategy: strategy,
                                      registration: registration.take()!, flushIsDurable: memory.isPersistentMemory))
            return id
        }
        guard let id else {
            // Revoked while we were registering: undo in order (deregister, then unmap), then report.
            var undone = registration.take()!
            _ = undone.deregister()
            undone.takeStaging()?.unmap()
            var mapped = undone.takeMapping()
            state.withLock { $0.reservation.discard(mapped.take()!, regionsLeft: !$0.regions.isEmpty) }
            throw .revoked(path: path)
        }
        if strategy == .staged { hasStagedRegions.store(true, ordering: .relaxed) }
        publishToRegistry()
        options.logger.debug("pinned", metadata: ["path": "\(path)", "region": "\(id)", "strategy": "\(strategy)"])
        return (id, strategy)
    }

    /// Maps a region under the lease lock, so that a teardown cannot remove the reservation or
    /// close the descriptor meanwhile; unpopulated (the caller populates after), so the lock is
    /// held only for the mapping. A file-backed lease's region goes over its reservation (made
    /// here at the first pin) when it can, and the pin is then in flight until it adds its region
    /// or discards the mapping; otherwise (no reservation, or `MAP_FIXED` failed) it is mapped
    /// on its own.
    private func map(offset: Int, mappedLength: Int, protection: Int32, flags: Int32,
                     size: Int, alignment: Int) throws(DaxPinError) -> Mapping {
        let mapped = try state.withLock { (s: inout State) throws(DaxPinError) -> Result<Mapping, Errno> in
            guard case .held = s.phase else { throw .revoked(path: path) }
            if fd >= 0 {
                let capacity = (size + alignment - 1) / alignment * alignment
                let base = memory.isPersistentMemory ? max(alignment, AddressReservation.hugePage) : alignment
                if case .success(let placed)? = s.reservation.map(capacity: capacity, alignment: base, length: mappedLength,
                                                                   protection: protection, flags: flags, fd: fd, offset: offset) {
                    return .success(placed)
                }
            }
            return Mapping.map(length: mappedLength, protection: protection, flags: flags, fd: fd, offset: offset)
        }
        switch consume mapped {
        case .success(let mapping): return mapping
        case .failure(let code): throw .systemCall(operation: "mmap", path: path, errno: code)
        }
    }

    /// The directory holding `path` (a lease's path is the file's, as opened).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private func explain(_ strategy: Strategy, _ code: Errno, _ memory: MemoryKind, remoteFlush: Bool = false) -> String {
        if remoteFlush, code == .invalidArgument {
            // The kernel answers EINVAL both for FLUSH on memory that is not persistent and for a
            // device or kernel without FLUSH; the memory kind tells which.
            return memory.isPersistentMemory
                ? "the device or kernel does not offer RDMA FLUSH to persistent memory (IBV_ACCESS_FLUSH_PERSISTENT; rxe has it from Linux 6.2): pin without remoteFlush and make writes durable another way"
                : "the kernel accepts RDMA FLUSH to persistence (IBV_ACCESS_FLUSH_PERSISTENT) only on persistent memory, and this is \(memory): pin without remoteFlush and make writes durable another way (msync on the server)"
        }
        if let known = KernelBehaviour.running.refusal(of: strategy, memory: memory, access: access),
           known.errno == code.rawValue {
            return known.reason
        }
        switch (strategy, code) {
        case (_, .noMemory), (_, .resourceTemporarilyUnavailable), (_, .notPermitted):
            // rxe on 6.1 answers EPERM, other drivers ENOMEM, when the pin exceeds the limit.
            return "the locked-memory limit (RLIMIT_MEMLOCK, `ulimit -l`) is too small for a process without CAP_IPC_LOCK, or memory is short"
        case (.onDemandPaging, _):
            return "the device rejected an On-Demand Paging registration"
        default:
            return "the kernel refused the registration"
        }
    }
}
