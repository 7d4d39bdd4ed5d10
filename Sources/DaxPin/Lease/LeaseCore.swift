import CLease
import Dispatch
import Glibc
import Logging
import Synchronization
import SystemPackage

/// The state a lease shares with the watcher thread: the kernel objects it owns (the lease on
/// its descriptor, the regions, the address reservation) and the teardown that both an
/// application release and a kernel lease break run, in one order (see `revoke`).
final class LeaseCore: Sendable {
    let path: String
    let access: Access
    let memory: MemoryKind
    /// The descriptor's number (owned by the state's ``LeaseHandle``), to map from and to name
    /// the lease to the watcher; -1 for anonymous memory.
    let fd: Int32
    /// The size of a device-dax instance, read once (libdaxctl walks sysfs for it); nil for files.
    let deviceSize: Int?
    /// The options, without the quiesce handler (the state keeps it, to drop it at revocation).
    let options: LeaseOptions
    /// Whether the lease was given a quiesce handler (read by the watcher without the lock).
    let hasQuiesce: Bool
    /// This lease's entry among the process's own leases (nil for device-dax and anonymous
    /// memory, which no open breaks); given up once the descriptor is closed.
    let claim: OwnLeases.Claim?
    /// Unique within the process, for the pin registry.
    let serial: UInt64
    /// When the lease was taken (wall clock, for `daxpin ls`).
    let createdAt: timespec
    /// The process that took the lease.
    let owner = Syscalls.processID()
    /// Whether this is a forked child's copy of the parent's lease.
    var isForkedCopy: Bool { Syscalls.processID() != owner }
    private static let serials = Atomic<UInt64>(0)
    /// Set by ``advance(_:to:)`` with a final lifecycle, before the registry withdraws the
    /// lease: the registry reads it (not the lease lock) to drop a snapshot taken before.
    let isRevoked = Atomic<Bool>(false)
    /// Set at the first staged pin (and never cleared): a break of this lease writes bounce
    /// buffers back, which can take long, so the watcher gives it a thread of its own.
    let hasStagedRegions = Atomic<Bool>(false)
    /// Left once, by ``advance(_:to:)``, when the teardown completes; later callers wait on it.
    let finished = DispatchGroup()
    /// Signalled once per waiter when the last byte access ends (made once: draining allocates
    /// nothing).
    let accessDrained = DispatchSemaphore(value: 0)
    let state: AnnotatedMutex<State>

    struct State: ~Copyable {
        /// Where the lease is; changed only by ``LeaseCore/advance(_:to:)``.
        fileprivate(set) var lifecycle = Lifecycle.held
        /// Byte-access closures running now. They run outside this lock (so they may call back
        /// into the lease); deregistering and unmapping wait until none runs.
        var accessors = 0
        /// Threads waiting on `accessDrained` for `accessors` to drop to zero.
        var accessDrainWaiters = 0
        var kind: LeaseKind
        /// The descriptor and the lease on it; nil for anonymous memory and once torn down.
        var lease: LeaseHandle?
        var regions = RegionTable()
        /// Address space the regions are mapped into; made at the first pin of a file-backed lease.
        var reservation = ReservationState.untried
        var nextRegionID = 1
        var trace = RevocationTrace()
        var listeners: [Int: AsyncStream<LeaseEvent>.Continuation] = [:]
        /// Every event so far, in order (a `breakNoticed`, a `revoked`): a new listener gets
        /// them first. Appended under this lock, which also registers listeners, so none is
        /// missed or seen twice.
        var history: [LeaseEvent] = []
        var nextListener = 0
        var stopHooks: [Int: StopHook] = [:]
        var nextHook = 0
        /// The application's quiesce handler, dropped when the teardown finishes: a handler that
        /// captures something holding this lease would otherwise keep it alive in a cycle.
        var quiesce: (@Sendable (QuiesceRequest) -> Void)?

        init(kind: LeaseKind, lease: consuming LeaseHandle?, quiesce: (@Sendable (QuiesceRequest) -> Void)?) {
            self.kind = kind
            self.lease = lease
            self.quiesce = quiesce
        }

