import Dispatch
import Glibc
import Logging
import Synchronization

/// Publishes this process's live leases and pins so `daxpin ls` can list them.
/// LeaseCore calls `publish` whenever a lease is taken or changes (pin, unpin, break) and
/// `withdraw` when it is revoked. Publishing never fails a pin: errors are only logged.
///
/// The process's record is one file, `<pid>.json`, in ``RunDirectory/forCurrentProcess()``,
/// replaced atomically (written to a temporary file, then renamed) a few milliseconds after
/// a change (changes in between are written together), removed when the process holds no
/// leases, and at exit.
final class PinRegistry: Sendable {
    static let shared = PinRegistry()

    private struct State {
        var leases: [UInt64: LeaseRecord] = [:]
        /// Set once the exit handler is installed.
        var exitHandlerInstalled = false
        /// The directory chosen at the first publish (the environment is read once).
        var directory: String?
        var processStartTicks: UInt64 = 0
        var processName = ""
        /// A write is queued and will pick up every change made before it runs.
        var flushScheduled = false
        /// What each lease adds to the gauges (kept whether or not metrics are on: a backend
        /// may be bootstrapped later).
        var gaugeInputs: [UInt64: PinGauges.Lease] = [:]
        /// Told of every write (``observe(_:)``).
        var observers: [@Sendable (ProcessPinRecord?) -> Void] = []
    }

    /// What one write puts on disk.
    private struct Snapshot {
        let directory: String
        let record: ProcessPinRecord?  // nil: no leases, remove the file
    }

    private let state = AnnotatedMutex(State())
    /// Touched only by writes, on `writer`.
    private let gauges = AnnotatedMutex(PinGauges())
    /// Writes run here, in order, never on the thread that pins or revokes: a lease break
    /// must not wait for file I/O, and a burst of changes (a thousand leases broken at
    /// once) becomes a few writes instead of one rewrite per change.
    private let writer = DispatchQueue(label: "DaxPin.registry", qos: .utility)
    private let logger = Logger(label: "DaxPin.registry")

    /// A lease was taken or changed: `phase`, `kind` and `regions` are its snapshot.
    func publish(_ core: LeaseCore, phase: LeaseState, kind: LeaseKind, regions: [RegionInfo]) {
        let schedule = state.withLock { s in
            // A snapshot taken before a revocation may arrive after its withdraw: the core's
            // flag, set before the withdraw, tells it to remove rather than resurrect.
            let revokedSnapshot = if case .revoked = phase { true } else { false }
            if revokedSnapshot || core.isRevoked.load(ordering: .acquiring) {
                s.leases.removeValue(forKey: core.serial)
                s.gaugeInputs.removeValue(forKey: core.serial)
            } else {
                s.gaugeInputs[core.serial] = PinGauges.Lease(memory: core.memory, regions: regions)
                let (device, inode) = s.leases[core.serial].map { ($0.device, $0.inode) } ?? Self.identity(of: core.fd)
                s.leases[core.serial] = Self.record(core, phase: phase, kind: kind, regions: regions, device: device, inode: inode)
            }
            return Self.markChanged(&s)
        }
        if schedule { scheduleWrite() }
    }

    /// A lease was revoked or released. The lease watcher calls this after `F_UNLCK`, so the
    /// breaker is already released; the write itself runs on `writer`, never on the watcher,
    /// which must be back in `sigwaitinfo` for the next break at once (Benchmarks/suites/revocation.sh).
    func withdraw(_ core: LeaseCore) {
        let schedule = state.withLock { s in
            guard s.leases.removeValue(forKey: core.serial) != nil else { return false }
            s.gaugeInputs.removeValue(forKey: core.serial)
            return Self.markChanged(&s)
        }
        if schedule { scheduleWrite() }
    }

    /// Calls `observer` on the registry's queue with this process's record after every write
    /// (nil once it holds no lease), and once now: `daxpin-server --metrics-file` rewrites its
    /// textfile from it.
    package func observe(_ observer: @escaping @Sendable (ProcessPinRecord?) -> Void) {
        state.withLock { s in
            s.observers.append(observer)
            if s.directory == nil { _ = Self.markChanged(&s) }
        }
        writer.async { self.writePending(force: true) }
    }

