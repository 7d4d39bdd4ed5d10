/// Why a lease's regions were torn down.
public enum RevocationReason: Sendable, Hashable, CustomStringConvertible {
    /// The kernel broke the lease: another process truncated, punched a hole in or opened the file.
    case leaseBreak
    /// The application called `LayoutLease.release()`.
    case released
    /// The lease went out of scope without `release()`; `deinit` tore it down.
    case dropped

    /// Human-readable text for messages and logs.
    public var description: String {
        switch self {
        case .leaseBreak: "lease break"
        case .released: "release"
        case .dropped: "drop"
        }
    }
}

/// The ordered record of a teardown: what happened, in which order, and when.
/// Tests read it to prove the dependency order (quiesce, deregister, unpin, unlock, close).
public struct RevocationTrace: Sendable, CustomStringConvertible {
    /// One step of a teardown.
    public enum Step: Sendable, Hashable, CustomStringConvertible {
        /// The watcher received the kernel's lease-break signal.
        case breakNoticed
        /// The application's quiesce handler was called.
        case quiesceStarted
        /// The quiesce handler returned within its budget.
        case quiesceFinished
        /// The quiesce handler overran its budget; revocation went ahead without it.
        case quiesceOverran
        /// Queue pairs attached to the lease were moved to the error state.
        case queuePairsStopped(count: Int)
        /// A staged region's bounce buffer was written back to the file on a lease break, after
        /// the queue pairs stopped and before deregistration (`pwrite` through the lease's own
        /// descriptor, then `fdatasync`): `bytes` of it are in the file (see
        /// ``LeaseOptions/writeBackStagedOnBreak``).
        case wroteBack(region: Int, bytes: Int)
        /// Bytes of a staged region that a lease break left out of the file: the peers' writes
        /// in them are lost, and `cause` says why. Summed in ``RevocationTrace/stagedBytesDropped``.
        case stagedBytesDropped(region: Int, bytes: Int, cause: DropCause)
        /// A region's memory registration was deregistered (`ibv_dereg_mr`).
        case deregistered(region: Int)
        /// A region's mapping was removed (`munmap`): its pages are no longer pinned.
        case unmapped(region: Int)
        /// The lease was released (`F_SETLEASE F_UNLCK`): the breaker may proceed.
        case leaseReleased
        /// The file descriptor was closed.
        case closed
        /// `F_UNLCK` found no lease: the kernel had already dropped it because the revocation did
        /// not finish within `lease-break-time` (the holder was stopped, starved, or an access
        /// closure ran too long). The breaker went on while the MRs were still registered, so
        /// the file may have changed under them; every MR is deregistered now all the same.
        case leaseLost
        /// `ibv_dereg_mr` failed for a region (the teardown went on: the region is unmapped and
        /// the lease released all the same, so the file system gets its blocks back; the NIC may
        /// still reach the pages it had pinned, which no longer belong to the file).
        case deregistrationFailed(region: Int, errno: Int32)

        /// Human-readable text for messages and logs.
        public var description: String {
            switch self {
            case .breakNoticed: "break noticed"
            case .quiesceStarted: "quiesce started"
            case .quiesceFinished: "quiesce finished"
            case .quiesceOverran: "quiesce overran its budget"
            case .queuePairsStopped(let count): "\(count) queue pair(s) moved to error"
            case .wroteBack(let region, let bytes): "region \(region): \(bytes) staged byte(s) written back"
            case .stagedBytesDropped(let region, let bytes, let cause): "region \(region): \(bytes) staged byte(s) dropped: \(cause)"
            case .deregistered(let region): "region \(region): MR deregistered"
            case .unmapped(let region): "region \(region): unmapped (unpinned)"
            case .leaseReleased: "lease released (F_UNLCK)"
            case .leaseLost: "lease lost: the kernel had dropped it after lease-break-time"
            case .closed: "file closed"
            case .deregistrationFailed(let region, let code): "region \(region): ibv_dereg_mr failed: \(errnoText(code))"
            }
        }
    }

    /// Why bytes of a staged region were not written back to the file on a lease break.
    public enum DropCause: Sendable, Hashable, CustomStringConvertible {
        /// The file ends before them: it was `size` bytes long at the write-back, and writing
        /// would have grown it again. While the lease is held no other process can shrink the
        /// file (its truncate waits for the revocation), so this happens after the kernel
        /// dropped the lease (``Step/leaseLost``) and the truncate went ahead.
        case pastEndOfFile(size: Int)
        /// `pwrite` or `fdatasync` failed with `errno` (`EIO`, `ENOSPC`, ...): these bytes may
        /// be missing from the file, or in it but not durable.
        case writeFailed(errno: Int32)
        /// The revocation was too late to write them: past seven eighths of `lease-break-time`
        /// after the break was noticed the kernel may already have let the breaker go, and a
        /// write-back then could overwrite what the breaker wrote.
        case deadline
        /// ``LeaseOptions/writeBackStagedOnBreak`` is off: DaxPin wrote nothing back (bytes the
        /// quiesce handler wrote back itself are counted too; DaxPin cannot tell).
        case writeBackOff