        /// What the application sees of the lifecycle.
        var phase: LeaseState { lifecycle.publicState }

        /// Whether byte access is closed: from the moment the teardown drains it (during
        /// quiesce regions stay usable, so a quiesce handler can still write back staged data).
        var accessClosed: Bool { !lifecycle.acceptsAccess }

        /// Whether a kernel lease is held.
        var holdsLease: Bool {
            switch lease {
            case .some(let handle): handle.held != nil
            case .none: false
            }
        }
    }

    private init(path: String, access: Access, memory: MemoryKind, fd: Int32, kind: LeaseKind, options: LeaseOptions,
                 claim: OwnLeases.Claim? = nil) {
        self.path = path
        self.claim = claim
        self.access = access
        self.memory = memory
        self.fd = fd
        var withoutHandler = options
        withoutHandler.quiesce = nil
        self.options = withoutHandler
        self.hasQuiesce = options.quiesce != nil
        if case .deviceDAX = memory, fd >= 0 {
            self.deviceSize = try? MemoryProbe.size(of: FileDescriptor(rawValue: fd), kind: memory, path: path)
        } else {
            self.deviceSize = nil
        }
        self.serial = Self.serials.add(1, ordering: .relaxed).newValue
        self.createdAt = Syscalls.now(CLOCK_REALTIME)
        self.state = AnnotatedMutex(State(kind: kind, lease: fd >= 0 ? LeaseHandle(fd: fd) : nil, quiesce: options.quiesce))
        finished.enter()
    }

    /// Opens `path`, classifies it and takes the strongest lease the kernel offers.
    /// A file this process already leases is refused before the open, which would break that
    /// lease (see ``OwnLeases``).
    static func acquire(path: String, access: Access, options: LeaseOptions) throws(DaxPinError) -> LeaseCore {
        let info = try MemoryProbe.statPinnable(path)
        var claim: OwnLeases.Claim?
        if info.st_mode & S_IFMT == S_IFREG {
            claim = try OwnLeases.shared.claim(OwnLeases.FileIdentity(info), path: path, access: access)
        }
        let opened: OpenedMemory
        do {
            opened = try MemoryProbe.openPinnable(path, access: access)
        } catch {
            claim.map(OwnLeases.shared.release)
            throw error
        }
        if let made = claim {
            do {
                claim = try OwnLeases.shared.confirm(made, fd: opened.fd.rawValue, path: path, access: access)
            } catch {
                try? Syscalls.close(opened.fd.rawValue)
                throw error
            }
        }
        guard opened.kind.isLeasable else {
            let reason = "device-dax is a character device: it cannot be truncated, so no lease is needed"
            let core = LeaseCore(path: path, access: access, memory: opened.kind, fd: opened.fd.rawValue,
                                 kind: .none(reason: reason), options: options, claim: claim)
            core.publishToRegistry()
            return core
        }
        let core = LeaseCore(path: path, access: access, memory: opened.kind, fd: opened.fd.rawValue,
                             kind: .none(reason: "not yet taken"), options: options, claim: claim)
        do {
            try core.takeLease()
        } catch {
            core.state.withLock { s in
                s.lease.take()?.close()
                core.advance(&s, to: .revoked(.released))
            }
            claim.map(OwnLeases.shared.release)
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
            watcher.unwatch(fd, by: .owner)
            return error
        }
        do throws(Errno) { try Syscalls.setSignal(fd, watcher.signal) } catch {
            throw fail(.systemCall(operation: "fcntl(F_SETSIG)", path: path, errno: error))
        }
        let attempts: [(Int32, LeaseKind)] = [
            (Int32(DAXPIN_F_LAYOUT), .layout),
            access == .readWrite ? (Int32(DAXPIN_F_WRLCK), .write) : (Int32(DAXPIN_F_RDLCK), .read),
        ]
        var granted: LeaseKind?
        for (type, kind) in attempts {
            let refused = state.withLock { s -> Errno? in
                do throws(Errno) { try s.lease?.take(type) } catch { return error }
                s.kind = kind
                return nil
            }
            guard let code = refused else { granted = kind; break }
            if type == Int32(DAXPIN_F_LAYOUT), code == .invalidArgument { continue }
            let lease = access == .readWrite ? "write" : "read"
            switch code {
            case .resourceTemporarilyUnavailable: throw fail(.fileInUse(path: path, lease: lease))
            case .permissionDenied, .notPermitted: throw fail(.permissionDenied(path: path, errno: code))
            default: throw fail(.leaseUnavailable(path: path, errno: code))
            }
        }
        guard let kind = granted else {
            throw fail(.leaseUnavailable(path: path, errno: .invalidArgument))
        }
        do throws(Errno) { try Syscalls.setOwnerThread(fd, watcher.threadID) } catch {
            _ = state.withLock { $0.lease?.unlock() }
            throw fail(.systemCall(operation: "fcntl(F_SETOWN_EX)", path: path, errno: error))
        }
        // A break before F_SETOWN_EX signalled the whole process; if the watcher took that
        // signal before the lease was recorded above, it passed it over. Hand it over again.
        if kernelIsBreaking() { try? Syscalls.queueSignal(watcher.threadID, watcher.signal, fd) }
        options.logger.debug("lease taken", metadata: ["path": "\(path)", "lease": "\(kind)"])
    }