    /// Writes every change made so far before returning (for tests and orderly shutdown).
    func flush() {
        writer.sync { writePending(force: true) }
    }

    /// The directory this process publishes into, once something was published (for tests).
    var directory: String? { state.withLock { $0.directory } }

    /// Removes this process's file (the exit handler).
    func removeOwnFile() {
        // Never wait at exit: a thread that holds the lock may be gone.
        _ = state.withLockIfAvailable { s in
            guard let directory = s.directory else { return }
            guard let dirfd = try? Syscalls.open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) else { return }
            try? Syscalls.unlinkat(dirfd, "\(Syscalls.processID()).json", 0)
            try? Syscalls.close(dirfd)
        }
    }

    /// Notes a change; returns true when the caller must queue a write.
    private static func markChanged(_ s: inout State) -> Bool {
        if s.directory == nil {
            s.directory = RunDirectory.forCurrentProcess()
            s.processStartTicks = ProcessInfoReader.startTicks(of: Syscalls.processID()) ?? 0
            s.processName = ProcessInfoReader.name(of: Syscalls.processID()) ?? ""
        }
        if !s.exitHandlerInstalled, !s.leases.isEmpty {
            s.exitHandlerInstalled = true
            atexit { PinRegistry.shared.removeOwnFile() }
        }
        guard !s.flushScheduled else { return false }
        s.flushScheduled = true
        return true
    }

    private func scheduleWrite() {
        scheduledWrites.add(1, ordering: .relaxed)
        writer.async {
            // A short delay gathers a burst of changes into one write. It is slept here, on
            // the registry's utility worker, not set with asyncAfter: libdispatch's timer
            // thread runs above the application's priority, and woken by a withdraw right after
            // F_UNLCK it could preempt the breaker that is still finishing its truncate.
            Syscalls.sleep(microseconds: 5_000)
            self.writePending(force: false)
            self.scheduledWrites.subtract(1, ordering: .releasing)
        }
    }

    /// Delayed writes queued and not yet run (each holds the registry's worker for its delay
    /// and then runs, even if a ``flush()`` already wrote its changes).
    private let scheduledWrites = Atomic<Int>(0)

    /// Writes every change, then waits (up to `timeout`) until no delayed write is queued:
    /// afterwards no thread of the library wakes until the next lease event. Returns whether
    /// that state was reached.
    @discardableResult
    func settle(timeout: Duration = .seconds(2)) -> Bool {
        flush()
        let deadline = ContinuousClock.now + timeout
        while scheduledWrites.load(ordering: .acquiring) > 0 {
            guard ContinuousClock.now < deadline else { return false }
            Syscalls.sleep(microseconds: 1_000)
        }
        return true
    }

    /// Runs on `writer`: takes the current state and puts it on disk. A queued write that
    /// finds nothing pending (a `flush` already wrote it) does nothing.
    private func writePending(force: Bool) {
        let metrics = LeaseMetrics.backend
        var gaugeInputs: [UInt64: PinGauges.Lease]?
        var observers: [@Sendable (ProcessPinRecord?) -> Void] = []
        let snapshot: Snapshot? = state.withLock { s in
            guard s.flushScheduled || force else { return nil }
            s.flushScheduled = false
            if metrics != nil { gaugeInputs = s.gaugeInputs }
            observers = s.observers
            guard let directory = s.directory else { return nil }
            guard !s.leases.isEmpty else { return Snapshot(directory: directory, record: nil) }
            return Snapshot(directory: directory, record: ProcessPinRecord(
                pid: Syscalls.processID(), processStartTicks: s.processStartTicks, processName: s.processName, uid: Syscalls.effectiveUserID(),
                updatedAt: wallClockSeconds(),
                leases: s.leases.values.sorted { $0.serial < $1.serial }))
        }
        if let metrics, let gaugeInputs { gauges.withLock { $0.record(gaugeInputs, to: metrics) } }
        if let snapshot {
            write(snapshot)
            for observer in observers { observer(snapshot.record) }
        }
    }

    private static func record(_ core: LeaseCore, phase: LeaseState, kind: LeaseKind, regions: [RegionInfo],
                               device: String, inode: UInt64) -> LeaseRecord {
        let (stateName, reason): (String, RevocationReason?) = switch phase {
        case .held: ("held", nil)
        case .revoking(let why): ("revoking", why)
        case .revoked(let why): ("revoked", why)
        }
        return LeaseRecord(
            serial: core.serial, path: core.path, device: device, inode: inode,
            access: core.access.description, memory: core.memory.description, lease: kind.description,
            state: stateName, reason: reason?.description,
            createdAt: core.createdAt.seconds,
            regions: regions.map {
                RegionRecord(id: $0.id, offset: $0.offset, length: $0.length, strategy: $0.strategy.description,
                             rkey: $0.registration.remoteKey)
            })
    }

    /// `major:minor` and inode of the leased file (the device number itself for device-dax).
    private static func identity(of fd: Int32) -> (String, UInt64) {
        guard fd >= 0, let info = try? Syscalls.fstat(fd) else { return ("0:0", 0) }
        let dev = info.st_mode & S_IFMT == S_IFCHR ? info.st_rdev : info.st_dev
        return (DeviceNumber(dev).description, UInt64(info.st_ino))
    }

    /// Replaces the process's file atomically (temporary file, then rename), or removes it.
    private func write(_ snapshot: Snapshot) {
        let name = "\(Syscalls.processID()).json"
        guard let record = snapshot.record else {
            guard let dirfd = try? Syscalls.open(snapshot.directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) else { return }
            try? Syscalls.unlinkat(dirfd, name, 0)
            try? Syscalls.close(dirfd)
            return
        }
        let dirfd: Int32
        do throws(Errno) { dirfd = try RunDirectory.openForPublishing(snapshot.directory) } catch {
            logger.debug("pin registry: cannot use run directory", metadata: ["directory": "\(snapshot.directory)", "errno": "\(error.rawValue)"])
            return
        }
        defer { try? Syscalls.close(dirfd) }
        let temporary = ".\(name).tmp"
        try? Syscalls.unlinkat(dirfd, temporary, 0)
        let fd: Int32
        do throws(Errno) { fd = try Syscalls.openat(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) } catch {
            logger.debug("pin registry: cannot create file", metadata: ["directory": "\(snapshot.directory)", "errno": "\(error.rawValue)"])
            return
        }
        let failure = Errno.of { () throws(Errno) in
            defer { try? Syscalls.close(fd) }
            try Syscalls.writeAll(fd, Array(record.jsonText.utf8))
        } ?? Errno.of { () throws(Errno) in try Syscalls.renameat(dirfd, temporary, dirfd, name) }
        if let failure {
            try? Syscalls.unlinkat(dirfd, temporary, 0)
            logger.debug("pin registry: write failed", metadata: ["directory": "\(snapshot.directory)", "errno": "\(failure.rawValue)"])
            return
        }
    }
}

/// A `dev_t` split into major and minor numbers (glibc's encoding).
package struct DeviceNumber: Sendable, Hashable, CustomStringConvertible {
    /// The major number.
    public let major: UInt32
    /// The minor number.
    public let minor: UInt32

    /// Splits a `dev_t`.
    public init(_ dev: dev_t) {
        let value = UInt64(dev)
        major = UInt32(((value >> 8) & 0xfff) | ((value >> 32) & ~UInt64(0xfff)))
        minor = UInt32((value & 0xff) | ((value >> 12) & ~UInt64(0xff)))
    }

    /// From its parts.
    public init(major: UInt32, minor: UInt32) { self.major = major; self.minor = minor }

    /// Parses `major:minor`, decimal, or hexadecimal when `hex` is set (as /proc/locks prints it).
    public init?(parsing text: Substring, hex: Bool = false) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0], radix: hex ? 16 : 10),
              let minor = UInt32(parts[1], radix: hex ? 16 : 10) else { return nil }
        self.init(major: major, minor: minor)
    }

    /// `major:minor` in decimal.
    public var description: String { "\(major):\(minor)" }
}
