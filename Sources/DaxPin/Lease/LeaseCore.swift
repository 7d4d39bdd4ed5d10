import CLease
import Dispatch
import Glibc
import Logging
import Synchronization
import SystemPackage

/// The state a lease shares with the watcher thread: its descriptor, its regions and the
/// teardown that both an application release and a kernel lease break run, in one order:
/// quiesce, stop queue pairs, deregister every MR, unmap every region, F_UNLCK, close.
final class LeaseCore: Sendable {
    let path: String
    let access: Access
    let memory: MemoryKind
    /// -1 for anonymous memory.
    let fd: Int32
    /// The size of a device-dax instance, read once (libdaxctl walks sysfs for it); nil for files.
    let deviceSize: Int?
    let options: LeaseOptions
    /// Whether `options` has a quiesce handler: read on the way to F_UNLCK, where copying the
    /// options (a logger, a closure) would cost reference counting.
    let hasQuiesce: Bool
    /// Unique within the process, for the pin registry.
    let serial: UInt64
    /// When the lease was taken (wall clock, for `daxpin ls`).
    let createdAt: timespec
    private static let serials = Atomic<UInt64>(0)
    /// Set with the `revoked` phase, before the registry withdraws the lease: the registry reads
    /// it (not the lease lock) to drop a snapshot that was taken before the revocation.
    let isRevoked = Atomic<Bool>(false)
    /// Left once when the teardown completes; later callers wait on it.
    private let finished = DispatchGroup()
    let state: Mutex<State>

    struct State {
        var phase: LeaseState = .held
        /// Set when deregistration starts; until then (during quiesce) regions stay usable,
        /// so a quiesce handler can still write back staged data.
        var accessClosed = false
        /// Byte-access closures running now. They run outside this lock (so they may call back
        /// into the lease); deregistering and unmapping wait until none runs.
        var accessors = 0
        /// Woken when `accessors` drops to zero.
        var accessDrainWaiters: [DispatchSemaphore] = []
        var kind: LeaseKind
        /// The F_SETLEASE type held, or -1 without a lease.
        var heldType: Int32 = -1
        var regions: [RegionResources] = []
        var nextRegionID = 1
        var trace = RevocationTrace()
        var listeners: [Int: AsyncStream<LeaseEvent>.Continuation] = [:]
        var nextListener = 0
        var stopHooks: [Int: @Sendable () -> Void] = [:]
        var nextHook = 0
        /// Address space the regions are mapped into (see AddressReservation); made at the
        /// first pin of a file-backed lease, removed by the teardown.
        var reservation: AddressReservation?
        var reservationTried = false
        /// A pin has mapped into the reservation and not yet added its region: a teardown
        /// meanwhile must keep the reservation (the pin's mapping lies in it) and leaves its
        /// removal to that pin.
        var pinInFlight = false
    }

    private init(path: String, access: Access, memory: MemoryKind, fd: Int32, kind: LeaseKind, options: LeaseOptions) {
        self.path = path
        self.access = access
        self.memory = memory
        self.fd = fd
        self.options = options
        self.hasQuiesce = options.quiesce != nil
        if case .deviceDAX = memory, fd >= 0 {
            self.deviceSize = try? MemoryProbe.size(of: FileDescriptor(rawValue: fd), kind: memory, path: path)
        } else {
            self.deviceSize = nil
        }
        self.serial = Self.serials.add(1, ordering: .relaxed).newValue
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        self.createdAt = now
        self.state = Mutex(State(kind: kind))
        finished.enter()
    }