    /// Whether the kernel is breaking our lease: F_GETLEASE reports the type the lease is
    /// being downgraded to while a break is pending. Filters stale or foreign signals.
    func kernelIsBreaking() -> Bool {
        state.withLock { s in
            switch s.lease {
            case .some(let handle): handle.isBeingBroken
            case .none: false
            }
        }
    }

    var phase: LeaseState { state.withLock { $0.phase } }

    /// Work a revocation runs in step 2 (a queue pair moved to the error state). A class: a
    /// closure stored as a dictionary value is wrapped in a new thunk, an allocation, each time
    /// it is read back, and step 2 runs before `F_UNLCK`, where nothing allocates.
    final class StopHook: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Moves the lifecycle forward to `next` (under the lock, `s` being its state): the one
    /// setter, which also publishes a final state to ``isRevoked`` and leaves ``finished``.
    func advance(_ s: inout State, to next: Lifecycle) {
        precondition(next.rank > s.lifecycle.rank, "DaxPin: lease lifecycle from \(s.lifecycle) back to \(next)")
        s.lifecycle = next
        guard next.isFinal else { return }
        isRevoked.store(true, ordering: .releasing)
        finished.leave()
    }

    /// Pushes what `daxpin ls` shows of this lease to the pin registry (a snapshot taken under
    /// this lease's lock; the registry never takes it).
    func publishToRegistry() {
        let (phase, kind, regions) = state.withLock { ($0.phase, $0.kind, $0.regions.infos) }
        PinRegistry.shared.publish(self, phase: phase, kind: kind, regions: regions)
    }
    var kind: LeaseKind { state.withLock { $0.kind } }
    var trace: RevocationTrace { state.withLock { $0.trace } }

    // MARK: Events

    /// A new stream that replays the events so far, then every later one. It is seeded and
    /// registered in one critical section with the code that appends an event and takes the
    /// listeners to tell (yielding to a stream nobody consumes yet only buffers).
    func events() -> AsyncStream<LeaseEvent> {
        let (stream, continuation) = AsyncStream<LeaseEvent>.makeStream()
        let ended: Bool = state.withLock { s in
            for event in s.history { continuation.yield(event) }
            if case .revoked = s.phase {
                if !s.history.contains(where: \.isRevoked) { continuation.yield(.revoked(s.trace)) }
                return true
            }
            s.nextListener += 1
            let id = s.nextListener
            s.listeners[id] = continuation
            continuation.onTermination = { [weak self] _ in
                _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) }
            }
            return false
        }
        // Outside the lock: nothing else can reach this stream any more.
        if ended { continuation.finish() }
        return stream
    }

    deinit {
        // Backstop: LayoutLease's deinit revokes; this only runs if a core escaped it.
        if case .held = state.withLock({ $0.phase }), !isForkedCopy { revoke(reason: .dropped) }
    }
}