        /// Human-readable text for messages and logs.
        public var description: String {
            switch self {
            case .pastEndOfFile(let size): "past the end of the file (\(size) bytes)"
            case .writeFailed(let code): "write-back failed: \(errnoText(code))"
            case .deadline: "too late in lease-break-time to write back safely"
            case .writeBackOff: "write-back on break is off (LeaseOptions.writeBackStagedOnBreak)"
            }
        }
    }

    /// A step and when it happened.
    public struct Entry: Sendable {
        /// What happened.
        public let step: Step
        /// When it happened. The per-region steps of one teardown phase (every MR deregistered,
        /// every region unmapped) share the time the phase ended: one clock read per phase, not
        /// per region, while the breaker waits (where the clock has no vDSO, each read is a
        /// system call).
        public let at: ContinuousClock.Instant
    }

    /// The reason of the teardown, or nil while the lease is held.
    public internal(set) var reason: RevocationReason?
    /// Every step so far, oldest first (also steps of `unpin` calls).
    public internal(set) var entries: [Entry] = []

    /// The steps without their times.
    public var steps: [Step] { entries.map(\.step) }

    /// Whether the kernel had taken the lease back before it was released (``Step/leaseLost``).
    public var leaseWasLost: Bool { entries.contains { $0.step == .leaseLost } }

    /// Bytes of staged regions written back to the file by lease breaks
    /// (``Step/wroteBack(region:bytes:)``).
    public var stagedBytesWrittenBack: Int {
        entries.reduce(0) { sum, entry in
            if case .wroteBack(_, let bytes) = entry.step { sum + bytes } else { sum }
        }
    }

    /// Bytes of staged regions that lease breaks left out of the file
    /// (``Step/stagedBytesDropped(region:bytes:cause:)``): zero unless peers' writes were lost.
    public var stagedBytesDropped: Int {
        entries.reduce(0) { sum, entry in
            if case .stagedBytesDropped(_, let bytes, _) = entry.step { sum + bytes } else { sum }
        }
    }

    /// Time from the first step to the last.
    public var duration: Duration {
        guard let first = entries.first, let last = entries.last else { return .zero }
        return first.at.duration(to: last.at)
    }

    /// Human-readable text for messages and logs.
    public var description: String {
        guard let start = entries.first?.at else { return "no steps" }
        return entries.map { entry in
            let ms = Double(start.duration(to: entry.at).components.attoseconds) / 1e15
                + Double(start.duration(to: entry.at).components.seconds) * 1000
            let stamp = String(format3: ms)
            return "+\(stamp) ms  \(entry.step)"
        }.joined(separator: "\n")
    }

    mutating func record(_ step: Step, at time: ContinuousClock.Instant = .now) {
        entries.append(Entry(step: step, at: time))
    }

    /// Makes room for `additional` more steps, so that writing them allocates at most once.
    mutating func reserve(additional: Int) {
        entries.reserveCapacity(entries.count + additional)
    }
}

extension String {
    /// Three-decimal formatting without Foundation.
    init(format3 value: Double) {
        let scaled = Int((value * 1000).rounded())
        let whole = scaled / 1000, fraction = abs(scaled % 1000)
        let padded = String(fraction)
        self = "\(whole).\(String(repeating: "0", count: 3 - padded.count))\(padded)"
    }
}

/// Something that happened to a lease, delivered through `LayoutLease.events`.
public enum LeaseEvent: Sendable {
    /// The kernel started breaking the lease; revocation is under way.
    case breakNoticed(path: String)
    /// Every region was revoked; the trace tells how, including what a break wrote back of
    /// staged regions and what it dropped (``RevocationTrace/stagedBytesDropped``).
    case revoked(RevocationTrace)

    /// Whether this is the last event, ``revoked(_:)``.
    var isRevoked: Bool {
        if case .revoked = self { true } else { false }
    }
}

/// Where a lease is in its life.
public enum LeaseState: Sendable, Hashable {
    /// The lease is held and regions may be pinned.
    case held
    /// A teardown is under way.
    case revoking(RevocationReason)
    /// Every region was revoked; handles report `.revoked`.
    case revoked(RevocationReason)
}

/// Which lease the kernel granted.
public enum LeaseKind: Sendable, Hashable, CustomStringConvertible {
    /// A layout lease (`F_LAYOUT`, proposed in 2019; used if the running kernel offers it).
    case layout
    /// A write lease (`F_WRLCK`) on the read-write descriptor that maps the file.
    case write
    /// A read lease (`F_RDLCK`) on a read-only descriptor.
    case read
    /// No lease is possible; the reason says why this is safe or not.
    case none(reason: String)

    /// Human-readable text for messages and logs.
    public var description: String {
        switch self {
        case .layout: "layout lease"
        case .write: "write lease"
        case .read: "read lease"
        case .none(let reason): "no lease (\(reason))"
        }
    }
}

/// What the quiesce handler is told when the kernel breaks a lease.
public struct QuiesceRequest: Sendable {
    /// The leased path.
    public let path: String
    /// Revocation goes ahead at this instant whether or not the handler returned.
    public let deadline: ContinuousClock.Instant
    /// The budget the deadline was computed from.
    public let budget: Duration
}