    /// Opens `path`, classifies it and takes the strongest lease the kernel offers.
    static func acquire(path: String, access: Access, options: LeaseOptions) throws(DaxPinError) -> LeaseCore {
        let opened = try MemoryProbe.open(path, access: access)
        guard opened.kind.isLeasable else {
                let reason = "device-dax is a character device: it cannot be truncated, so no lease is needed"
            let core = LeaseCore(path: path, access: access, memory: opened.kind, fd: opened.fd.rawValue,
                                 kind: .none(reason: reason), options: options)
            core.publishToRegistry()
            return core
        }
        let core = LeaseCore(path: path, access: access, memory: opened.kind, fd: opened.fd.rawValue,
                             kind: .none(reason: "not yet taken"), options: options)
        do {
            try core.takeLease()
        } catch {
            try? opened.fd.close()
            core.state.withLock { $0.phase = .revoked(.released); $0.accessClosed = true }
            core.isRevoked.store(true, ordering: .releasing)
            core.finished.leave()
            throw error
        }
        core.publishToRegistry()
        return core
    }

    /// A lease-less core for anonymous memory.
    static func anonymous(options: LeaseOptions) -> LeaseCore {
        LeaseCore(path: "anonymous memory", access: .readWrite, memory: .anonymous, fd: -1,
                  kind: .none(reason: "anonymous memory has no file to truncate"), options: options)
    }

    /// Watch first, then F_SETSIG, F_SETLEASE and F_SETOWN_EX: F_SETLEASE resets the owner
    /// to the whole process, so the thread owner must be set after it.
    private func takeLease() throws(DaxPinError) {
        let watcher = LeaseWatcher.shared
        watcher.watch(fd, self)
        func fail(_ error: DaxPinError) -> DaxPinError {
            watcher.unwatch(fd, onWatcher: false)
            return error
        }
        guard Syscalls.setSignal(fd, watcher.signal) == 0 else {
            throw fail(.systemCall(operation: "fcntl(F_SETSIG)", path: path, errno: Errno(rawValue: errno)))
        }
        let attempts: [(Int32, LeaseKind)] = [
            (Int32(DAXPIN_F_LAYOUT), .layout),
            access == .readWrite ? (Int32(DAXPIN_F_WRLCK), .write) : (Int32(DAXPIN_F_RDLCK), .read),
        ]
        var granted: (Int32, LeaseKind)?
        for (type, kind) in attempts {
            if Syscalls.setLease(fd, type) == 0 {
                granted = (type, kind)
                break
            }
            let code = Errno(rawValue: errno)
            if type == Int32(DAXPIN_F_LAYOUT), code == .invalidArgument { continue }
            let lease = access == .readWrite ? "write" : "read"
            switch code {
            case .resourceTemporarilyUnavailable: throw fail(.fileInUse(path: path, lease: lease))
            case .permissionDenied, .notPermitted: throw fail(.permissionDenied(path: path, errno: code))
            default: throw fail(.leaseUnavailable(path: path, errno: code))
            }
        }
        guard let (type, kind) = granted else {
            throw fail(.leaseUnavailable(path: path, errno: .invalidArgument))
        }
        state.withLock { $0.kind = kind; $0.heldType = type }
        guard Syscalls.setOwnerThread(fd, watcher.threadID) == 0 else {
            let code = Errno(rawValue: errno)
            Syscalls.setLease(fd, Int32(DAXPIN_F_UNLCK))
            throw fail(.systemCall(operation: "fcntl(F_SETOWN_EX)", path: path, errno: code))
        }
        // A break before F_SETOWN_EX signalled the whole process; if the watcher took that
        // signal before the lease was recorded above, it passed it over. Hand it over again.
        if kernelIsBreaking() { _ = daxpin_queue_signal(watcher.threadID, watcher.signal, fd) }
        options.logger.debug("lease taken", metadata: ["path": "\(path)", "lease": "\(kind)"])
    }

    /// Whether the kernel is breaking our lease: F_GETLEASE reports the type the lease is
    /// being downgraded to while a break is pending. Filters stale or foreign signals.
    func kernelIsBreaking() -> Bool {
        let held = state.withLock { $0.heldType }
        guard held >= 0 else { return false }
        return Syscalls.getLease(fd) != held
    }

    var phase: LeaseState { state.withLock { $0.phase } }

