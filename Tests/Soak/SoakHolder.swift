import CLease
import DaxPin
import Glibc
import Synchronization

/// One holder process of the soak: `threads` threads, each running `cycles` cycles on a file of
/// its own. A cycle takes the lease, pins one to three regions (`auto`: the strategy the memory
/// and device allow), writes a stamp into each and
/// persists it (an acknowledged write), maybe unpins one, then ends the lease one of four ways:
/// truncate (to nothing or into the second region), open for write, open + hole punch (each a
/// real kernel lease break, from another thread of this process: the kernel breaks a lease for
/// any other open file description), or release. On a real device a peer (``SoakPeer``) RDMA
/// WRITEs into the regions still pinned from before the ending until the break stops it; a
/// WRITE after the revocation must fail. The cycle then checks the trace's order and that every
/// acknowledged stamp and peer WRITE the file still covers is in it. Progress goes to stdout,
/// one line per step, for the watchdog.
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
    /// What every other truncate ending leaves: the first region and half the second.
    static let truncatedLength = regionLength + regionLength / 2
    /// Peer WRITEs acknowledged before the ending that the cycle waits for (when there are slots).
    static let acknowledgedBeforeEnding = 8

    enum Ending: CaseIterable { case truncate, openForWrite, punchHole, release }

    /// Runs every thread to the end; returns the failures (empty when all went well).
    func run() -> [String] {
        let failures = SoakFailures()
        var handles: [pthread_t] = []
        for thread in 0..<threads {
            let worker = self
            guard let handle = WorkerStart.start({ worker.work(thread: thread, failures: failures) }) else {
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
        var peer: SoakPeer?
        if standIn == nil {
            do { peer = try SoakPeer(device: device) } catch {
                progress(thread, 0, "FAIL")
                failures.add("holder \(id) thread \(thread): peer: \(error)")
                return
            }
        }
        for cycle in 0..<cycles {
            do throws(SoakFailure) {
                let counts = try runCycle(thread: thread, cycle: cycle, path: path, peer: peer)
                progress(thread, cycle, "ok \(counts.checked) \(counts.refused)")
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

    /// What a cycle's peer did: acknowledged WRITEs found in the file, WRITEs after the
    /// revocation that failed.
    struct PeerCounts { var checked = 0; var refused = 0 }

    /// A peer WRITE's tag: a marker (writer or probe), holder, thread, cycle, region, slot.
    static func tag(_ marker: UInt8, holder: Int, thread: Int, cycle: Int, region: Int, slot: Int) -> UInt64 {
        UInt64(marker) << 56 | UInt64(holder & 0xff) << 48 | UInt64(thread & 0xff) << 40
            | UInt64(cycle & 0xff_ffff) << 16 | UInt64(region & 0xff) << 8 | UInt64(slot & 0xff)
    }

    private func runCycle(thread: Int, cycle: Int, path: String, peer: SoakPeer?) throws(SoakFailure) -> PeerCounts {
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
        let truncateTo = (cycle / Ending.allCases.count) % 2 == 0 ? 0 : Self.truncatedLength

        // The peer: two connected queue pairs attached to the lease, WRITEs into every region still pinned.
        var targets: [SoakWriter.Target] = []
        let writer: SoakWriter? = peer == nil ? nil : SoakWriter()
        defer {  // a failed cycle leaves no writer behind (its WRITEs end within their timeout)
            writer?.requestStop()
            _ = writer?.join(timeout: SoakPeer.writeTimeout * 2)
        }
        if let peer, let writer {
            progress(thread, cycle, "peer")
            let pair: (requester: QueuePair, responder: QueuePair)
            do { pair = try peer.connectedPair() } catch { throw SoakFailure("peer queue pairs: \(error)") }
            // The holder's side first, so that nothing lands after the stop; then the client's,
            // whose WRITEs would otherwise wait out their retries.
            _ = lease.attach { pair.responder.moveToError(); pair.requester.moveToError() }
            for (index, region) in regions.enumerated() {
                do { targets.append(SoakWriter.Target(region: index, remote: try lease.withRegion(region) { $0.memoryRegion.remote })) }
                catch { throw SoakFailure("region \(index): \(error)") }
            }
            let holder = id
            guard writer.start(peer: peer, requester: pair.requester, targets: targets, tag: { region, slot in
                Self.tag(0xD5, holder: holder, thread: thread, cycle: cycle, region: region, slot: slot)
            }) else { throw SoakFailure("peer: pthread_create failed") }
            let wanted = min(Self.acknowledgedBeforeEnding, targets.count * SoakPeer.slotsPerRegion)
            guard writer.wait(timeout: bound, until: { $0.acks.count >= wanted || $0.finished }) else {
                throw SoakFailure("peer: fewer than \(wanted) WRITEs acknowledged within \(bound)")
            }
            if let failure = writer.snapshot.failure { throw SoakFailure("peer WRITE failed before the ending: \(failure)") }
        }

        progress(thread, cycle, "end \(ending)")
        let endingStarted = ContinuousClock.now
        let trace: RevocationTrace
        if ending == .release {
            // An orderly end: the peer stops, the regions are made durable (staged ones written
            // back: a release leaves that to the application), then the lease goes.
            if let writer {
                writer.requestStop()
                guard writer.join(timeout: bound) else { throw SoakFailure("peer: the writer did not stop within \(bound)") }
                for (index, region) in regions.enumerated() {
                    do { try lease.withRegion(region) { try $0.persist() } } catch { throw SoakFailure("persist region \(index): \(error)") }
                }
            }
            trace = lease.release()
        } else {
            try breakLease(path, ending, truncateTo: truncateTo)
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
            + (peer == nil ? [] : [.queuePairsStopped(count: 1)])
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

        var counts = PeerCounts()
        var probe: (region: Int, tag: UInt64)?
        if let peer, let writer {
            progress(thread, cycle, "peer check")
            // The break stopped the queue pairs: the writer ends with a failed WRITE (or ran out of slots).
            guard writer.join(timeout: bound) else { throw SoakFailure("peer: the writer did not stop within \(bound) of the revocation") }
            let outcome = writer.snapshot
            if let failedAt = outcome.failedAt, failedAt < endingStarted {
                throw SoakFailure("peer WRITE failed before the ending: \(outcome.failure.map(String.init(describing:)) ?? "?")")
            }
            // A WRITE after the revocation, on a fresh connection, to the old keys: it must fail.
            let target = targets[cycle % targets.count]
            let tag = Self.tag(0xBE, holder: id, thread: thread, cycle: cycle, region: target.region, slot: 0)
            let pair: (requester: QueuePair, responder: QueuePair)
            do { pair = try peer.connectedPair() } catch { throw SoakFailure("probe queue pairs: \(error)") }
            let completion = peer.write(tag: tag, to: target.remote, offset: SoakPeer.probeOffset, on: pair.requester)
            guard completion != .success else {
                throw SoakFailure("a peer WRITE after the revocation succeeded (region \(target.region), rkey \(target.remote.rkey))")
            }
            counts.refused = 1 + (outcome.failure == nil ? 0 : 1)
            probe = (target.region, tag)
        }
        counts.checked = try checkFile(path, ending: ending, truncatedTo: truncateTo, stamp: stamp, stamps: pinned,
                                       acks: writer?.snapshot.acks ?? [], probe: probe)
        return counts
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
    private func breakLease(_ path: String, _ ending: Ending, truncateTo: Int) throws(SoakFailure) {
        switch ending {
        case .truncate:
            guard truncate(path, off_t(truncateTo)) == 0 else { throw SoakFailure("truncate: errno \(errno)") }
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

    /// Every acknowledged stamp and peer WRITE is in the file where the file still covers it
    /// (read back with pread, not through a mapping), and the WRITE after the revocation is not.
    /// Returns the peer WRITEs checked.
    private func checkFile(_ path: String, ending: Ending, truncatedTo: Int, stamp: UInt64, stamps: Int,
                           acks: [SoakWriter.Ack], probe: (region: Int, tag: UInt64)?) throws(SoakFailure) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SoakFailure("reopen: errno \(errno)") }
        defer { close(fd) }
        let size = ending == .truncate ? truncatedTo : Self.fileLength
        var info = stat()
        guard fstat(fd, &info) == 0, Int(info.st_size) == size else {
            throw SoakFailure("after \(ending) the file is \(info.st_size) bytes, not \(size)")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        guard size == 0 || pread(fd, &bytes, size, 0) == size else { throw SoakFailure("pread: errno \(errno)") }
        func word(_ offset: Int) -> UInt64 { bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) } }
        for index in 0..<stamps where index * Self.regionLength + Self.stampOffset + 8 <= size {
            let value = word(index * Self.regionLength + Self.stampOffset)
            guard value == stamp ^ UInt64(index) else {
                throw SoakFailure("acknowledged write lost: region \(index) holds \(String(value, radix: 16)), not \(String(stamp ^ UInt64(index), radix: 16))")
            }
        }
        var checked = 0
        var lost: [String] = []
        for ack in acks {
            let offset = ack.region * Self.regionLength + SoakPeer.firstSlotOffset + ack.slot * SoakPeer.slotLength
            guard offset + SoakPeer.slotLength <= size else { continue }  // truncated away: nothing to check
            checked += 1
            let pattern = SoakPeer.pattern(ack.tag)
            if let bad = pattern.indices.first(where: { word(offset + $0 * 8) != pattern[$0] }) {
                lost.append("region \(ack.region) slot \(ack.slot) word \(bad) holds \(String(word(offset + bad * 8), radix: 16)), not \(String(pattern[bad], radix: 16))")
            }
        }
        guard lost.isEmpty else {
            throw SoakFailure("\(lost.count) of \(checked) acknowledged peer WRITEs lost after \(ending): \(lost.prefix(3).joined(separator: "; "))")
        }
        if let probe {
            let offset = probe.region * Self.regionLength + SoakPeer.probeOffset
            if offset + SoakPeer.slotLength <= size, word(offset) == SoakPeer.pattern(probe.tag)[0] {
                throw SoakFailure("a peer WRITE after the revocation landed in the file (region \(probe.region))")
            }
        }
        return checked
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

    /// Starts `body` on a new joinable thread: its handle, or nil if the system refused one.
    static func start(_ body: @escaping () -> Void) -> pthread_t? {
        let box = Unmanaged.passRetained(WorkerStart(body))
        var handle = pthread_t()
        guard pthread_create(&handle, nil, { raw in
            Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box.toOpaque()) == 0 else {
            box.release()
            return nil
        }
        return handle
    }
}
