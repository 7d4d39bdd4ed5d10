import CLease
import DaxPin
import Glibc
import Synchronization

/// One holder process of the soak: `threads` threads, each running `cycles` cycles on a file of
/// its own. A cycle takes the lease, pins one to three regions (`auto`: the strategy the memory
/// and device allow), writes a stamp into each and
/// persists it (an acknowledged write), maybe unpins one, then ends the lease one of four ways:
/// truncate, open for write, open + hole punch (each a real kernel lease break, from another
/// thread of this process: the kernel breaks a lease for any other open file description), or
/// release. It then checks the trace's order and, where the file keeps its data, that every
/// acknowledged stamp is in it. Progress goes to stdout, one line per step, for the watchdog.
struct SoakHolder {
    /// The run (its watchdog's pid), in the file names.
    let runID: Int
    let id: Int
    let threads: Int
    let cycles: Int
    let directory: String
    let device: RDMADevice
    let standIn: SoakVerbs?
    let bound: Duration
    /// Proves the watchdog: thread 0 of holder 0 stops (sleeps) at this cycle.
    let stallAt: Int?
    let options: LeaseOptions

    static let regionLength = 64 << 10
    static let fileLength = 3 * regionLength
    /// Where in each region the stamp goes: past the first page, which a hole punch clears.
    static let stampOffset = 8192

    enum Ending: CaseIterable { case truncate, openForWrite, punchHole, release }