    /// Pushes what `daxpin ls` shows of this lease to the pin registry (a snapshot taken under
    /// this lease's lock; the registry never takes it).
    func publishToRegistry() {
        let (phase, kind, regions) = state.withLock { ($0.phase, $0.kind, $0.regions) }
        PinRegistry.shared.publish(self, phase: phase, kind: kind, regions: regions)
    }
    var kind: LeaseKind { state.withLock { $0.kind } }
    var trace: RevocationTrace { state.withLock { $0.trace } }

    // MARK: Pinning

    /// Maps, populates and registers a range; returns the new region's id.
    func pin(offset: Int, length requested: Int?, device: RDMADevice, policy: StrategyPolicy,
             remoteAtomics: Bool) throws(DaxPinError) -> Int {
        guard case .held = phase else { throw .revoked(path: path) }
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
        let mapping: Mapping
        let reserved: Bool
        if let placed = mapIntoReservation(offset: offset, mappedLength: mappedLength, protection: protection,
                                           flags: flags, size: size, alignment: alignment),
           case .success(let mapped) = placed {
            mapping = mapped
            reserved = true
        } else {
            switch Mapping.map(length: mappedLength, protection: protection, flags: flags, fd: fd, offset: offset) {
            case .success(let mapped): mapping = mapped
            case .failure(let code): throw .systemCall(operation: "mmap", path: path, errno: code)
            }
            reserved = false
        }
        // ODP is used only once the device has passed DaxPin's check (cached per device).
        let onDemandPaging: OnDemandPagingVerdict = StrategyPlan.considersOnDemandPaging(memory: memory, policy: policy)
            ? device.onDemandPaging(for: access) : (device.capabilities.odpUsable(for: access) ? .verified : .notOffered)
        let plan = StrategyPlan(memory: memory, onDemandPaging: onDemandPaging, policy: policy)

        // Outside the lease lock. Device-dax is not populated: the registration's long-term pin
        // faults its huge pages in itself, writable, in one pass, while a populate maps them
        // read-only first and the pin then faults each again for write. Nor is a range that
        // goes to On-Demand Paging first: the NIC faults in what it touches (and the prefetch
        // what it can), which is what makes an ODP registration cheap.
        if case .deviceDAX = memory {} else if plan.candidates.first != .onDemandPaging {
            let privateWritable = flags & MAP_PRIVATE != 0 && protection & PROT_WRITE != 0
            Populate.range(mapping.base, length: mappedLength, write: privateWritable, alignment: alignment)
        }
        let flagsWanted = RegistrationAccess.narrowest(for: access, remoteAtomics: remoteAtomics)
        var attempts: [RegistrationRefusal.Attempt] = []
        var chosen: (Strategy, Registration, UnsafeMutableRawPointer)?
        for strategy in plan.candidates where chosen == nil {
            switch strategy {
            case .pinned, .onDemandPaging:
                let onDemand = strategy == .onDemandPaging
                switch device.provider.register(address: mapping.base, length: length, access: flagsWanted, onDemand: onDemand) {
                case .success(let registration):
                    if onDemand, let code = device.provider.prefetch(registration, writable: access == .readWrite) {
                        options.logger.notice("ODP prefetch failed; pages fault in on first access", metadata: ["errno": "\(code)"])
                    }
                    chosen = (strategy, registration, mapping.base)
                case .failure(let code):
                    attempts.append(.init(strategy: strategy, errno: code, reason: explain(strategy, code, memory)))
                }
            case .staged:
                guard case .success(let bounce) = Mapping.map(length: mappedLength, protection: PROT_READ | PROT_WRITE,
                                                              flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, fd: -1, offset: 0) else {
                    attempts.append(.init(strategy: .staged, errno: .noMemory, reason: "no memory for the bounce buffer"))
                    continue
                }
                bounce.base.copyMemory(from: mapping.base, byteCount: length)
                switch device.provider.register(address: bounce.base, length: length, access: flagsWanted.union(.localWrite), onDemand: false) {
                case .success(let registration):
                    chosen = (.staged, registration, bounce.base)
                case .failure(let code):
                    bounce.unmap()
                    attempts.append(.init(strategy: .staged, errno: code, reason: explain(.staged, code, memory)))
                }
            }
        }
        guard let (strategy, registration, registered) = chosen else {
            discard(mapping, reserved: reserved)
            attempts += plan.skipped.map { .init(strategy: $0.strategy, errno: nil, reason: $0.reason) }
            throw .registrationRefused(RegistrationRefusal(
                path: path, memory: memory, device: device.name, attempts: attempts,
                advice: StrategyPlan.advice(memory: memory, onDemandPaging: onDemandPaging, policy: policy)))
        }
        let resources = RegionResources(
            id: 0, offset: offset, length: length, strategy: strategy, mapping: mapping.base,
            mappedLength: mappedLength, registered: registered, registration: registration,
            flushIsDurable: memory.isPersistentMemory, device: device)
        let id: Int? = state.withLock { s in
            if reserved { s.pinInFlight = false }
            guard case .held = s.phase else { return nil }
            let id = s.nextRegionID
            s.nextRegionID += 1
            s.regions.append(resources.with(id: id))
            return id
        }
        guard let id else {
            // Revoked while we were registering: undo in order, then report.
            _ = Self.deregister(resources)
            resources.unmapStagingBuffer()
            discard(mapping, reserved: reserved, pinStillInFlight: false)
            throw .revoked(path: path)
        }
        publishToRegistry()
        options.logger.debug("pinned", metadata: ["path": "\(path)", "region": "\(id)", "strategy": "\(strategy)"])
        return id
    }

