import Glibc
import SystemPackage

/// Owns the kernel objects behind one pinned region: its registration, which owns its mapping
/// and, for a staged region, its bounce buffer (``MemoryRegistration``). They are released in
/// dependency order: the registration first (the NIC must stop using the pages before they
/// go), then the mappings. Dropping an `OwnedRegion` releases whatever is left in that same
/// order, which the registration's ownership of the mappings enforces.
struct OwnedRegion: ~Copyable, Sendable {
    let info: RegionInfo
    private var registration: MemoryRegistration
    /// The errno of a failed deregistration.
    private(set) var deregistrationFailure: Int32?

    /// Whether the bounce buffer is still mapped.
    private var hasStaging: Bool { registration.hasStaging }
    /// What a lease break's write-back did with a staged region (nil: none was tried).
    private(set) var writeBackOutcome: StagedWriteBack?

    init(id: Int, offset: Int, length: Int, strategy: Strategy, registration: consuming MemoryRegistration,
         flushIsDurable: Bool) {
        info = RegionInfo(id: id, offset: offset, length: length, strategy: strategy, mapping: registration.mappingBase,
                          mappedLength: registration.mappedLength, registered: registration.registeredBase,
                          registration: registration.registration, flushIsDurable: flushIsDurable,
                          device: registration.device)
        self.registration = registration
    }

    var id: Int { info.id }

    /// `ibv_dereg_mr`; its errno when it fails (kept in ``deregistrationFailure``). Nothing the
    /// second time.
    @discardableResult
    mutating func deregister() -> Errno? {
        guard let failure = registration.deregister() else { return nil }
        deregistrationFailure = failure.rawValue
        return failure
    }

    /// The trace step of the deregistration: done, or failed with its errno.
    var deregistrationStep: RevocationTrace.Step {
        deregistrationFailure.map { .deregistrationFailed(region: id, errno: $0) } ?? .deregistered(region: id)
    }

    /// A lease break's write-back of a staged region's bounce buffer to the file: `pwrite`
    /// through the lease's descriptor `fd`, bounded by `fileSize` (writing past it would grow the
    /// file again) and by `deadline`, in chunks, so a large region stops at the deadline instead
    /// of running into `lease-break-time`; `skip` drops the whole region for that cause instead.
    /// Only before ``deregister()``; the outcome is kept in
    /// ``writeBackOutcome`` (written into the trace after `F_UNLCK`). Nothing for other strategies.
    mutating func writeBack(fd: Int32, fileSize: Int, deadline: Stamp, skip: RevocationTrace.DropCause?) {
        guard info.strategy == .staged, hasStaging else { return }
        let inFile = max(0, min(info.length, fileSize - info.offset))
        var outcome = StagedWriteBack(pastEnd: info.length - inFile, fileSize: fileSize)
        if let skip {
            outcome.drop(inFile, skip)
            writeBackOutcome = outcome
            return
        }
        let chunk = 1 << 20
        while outcome.written < inFile {
            if Stamp.now() >= deadline { outcome.drop(inFile - outcome.written, .deadline); break }
            let done = outcome.written
            let count: Int
            do throws(Errno) { count = try Syscalls.pwrite(fd, info.registered + done, min(chunk, inFile - done), info.offset + done) } catch {
                outcome.drop(inFile - done, .writeFailed(errno: error.rawValue))
                break
            }
            guard count > 0 else {
                outcome.drop(inFile - done, .writeFailed(errno: EIO))
                break
            }
            outcome.written += count
        }
        writeBackOutcome = outcome
    }

    /// The written-back bytes turn out not durable (`fdatasync` failed with `code`).
    mutating func writeBackNotDurable(_ code: Int32) {
        guard var outcome = writeBackOutcome, outcome.written > 0 else { return }
        outcome.drop(outcome.written, .writeFailed(errno: code))
        outcome.written = 0
        writeBackOutcome = outcome
    }

    /// The trace steps of the write-back: what was written, then what was dropped and why.
    func recordWriteBack(into trace: inout RevocationTrace, at time: ContinuousClock.Instant) {
        guard let outcome = writeBackOutcome else { return }
        trace.record(.wroteBack(region: id, bytes: outcome.written), at: time)
        if outcome.pastEnd > 0 {
            trace.record(.stagedBytesDropped(region: id, bytes: outcome.pastEnd, cause: .pastEndOfFile(size: outcome.fileSize)), at: time)
        }
        if let cause = outcome.cause, outcome.dropped > 0 {
            trace.record(.stagedBytesDropped(region: id, bytes: outcome.dropped, cause: cause), at: time)
        }
    }

    /// Removes the mappings: the file mapping given back to `reservation` when it lies in it
    /// (else unmapped), the bounce buffer unmapped. Only after ``deregister()``.
    mutating func unmap(givingBackTo reservation: inout ReservationState) {
        if let mapping = registration.takeMapping() { reservation.giveBack(mapping) }
        registration.takeStaging()?.unmap()
    }

    /// Removes the mappings when the whole reservation is about to be unmapped: a mapping in it
    /// goes with it, any other is unmapped. Only after ``deregister()``.
    mutating func unmapWithReservation() {
        if let mapping = registration.takeMapping() {
            if mapping.isReserved { mapping.coveredByReservation() } else { mapping.unmap() }
        }
        registration.takeStaging()?.unmap()
    }
}

/// What a lease break's write-back did with one staged region: plain counts, kept by the region
/// until the trace is written (no allocation on the way to `F_UNLCK`).
struct StagedWriteBack: Sendable {
    /// Bytes now in the file.
    var written = 0
    /// Bytes past the end of the file, not written.
    var pastEnd: Int
    /// The file's size at the write-back.
    var fileSize: Int
    /// Bytes within the file that were not written (or not made durable), and why.
    var dropped = 0
    var cause: RevocationTrace.DropCause?

    init(pastEnd: Int, fileSize: Int) {
        self.pastEnd = pastEnd
        self.fileSize = fileSize
    }

    mutating func drop(_ bytes: Int, _ why: RevocationTrace.DropCause) {
        guard bytes > 0 else { return }
        dropped += bytes
        cause = why
    }
}