    /// Runs every thread to the end; returns the failures (empty when all went well).
    func run() -> [String] {
        let failures = SoakFailures()
        var handles: [pthread_t] = []
        for thread in 0..<threads {
            let worker = self
            let box = Unmanaged.passRetained(WorkerStart { worker.work(thread: thread, failures: failures) })
            var handle = pthread_t()
            guard pthread_create(&handle, nil, { raw in
                Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, box.toOpaque()) == 0 else {
                box.release()
                failures.add("thread \(thread): pthread_create failed")
                continue
            }
            handles.append(handle)
        }
        for handle in handles { pthread_join(handle, nil) }
        return failures.all
    }

    private func work(thread: Int, failures: SoakFailures) {
        let path = "\(directory)/soak-\(runID)-\(id)-\(thread).dat"
        defer { unlink(path) }
        for cycle in 0..<cycles {
            do throws(SoakFailure) {
                try runCycle(thread: thread, cycle: cycle, path: path)
                progress(thread, cycle, "ok")
            } catch {
                progress(thread, cycle, "FAIL")
                failures.add("holder \(id) thread \(thread) cycle \(cycle): \(error.reason)")
                return
            }
        }
        progress(thread, cycles, "done")
    }

    /// A revocation step of the staged write-back on a break.
    static func isStagedWriteBack(_ step: RevocationTrace.Step) -> Bool {
        switch step {
        case .wroteBack, .stagedBytesDropped: true
        default: false
        }
    }

    private func runCycle(thread: Int, cycle: Int, path: String) throws(SoakFailure) {
        progress(thread, cycle, "prepare")
        try prepare(path)
        progress(thread, cycle, "lease")
        var lease: LayoutLease
        do { lease = try LayoutLease(path: path, options: options) } catch { throw SoakFailure("lease: \(error)") }
        progress(thread, cycle, "pin")
        if id == 0, thread == 0, cycle == stallAt { while true { sleep(60) } }
        var regions: [PinnedRegion.ID] = []
        for index in 0..<(1 + cycle % 3) {
            do {
                regions.append(try lease.pin(offset: index * Self.regionLength, length: Self.regionLength, on: device))
            } catch { throw SoakFailure("pin \(index): \(error)") }
        }
        // Acknowledged writes: a stamp per region, persisted.
        let stamp = UInt64(id) << 48 | UInt64(thread) << 32 | UInt64(cycle)
        progress(thread, cycle, "write")
        var staged: [PinnedRegion.ID] = []
        for (index, region) in regions.enumerated() {
            do {
                let isStaged = try lease.withRegion(region) { pinned in
                    try pinned.withMutableBytes { $0.storeBytes(of: stamp ^ UInt64(index), toByteOffset: Self.stampOffset, as: UInt64.self) }
                    // A staged region (fs-dax without ODP) is acknowledged once written back to the file.
                    if pinned.strategy == .staged { try pinned.writeBack() } else { try pinned.persist() }
                    return pinned.strategy == .staged
                }
                if isStaged { staged.append(region) }
            } catch { throw SoakFailure("write region \(index): \(error)") }
        }
        let pinned = regions.count  // the stamps to find: an unpinned region's was persisted first
        if cycle % 11 == 5, regions.count > 1 {
            progress(thread, cycle, "unpin")
            do { try lease.unpin(regions.removeLast()) } catch { throw SoakFailure("unpin: \(error)") }
        }
        let ending = Ending.allCases[cycle % Ending.allCases.count]
        progress(thread, cycle, "end \(ending)")
        let trace: RevocationTrace
        if ending == .release {
            trace = lease.release()
        } else {
            try breakLease(path, ending)
            guard let revoked = lease.waitUntilRevoked(timeout: bound) else {
                throw SoakFailure("the break of \(ending) was not revoked within \(bound)")
            }
            trace = revoked
            _ = lease.release()
        }
        // The teardown's own steps, in order, after any unpin's; a break also writes each staged
        // region back (or counts what it could not) after noticing and before deregistering.
        let ids = regions.map(\.rawValue)
        let expected: [RevocationTrace.Step] = (ending == .release ? [] : [.breakNoticed])
            + ids.map { .deregistered(region: $0) } + ids.map { .unmapped(region: $0) } + [.leaseReleased, .closed]
        let stagedSteps = trace.steps.filter(Self.isStagedWriteBack)
        guard Array(trace.steps.filter { !Self.isStagedWriteBack($0) }.suffix(expected.count)) == expected else {
            throw SoakFailure("trace out of order: \(trace.steps) (expected to end with \(expected), staged write-backs aside)")
        }
        let written = Set(stagedSteps.compactMap { step -> Int? in
            if case .wroteBack(let region, _) = step { region } else if case .stagedBytesDropped(let region, _, _) = step { region } else { nil }
        })
        if ending == .release {
            guard stagedSteps.isEmpty else { throw SoakFailure("release wrote staged regions back: \(trace.steps)") }
        } else {
            guard written == Set(staged.map(\.rawValue).filter(ids.contains)) else {
                throw SoakFailure("break wrote back regions \(written.sorted()), staged ones are \(staged.map(\.rawValue)): \(trace.steps)")
            }
            if let first = trace.steps.firstIndex(where: Self.isStagedWriteBack),
               let last = trace.steps.lastIndex(where: Self.isStagedWriteBack) {
                guard let noticed = trace.steps.firstIndex(of: .breakNoticed) else { throw SoakFailure("a break without break noticed: \(trace.steps)") }
                // The break's first deregistration (an unpin's come before the break).
                let deregistered = trace.steps[noticed...].firstIndex { if case .deregistered = $0 { true } else { false } } ?? trace.steps.endIndex
                guard noticed < first, last < deregistered else {
                    throw SoakFailure("staged write-back outside the break's window: \(trace.steps)")
                }
            }
        }
        if ending != .truncate { try checkStamps(path, stamp: stamp, regions: pinned) }
    }

    /// The file at its full length (a truncate of the previous cycle emptied it).
    private func prepare(_ path: String) throws(SoakFailure) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SoakFailure("create: errno \(errno)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(Self.fileLength)) == 0 else { throw SoakFailure("ftruncate: errno \(errno)") }
    }

    /// Another open file description asks for the file: the kernel breaks the lease and blocks
    /// the call until DaxPin has released it (or lease-break-time has passed).
    private func breakLease(_ path: String, _ ending: Ending) throws(SoakFailure) {
        switch ending {
        case .truncate:
            guard truncate(path, 0) == 0 else { throw SoakFailure("truncate: errno \(errno)") }
        case .openForWrite, .punchHole:
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw SoakFailure("open: errno \(errno)") }
            defer { close(fd) }
            if ending == .punchHole {
                guard daxpin_punch_hole(fd, 0, 4096) == 0 else { throw SoakFailure("punch: errno \(errno)") }
            }
        case .release:
            break
        }
    }

    /// Every acknowledged stamp is in the file (read back with pread, not through a mapping).
    private func checkStamps(_ path: String, stamp: UInt64, regions: Int) throws(SoakFailure) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SoakFailure("reopen: errno \(errno)") }
        defer { close(fd) }
        for index in 0..<regions {
            var value: UInt64 = 0
            let offset = off_t(index * Self.regionLength + Self.stampOffset)
            guard pread(fd, &value, 8, offset) == 8, value == stamp ^ UInt64(index) else {
                throw SoakFailure("acknowledged write lost: region \(index) holds \(String(value, radix: 16)), not \(String(stamp ^ UInt64(index), radix: 16))")
            }
        }
    }

    /// One progress line (`P holder thread cycle step`), written with one write(2) so lines of
    /// different threads do not interleave.
    private func progress(_ thread: Int, _ cycle: Int, _ step: String) {
        let line = "P \(id) \(thread) \(cycle) \(step)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
    }
}

/// A failed check, with what went wrong.
struct SoakFailure: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// Failures of all threads.
final class SoakFailures: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ failure: String) { list.withLock { $0.append(failure) } }
    var all: [String] { list.withLock { $0 } }
}

/// A thread's body, handed through pthread_create.
final class WorkerStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