    /// Maps a region over the lease's reservation (made here at the first pin of a file-backed
    /// lease), under the lease lock so that a teardown cannot remove the reservation meanwhile;
    /// unpopulated (the caller populates after), so the lock is held only for the mapping. Nil
    /// when the region is mapped the ordinary way (no reservation, outside it, or the lease is revoked);
    /// on success the pin is in flight until it adds its region or discards the mapping.
    private func mapIntoReservation(offset: Int, mappedLength: Int, protection: Int32, flags: Int32,
                                    size: Int, alignment: Int) -> Result<Mapping, Errno>? {
        guard fd >= 0 else { return nil }
        return state.withLock { s -> Result<Mapping, Errno>? in
            guard case .held = s.phase else { return nil }
            if s.reservation == nil, !s.reservationTried {
                s.reservationTried = true
                let capacity = (size + alignment - 1) / alignment * alignment
                let base = memory.isPersistentMemory ? max(alignment, AddressReservation.hugePage) : alignment
                s.reservation = AddressReservation.make(capacity: capacity, alignment: base)
            }
            guard var reservation = s.reservation else { return nil }
            let result = reservation.map(length: mappedLength, protection: protection, flags: flags, fd: fd, offset: offset)
            s.reservation = reservation
            if case .success = result { s.pinInFlight = true }
            return result
        }
    }

    /// Undoes a failed pin's mapping. One in the reservation is given back to it, or, when a
    /// teardown ran meanwhile (it left the reservation to this pin), removed with the whole
    /// reservation.
    private func discard(_ mapping: Mapping, reserved: Bool, pinStillInFlight: Bool = true) {
        guard reserved else { return mapping.unmap() }
        state.withLock { s in
            if pinStillInFlight { s.pinInFlight = false }
            guard var reservation = s.reservation else { return }
            if reservation.intact, s.regions.isEmpty {
                // Nothing else lives in it (revoked meanwhile, or the lease's first pin failed):
                // a failed pin leaves no mapping behind. A later pin reserves again.
                reservation.unmapAll(regionsInside: 1)
                s.reservation = nil
                s.reservationTried = false
            } else {
                reservation.giveBack(mapping)
                s.reservation = reservation
            }
        }
    }

    private func explain(_ strategy: Strategy, _ code: Errno, _ memory: MemoryKind) -> String {
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

    /// Runs `body` on a region's resources as a byte access: revocation and `unpin` wait for it
    /// before they deregister or unmap, and no access starts once revocation has begun (it
    /// throws `.revoked`). The lease lock is not held while `body` runs, so `body` may call
    /// back into the lease.
    func access<R>(_ id: Int, _ body: (RegionResources) throws -> R) throws -> R {
        let region = try state.withLock { (s: inout State) throws(DaxPinError) -> RegionResources in
            guard !s.accessClosed else { throw .revoked(path: path) }
            guard let region = s.regions.first(where: { $0.id == id }) else {
                throw .regionNotFound(path: path, region: id)
            }
            s.accessors += 1
            return region
        }
        defer { endAccess() }
        return try body(region)
    }

    private func endAccess() {
        let waiters: [DispatchSemaphore] = state.withLock { s in
            s.accessors -= 1
            guard s.accessors == 0, !s.accessDrainWaiters.isEmpty else { return [] }
            defer { s.accessDrainWaiters.removeAll() }
            return s.accessDrainWaiters
        }
        for waiter in waiters { waiter.signal() }
    }

    /// Waits until no byte access runs (outside the lock: an access may need it). With
    /// `closing`, none can start any more, so none runs afterwards; without, the caller must
    /// check `accessors` again under the lock.
    private func drainAccess(closing: Bool) {
        while let waiter = state.withLock({ s -> DispatchSemaphore? in
            if closing { s.accessClosed = true }
            guard s.accessors > 0 else { return nil }
            let waiter = DispatchSemaphore(value: 0)
            s.accessDrainWaiters.append(waiter)
            return waiter
        }) {
            waiter.wait()
        }
    }

    /// Tears down one region: deregister, then unmap.
    func unpin(_ id: Int) throws(DaxPinError) {
        while true {
            drainAccess(closing: false)
            let outcome: Result<Bool, DaxPinError> = state.withLock { s in
                guard case .held = s.phase else { return .failure(.revoked(path: path)) }
                guard let index = s.regions.firstIndex(where: { $0.id == id }) else {
                    return .failure(.regionNotFound(path: path, region: id))
                }
                guard s.accessors == 0 else { return .success(false) }  // one started meanwhile
                let region = s.regions.remove(at: index)
                if let code = Self.deregister(region) {
                    s.trace.record(.deregistrationFailed(region: id, errno: code.rawValue))
                } else {
                    s.trace.record(.deregistered(region: id))
                }
                Self.unmap(region, reservation: &s.reservation)
                s.trace.record(.unmapped(region: id))
                return .success(true)
            }
            if try outcome.get() { break }
        }
        publishToRegistry()
    }

    /// Registers work to run after quiesce and before deregistration (for example moving
    /// queue pairs to the error state). Returns a token for `detach`.
    func attach(_ stop: @escaping @Sendable () -> Void) -> Int {
        state.withLock { s in
            s.nextHook += 1
            s.stopHooks[s.nextHook] = stop
            return s.nextHook
        }
    }

    func detach(_ token: Int) {
        _ = state.withLock { $0.stopHooks.removeValue(forKey: token) }
    }

    // MARK: Teardown

    /// Revokes everything under the lease in dependency order. Idempotent: a second caller
    /// waits for the first teardown to finish (unless `onWatcher`: the watcher thread must
    /// never block) and returns its trace.
    /// With `requireLease` (a break signal trusted without F_GETLEASE) it does nothing, and
    /// does not wait, unless a kernel lease is held.
    @discardableResult
    func revoke(reason: RevocationReason, onWatcher: Bool = false, requireLease: Bool = false) -> RevocationTrace {
        // Nothing that wakes another thread before the teardown (each wake-up competes with it
        // for a CPU): without a quiesce handler the events, the log line and the registry wait
        // until the breaker is released. A quiesce handler makes this a long revocation anyway.
        // Nor any allocation or other bookkeeping on the way to F_UNLCK: the breaker is blocked
        // until then. The steps' times are kept in locals and the trace is written after it
        // (a quiesce handler's steps go into the trace as they happen, so with one the break is
        // recorded first, as it happens).
        let noticedAt: Stamp? = reason == .leaseBreak ? .now() : nil
        let early = reason == .leaseBreak && hasQuiesce
        // The regions' bookkeeping is freed after F_UNLCK: the breaker waits for the lease, not for it.
        var retired: [RegionResources] = []
        // With nothing to run first (no quiesce handler, no queue pairs to stop) the teardown
        // starts under the lock that starts the revocation: from the signal to the first
        // ibv_dereg_mr the watcher takes one lock and runs as little code as it can (under the
        // emulated testbed every further page of code or data it touches costs microseconds).
        let start: RevocationStart = state.withLock { s in
            guard case .held = s.phase, !requireLease || s.heldType >= 0 else { return .notHeld }
            s.phase = .revoking(reason)
            s.trace.reason = reason
            if early, let noticedAt {
                Self.recordBreakNoticed(&s.trace, at: noticedAt)
                return .quiesceFirst(listeners: Array(s.listeners.values))
            }
            guard s.stopHooks.isEmpty, s.accessors == 0 else { return .stopFirst(hooks: Array(s.stopHooks.values)) }
            return .tornDown(Self.tearDown(&s, retiring: &retired))
        }
        var stopped: (count: Int, at: Stamp)?
        let teardown: Teardown
        switch start {
        case .notHeld:
            if !onWatcher, !requireLease { finished.wait() }
            return trace
        case .tornDown(let done):
            teardown = done
        case .stopFirst(let hooks):
            (stopped, teardown) = stopQueuePairsAndTearDown(hooks, retiring: &retired)
        case .quiesceFirst(let listeners):
            for listener in listeners { listener.yield(.breakNoticed(path: path)) }
            publishToRegistry()
            runQuiesceHandler()
            // Queue pairs attached while the handler ran are stopped too.
            let hooks = state.withLock { $0.stopHooks.isEmpty ? [] : Array($0.stopHooks.values) }
            (stopped, teardown) = stopQueuePairsAndTearDown(hooks, retiring: &retired)
        }
        var releasedAt: Stamp?
        var closedAt: Stamp?
        if fd >= 0 {
            if teardown.leased {
                Syscalls.setLease(fd, Int32(DAXPIN_F_UNLCK))
                releasedAt = .now()
                LeaseWatcher.shared.unwatch(fd, onWatcher: onWatcher)
            }
            Syscalls.close(fd)
            closedAt = .now()
        }
        return finishRevocation(reason: reason, early: early, onWatcher: onWatcher, retired: retired, times: TeardownTimes(
            noticed: noticedAt, stopped: stopped, deregistered: teardown.deregistered, unmapped: teardown.unmapped,
            released: releasedAt, closed: closedAt, failedDeregistrations: teardown.failed))
    }

    /// Runs the queue pairs' stop hooks (outside the lock), then tears down under it once no
    /// byte access runs. `stopped` is nil when there was no hook.
    private func stopQueuePairsAndTearDown(_ hooks: [@Sendable () -> Void], retiring retired: inout [RegionResources])
        -> (stopped: (count: Int, at: Stamp)?, teardown: Teardown) {
        var stopped: (count: Int, at: Stamp)?
        if !hooks.isEmpty {
            for stop in hooks { stop() }
            stopped = (hooks.count, .now())
        }
        drainAccess(closing: true)
        return (stopped, state.withLock { Self.tearDown(&$0, retiring: &retired) })
    }

    /// Records the break as the first step (the quiesce handler's steps follow as they happen).
    /// Not inlined: see `finishRevocation`.
    @inline(never)
    private static func recordBreakNoticed(_ trace: inout RevocationTrace, at noticed: Stamp) {
        trace.record(.breakNoticed, at: noticed.instant)
    }

    /// When each step of a teardown happened.
    private struct TeardownTimes {
        let noticed: Stamp?
        let stopped: (count: Int, at: Stamp)?
        let deregistered: Stamp
        let unmapped: Stamp
        let released: Stamp?
        let closed: Stamp?
        let failedDeregistrations: [(region: Int, errno: Int32)]
    }

    /// After `F_UNLCK`: writes the trace, tells the listeners, the registry and the log, and
    /// frees the regions' bookkeeping. A function of its own, never inlined: the clock types
    /// the trace holds are resilient, and with them in `revoke`'s frame their metadata was looked
    /// up on entry, before the teardown.
    @inline(never)
    private func finishRevocation(reason: RevocationReason, early: Bool, onWatcher: Bool, retired: [RegionResources],
                                  times: TeardownTimes) -> RevocationTrace {
        // The trace, in the order of the steps (the quiesce handler's are in it already).
        let anchor = Stamp.Anchor.now()
        state.withLock { s in
            s.trace.reserve(forRegions: retired.count)
            if !early, let noticed = times.noticed { s.trace.record(.breakNoticed, at: anchor.instant(of: noticed)) }
            if let stopped = times.stopped { s.trace.record(.queuePairsStopped(count: stopped.count), at: anchor.instant(of: stopped.at)) }
            let deregistered = anchor.instant(of: times.deregistered), unmapped = anchor.instant(of: times.unmapped)
            for region in retired where !times.failedDeregistrations.contains(where: { $0.region == region.id }) {
                s.trace.record(.deregistered(region: region.id), at: deregistered)
            }
            for failure in times.failedDeregistrations {
                s.trace.record(.deregistrationFailed(region: failure.region, errno: failure.errno), at: deregistered)
            }
            for region in retired { s.trace.record(.unmapped(region: region.id), at: unmapped) }
            if let released = times.released { s.trace.record(.leaseReleased, at: anchor.instant(of: released)) }
            if let closed = times.closed { s.trace.record(.closed, at: anchor.instant(of: closed)) }
        }
        withExtendedLifetime(retired) {}
        let (final, listeners): (RevocationTrace, [AsyncStream<LeaseEvent>.Continuation]) = state.withLock { s in
            s.phase = .revoked(reason)
            isRevoked.store(true, ordering: .releasing)
            defer { s.listeners.removeAll() }
            return (s.trace, Array(s.listeners.values))
        }
        for listener in listeners {
            if reason == .leaseBreak, !early { listener.yield(.breakNoticed(path: path)) }
            listener.yield(.revoked(final))
            listener.finish()
        }
        finished.leave()
        PinRegistry.shared.withdraw(self)
        let (logger, path) = (options.logger, path)
        let failures = times.failedDeregistrations
        RevocationLog.write(offThread: onWatcher) {
            for failure in failures {
                logger.error("ibv_dereg_mr failed during revocation; the region was unmapped and the lease released anyway",
                             metadata: ["path": "\(path)", "region": "\(failure.region)", "errno": "\(errnoText(failure.errno))"])
            }
            if reason == .leaseBreak {
                logger.notice("lease break: revoked", metadata: ["path": "\(path)", "duration": "\(final.duration)"])
            } else {
                logger.debug("revoked", metadata: ["path": "\(path)", "reason": "\(reason)", "steps": "\(final.steps.count)"])
            }
        }
        return final
    }

    /// Blocks until the teardown has finished, up to `timeout`; the trace, or nil on timeout.
    func waitUntilRevoked(timeout: Duration) -> RevocationTrace? {
        guard finished.wait(timeout: timeout.dispatchDeadline) == .success else { return nil }
        return trace
    }

    @inline(never)  // keeps its clock types out of revoke's frame (see finishRevocation)
    private func runQuiesceHandler() {
        guard let handler = options.quiesce else { return }
        let budget = options.effectiveQuiesceBudget
        let request = QuiesceRequest(path: path, deadline: .now + budget, budget: budget)
        state.withLock { $0.trace.record(.quiesceStarted) }
        let done = DispatchSemaphore(value: 0)
        // Its own thread, not a Dispatch worker: with the global pool full of the application's
        // work (it has as many threads as CPUs) the handler would wait out its budget unrun.
        let run: @Sendable () -> Void = {
            handler(request)
            done.signal()
        }
        if !DetachedThread.start(run) { DispatchQueue.global().async(execute: run) }
        if done.wait(timeout: budget.dispatchDeadline) == .success {
            state.withLock { $0.trace.record(.quiesceFinished) }
        } else {
            state.withLock { $0.trace.record(.quiesceOverran) }
            options.logger.warning("quiesce handler overran its budget; revoking anyway", metadata: ["path": "\(path)", "budget": "\(budget)"])
        }
    }

    /// How a revocation goes on once its lock has started it.
    private enum RevocationStart {
        /// Nothing held (already revoked or revoking, or no kernel lease where one was required).
        case notHeld
        /// The handler runs first (the break is recorded); these listeners hear of the break.
        case quiesceFirst(listeners: [AsyncStream<LeaseEvent>.Continuation])
        /// These queue-pair stop hooks run first.
        case stopFirst(hooks: [@Sendable () -> Void])
        /// Deregistered and unmapped already, under the same lock.
        case tornDown(Teardown)
    }

    /// When the regions were deregistered and unmapped, and whether a kernel lease is held.
    private struct Teardown {
        let leased: Bool
        let deregistered: Stamp
        let unmapped: Stamp
        /// Regions whose `ibv_dereg_mr` failed, with its errno.
        let failed: [(region: Int, errno: Int32)]
    }

    /// Closes access, deregisters every region, then unmaps them (under the lease lock); the
    /// regions move to `retired`, to be freed once the lease is released.
    private static func tearDown(_ s: inout State, retiring retired: inout [RegionResources]) -> Teardown {
        s.accessClosed = true
        var failed: [(region: Int, errno: Int32)] = []  // allocates only when a deregistration fails
        for region in s.regions {
            if let code = deregister(region) { failed.append((region.id, code.rawValue)) }
        }
        let deregistered = Stamp.now()
        unmapAll(&s)
        let unmapped = Stamp.now()
        swap(&retired, &s.regions)
        return Teardown(leased: s.heldType >= 0, deregistered: deregistered, unmapped: unmapped, failed: failed)
    }

    /// `ibv_dereg_mr`; its errno when it fails.
    private static func deregister(_ region: RegionResources) -> Errno? {
        region.device.provider.deregister(region.registration)
    }

    /// Unmaps one region (`unpin`), its bounce buffer included.
    private static func unmap(_ region: RegionResources, reservation: inout AddressReservation?) {
        unmapMapping(of: region, reservation: &reservation)
        region.unmapStagingBuffer()
    }

    /// Removes a region's mapping: one in the reservation is given back to it (never a hole).
    private static func unmapMapping(of region: RegionResources, reservation: inout AddressReservation?) {
        if var kept = reservation, kept.contains(region.mapping) {
            kept.giveBack(region.fileMapping)
            reservation = kept
        } else {
            region.fileMapping.unmap()
        }
    }

    /// Unmaps every region of a teardown: those in an intact reservation with it, in one
    /// `munmap`, unless a pin is in flight (its mapping lies in the reservation too: the regions
    /// are given back and that pin removes the reservation). Allocates nothing.
    private static func unmapAll(_ s: inout State) {
        var reservation = s.reservation
        if let whole = reservation, whole.intact, !s.pinInFlight {
            var inside = 0
            for region in s.regions {
                if whole.contains(region.mapping) {
                    inside += 1
                } else {
                    region.fileMapping.unmap()
                }
            }
            whole.unmapAll(regionsInside: inside)
            reservation = nil
        } else {
            for region in s.regions { unmapMapping(of: region, reservation: &reservation) }
        }
        for region in s.regions { region.unmapStagingBuffer() }
        s.reservation = reservation
    }

    // MARK: Events

    func events() -> AsyncStream<LeaseEvent> {
        let (stream, continuation) = AsyncStream<LeaseEvent>.makeStream()
        let finalTrace: RevocationTrace? = state.withLock { s in
            if case .revoked = s.phase { return s.trace }
            s.nextListener += 1
            let id = s.nextListener
            s.listeners[id] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) }
            }
            return nil
        }
        if let finalTrace {
            continuation.yield(.revoked(finalTrace))
            continuation.finish()
        }
        return stream
    }

    deinit {
        // Backstop: LayoutLease's deinit revokes; this only runs if a core escaped it.
        if case .held = state.withLock({ $0.phase }) { revoke(reason: .dropped) }
    }
}
