@testable import DaxPin
import Foundation
import Glibc
import Synchronization
import CLease
import Logging
import Testing

extension DaxPin {
    /// Another process truncates, opens or punches a leased file: the breaker blocks until
    /// DaxPin has revoked in dependency order, which happens well before lease-break-time.
    /// Runs on the host with recorded verbs and in the testbed on rxe0 (same code).
    @Suite struct LeaseBreak {
        enum Kind: String, CaseIterable, CustomTestStringConvertible {
            case truncate, openForWrite, punchHole
            var testDescription: String { rawValue }
            func start(_ path: String) throws -> Breaker {
                switch self {
                case .truncate: try Breaker.truncate(path)
                case .openForWrite: try Breaker.openForWrite(path)
                case .punchHole: try Breaker.punchHole(path)
                }
            }
        }

        static var directories: [String] { [HostDirs.tmpfs] + HostDirs.others }

        @Test("break revokes in order and unblocks the breaker", arguments: Kind.allCases, directories)
        func breakRevokesInOrder(kind: Kind, directory: String) async throws {
            let file = try ScratchFile(in: directory, size: 1 << 20)
            let recording = RecordingVerbs()
            let device = try testDevice(recording)
            let quiesced = Mutex<Int>(0)
            var lease = try LayoutLease(path: file.path, access: .readWrite, options: LeaseOptions(quiesceBudget: .seconds(2)) { _ in
                quiesced.withLock { $0 += 1 }
            })
            #expect(lease.kind == .write)
            let first = try lease.pin(offset: 0, length: 256 << 10, on: device)
            let second = try lease.pin(offset: 512 << 10, length: 256 << 10, on: device)
            try lease.withRegion(first) { region in
                try region.withMutableBytes { $0.storeBytes(of: 0x42, toByteOffset: 0, as: UInt8.self) }
            }
            let keys = try lease.withRegion(second) { $0.memoryRegion.remote }
            #expect(keys.length == 256 << 10)
            let staged = try [first, second].map { id in try lease.withRegion(id) { $0.strategy } == .staged }

            let breaker = try kind.start(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)), "the breaker never finished")
            #expect(result.status == 0)
            // lease-break-time is 45 s by default; revocation must not get anywhere near it.
            #expect(result.blocked < .seconds(5), "breaker blocked \(result.blocked)")
            #expect(eventually { lease.state.isRevoked })
            #expect(quiesced.withLock { $0 } == 1)
            #expect(lease.trace.reason == .leaseBreak)
            // A staged region (fs-dax without verified ODP) is written back whole before deregistration.
            let wroteBack: [RevocationTrace.Step] = staged.enumerated().compactMap { index, isStaged in
                isStaged ? .wroteBack(region: index + 1, bytes: 256 << 10) : nil
            }
            #expect(lease.trace.steps == [.breakNoticed, .quiesceStarted, .quiesceFinished] + wroteBack + [
                .deregistered(region: 1), .deregistered(region: 2),
                .unmapped(region: 1), .unmapped(region: 2),
                .leaseReleased, .closed,
            ])
            if !Testbed.isActive {
                // The recorder saw both MRs deregistered while their pages were still mapped.
                let deregistrations = recording.calls.filter { if case .deregister = $0 { true } else { false } }
                #expect(deregistrations.count == 2)
                #expect(deregistrations.allSatisfy { if case .deregister(_, stillMapped: true) = $0 { true } else { false } })
                #expect(recording.liveRegistrations == 0)
            } else {
                Testbed.ran(.objectsOnly)
            }
            #expect(throws: DaxPinError.revoked(path: file.path)) {
                try lease.withRegion(first) { _ in }
            }
            if kind == .truncate { #expect(file.size == 0) }
            lease.release()
        }

        /// A lease without a quiesce handler is revoked on the watcher thread, which queues the
        /// registry write after F_UNLCK (it runs on the registry's queue 5 ms later). Once the
        /// watcher left that write for itself, and a blocking signalfd kept it in read(2) until
        /// the next signal: `daxpin ls` kept listing the revoked lease.
        @Test("after a break the watcher goes back to waiting and withdraws the lease from the registry")
        func watcherWithdrawsBrokenLease() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let device = try testDevice()
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(offset: 0, length: 64 << 10, on: device)
            PinRegistry.shared.flush()
            let record = try #require(PinRegistry.shared.directory) + "/\(getpid()).json"
            let name = String(file.path.split(separator: "/").last!)
            func listed() -> Bool {
                guard let text = try? String(contentsOfFile: record, encoding: .utf8) else { return false }
                return text.contains(name)
            }
            #expect(listed(), "the held lease should be in \(record)")
            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)), "the breaker never finished")
            #expect(result.status == 0)
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            // Written 5 ms after the break; seconds of slack for a loaded machine.
            #expect(eventually(timeout: .seconds(5)) { !listed() }, "\(record) still lists the revoked lease")
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
            lease.release()
        }

        /// The watcher revokes one lease after another; the log handler is the application's
        /// code and may block (stderr into a full pipe, a slow disk). Its lines are written on a
        /// queue of their own: while the first break's line hangs, a second lease's break is
        /// revoked as promptly as the first, and both lines follow, in order, once it unblocks.
        @Test("a log handler that blocks holds up no revocation")
        func blockingLogHandlerDelaysNoRevocation() throws {
            let gate = LogGate()
            defer { gate.open() }  // never leave the log queue blocked for later tests
            let logger = Logger(label: "DaxPin.test") { _ in GatedLogHandler(gate: gate) }
            let device = try testDevice()
            let files = try (0..<2).map { _ in try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10) }
            var first = try LayoutLease(path: files[0].path, options: LeaseOptions(logger: logger))
            _ = try first.pin(on: device)
            var second = try LayoutLease(path: files[1].path, options: LeaseOptions(logger: logger))
            _ = try second.pin(on: device)

            let firstBreak = try #require(try Breaker.truncate(files[0].path).wait(timeout: .seconds(30)))
            #expect(firstBreak.status == 0)
            #expect(firstBreak.blocked < .seconds(5), "breaker blocked \(firstBreak.blocked)")
            #expect(gate.waitUntilHeld(timeout: .seconds(10)), "the first break's line never reached the handler")
            // With the line written on the watcher, this breaker would wait for the gate (or for
            // the kernel's lease-break-time): the gate opens only after it returned.
            let secondBreak = try #require(try Breaker.truncate(files[1].path).wait(timeout: .seconds(30)),
                                           "the second break was held up by the blocked log handler")
            #expect(secondBreak.status == 0)
            #expect(secondBreak.blocked < .seconds(5), "breaker blocked \(secondBreak.blocked)")
            #expect(second.waitUntilRevoked(timeout: .seconds(10)) != nil)
            #expect(gate.lines.isEmpty, "no line may be written while the handler blocks: \(gate.lines)")

            gate.open()
            RevocationLog.drain()
            #expect(gate.lines == ["lease break: revoked \(files[0].path)", "lease break: revoked \(files[1].path)"])
            for lease in [first.trace, second.trace] {
                #expect(lease.steps.first == .breakNoticed && lease.steps.last == .closed)
                #expect(zip(lease.entries, lease.entries.dropFirst()).allSatisfy { $0.at <= $1.at },
                        "steps out of time order: \(lease)")
            }
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
            first.release()
            second.release()
        }

        @Test("a quiesce handler that overruns is overridden before the kernel gives up")
        func hungQuiesceIsOverridden() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let device = try testDevice()
            let release = DispatchSemaphore(value: 0)
            var lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .milliseconds(300)) { _ in
                _ = release.wait(timeout: .now() + 20)  // hangs far past the budget
            })
            _ = try lease.pin(on: device)
            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)))
            release.signal()
            #expect(result.blocked >= .milliseconds(300))
            #expect(result.blocked < .seconds(5), "breaker blocked \(result.blocked)")
            #expect(eventually { lease.state.isRevoked })
            let steps = lease.trace.steps
            #expect(steps.prefix(3) == [.breakNoticed, .quiesceStarted, .quiesceOverran])
            #expect(Array(steps.suffix(4)) == [.deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        /// The global Dispatch pool has about as many threads as CPUs; an application may fill
        /// it with blocking work. The revocation and its quiesce handler run on threads of their
        /// own, so the handler still runs at once and the breaker is released promptly.
        @Test("a quiesce handler runs even while the application fills the Dispatch pool")
        func quiesceRunsWithDispatchPoolFull() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let ran = Atomic<Bool>(false)
            let lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(3)) { _ in
                ran.store(true, ordering: .releasing)
            })
            let release = DispatchSemaphore(value: 0)
            let blockers = max(4, 4 * ProcessInfo.processInfo.activeProcessorCount)
            let started = Atomic<Int>(0)
            for _ in 0..<blockers {
                DispatchQueue.global().async {
                    started.add(1, ordering: .relaxed)
                    _ = release.wait(timeout: .now() + 30)
                }
            }
            defer { for _ in 0..<blockers { release.signal() } }
            #expect(eventually { started.load(ordering: .relaxed) > 0 })
            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)), "the breaker never finished")
            #expect(result.status == 0)
            #expect(result.blocked < .seconds(2), "breaker blocked \(result.blocked)")
            let handlerRan = ran.load(ordering: .acquiring)
            #expect(handlerRan, "the quiesce handler did not run")
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            #expect(lease.trace.steps.contains(.quiesceFinished))
            #expect(!lease.trace.steps.contains(.quiesceOverran))
            lease.release()
        }

        /// The storage server's pattern with a strong capture: the handler holds a bridge that holds
        /// the lease, which holds the handler. The teardown drops the handler, so once a break
        /// has revoked the lease, letting go of the bridge frees both.
        @Test("a quiesce handler that holds its own lease does not leak it after a break")
        func quiesceHandlerCycleIsBrokenAtRevocation() throws {
            final class Holder: Sendable {
                let lease: Mutex<LayoutLease?>
                init(_ lease: consuming sending LayoutLease) { self.lease = Mutex(lease) }
            }
            final class Bridge: Sendable {
                let holder = Mutex<Holder?>(nil)
                let quiesced = Atomic<Int>(0)
            }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            weak var weakBridge: Bridge?
            weak var weakCore: LeaseCore?
            do {
                let bridge = Bridge()
                weakBridge = bridge
                let lease = try LayoutLease(path: file.path, options: LeaseOptions(quiesceBudget: .seconds(2)) { _ in
                    bridge.quiesced.add(1, ordering: .relaxed)  // a strong capture, on purpose
                })
                weakCore = lease.core
                let holder = Holder(lease)
                bridge.holder.withLock { $0 = holder }
                let breaker = try Breaker.truncate(file.path)
                let result = try #require(breaker.wait(timeout: .seconds(30)), "the breaker never finished")
                #expect(result.status == 0)
                let revoked = holder.lease.withLock { $0?.waitUntilRevoked(timeout: .seconds(10)) }
                #expect(revoked?.steps.contains(.quiesceFinished) == true)
                #expect(bridge.quiesced.load(ordering: .relaxed) == 1)
            }
            // The watcher and the registry let go of a revoked lease shortly after the teardown.
            #expect(eventually { weakBridge == nil && weakCore == nil },
                    "the revoked lease and its handler's bridge are still alive: the handler was kept")
        }

        @Test("lease events arrive as an AsyncSequence")
        func eventsAsyncSequence() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(on: try testDevice())
            let events = lease.events
            let breaker = try Breaker.openForWrite(file.path)
            var seen: [String] = []
            for await event in events {
                switch event {
                case .breakNoticed: seen.append("break")
                case .revoked(let trace): seen.append("revoked \(trace.steps.count)")
                }
            }
            _ = breaker.wait()
            #expect(seen == ["break", "revoked 5"])
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("a read lease on a read-only pin breaks on open for write")
        func readLeaseBreaks() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let recording = RecordingVerbs()
            var lease = try LayoutLease(path: file.path, access: .readOnly)
            #expect(lease.kind == .read)
            let id = try lease.pin(on: try testDevice(recording))
            if !Testbed.isActive {
                // Narrowest access: peers may only read a read-only pin.
                guard case .register(_, onDemand: false, let access) = recording.calls.first else {
                    Issue.record("no registration recorded")
                    return
                }
                #expect(access == [.remoteRead])
            }
            // Kernels before 6.2 register read-only memory with FOLL_FORCE|FOLL_WRITE, which a
            // read-only shared file mapping refuses (EFAULT): there `auto` stages instead.
            let expected: Strategy = Testbed.isActive && !KernelBehaviour.running.pinsReadOnlySharedFileMappings ? .staged : .pinned
            #expect(try lease.withRegion(id) { $0.strategy } == expected)
            #expect(throws: DaxPinError.self) { try lease.withRegion(id) { try $0.withMutableBytes { _ in } } }
            let breaker = try Breaker.openForWrite(file.path)
            let result = try #require(breaker.wait())
            #expect(result.blocked < .seconds(5))
            #expect(eventually { lease.state.isRevoked })
            #expect(lease.trace.steps.contains(.leaseReleased))
            if Testbed.isActive { Testbed.ran(.objectsOnly) }
        }

        @Test("break signals are directed at the watcher thread")
        func signalOwnerIsWatcherThread() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let lease = try LayoutLease(path: file.path)
            var type: Int32 = -1, owner: pid_t = 0
            #expect(daxpin_get_owner(lease.core.fd, &type, &owner) == 0)
            #expect(type == 0 /* F_OWNER_TID */)
            #expect(owner == LeaseWatcher.shared.threadID)
            #expect(owner != getpid())
        }

        /// Between F_SETLEASE and F_SETOWN_EX the whole process owns the descriptor, so a break
        /// signal can land on any thread. The handler re-queues it to the watcher, which then
        /// revokes well before the kernel's lease-break time. Here the owner is set back to the
        /// process, so the signal reaches a thread that does not block it.
        @Test("a break signal that reaches another thread is forwarded to the watcher")
        func strayBreakSignalIsForwarded() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let lease = try LayoutLease(path: file.path)
            #expect(fcntl(lease.core.fd, F_SETOWN, getpid()) == 0)
            var type: Int32 = -1, owner: pid_t = 0
            #expect(daxpin_get_owner(lease.core.fd, &type, &owner) == 0)
            #expect(type == 1 /* F_OWNER_PID */ && owner == getpid())
            let breaker = try Breaker.truncate(file.path)
            let result = try #require(breaker.wait(timeout: .seconds(30)), "the breaker never finished")
            #expect(result.status == 0)
            // Unforwarded, the signal would be lost and the kernel would wait out lease-break-time.
            #expect(result.blocked < .seconds(5), "breaker blocked \(result.blocked)")
            #expect(lease.waitUntilRevoked(timeout: .seconds(10)) != nil)
            #expect(lease.trace.steps.contains(.breakNoticed))
            #expect(file.size == 0)
        }

        /// The watcher trusts a break signal from the kernel without `F_GETLEASE`, except for a
        /// descriptor number released while a signal for it may still be queued. Here such a
        /// stale signal is forced: the watcher is held inside another revocation while lease B
        /// is broken and then released by hand, and lease C gets B's number before the watcher
        /// takes B's signal. C must survive it; C's own break later is trusted and revokes it.
        @Test("a stale break signal for a reused descriptor number does not revoke the new lease")
        func staleSignalForReusedNumberIsIgnored() throws {
            let watcher = LeaseWatcher.shared
            let fileA = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let fileB = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            let fileC = try ScratchFile(in: HostDirs.tmpfs, size: 4096)
            // A's revocation runs on the watcher and waits in its stop hook: signals queue up.
            let leaseA = try LayoutLease(path: fileA.path)
            let inHook = DispatchSemaphore(value: 0), gate = DispatchSemaphore(value: 0)
            _ = leaseA.core.attach {
                inHook.signal()
                _ = gate.wait(timeout: .now() + 30)
            }
            var gateOpen = false
            defer { if !gateOpen { gate.signal() } }
            let breakerA = try Breaker.truncate(fileA.path)
            try #require(inHook.wait(timeout: .now() + 10) == .success, "the watcher never started revoking A")

            let leaseB = try LayoutLease(path: fileB.path)
            let number = leaseB.core.fd
            let breakerB = try Breaker.truncate(fileB.path)
            try #require(eventually(timeout: .seconds(10)) { leaseB.core.kernelIsBreaking() }, "B was never broken")
            _ = leaseB.release()  // by hand: the breaker goes on, B's signal stays queued
            #expect(breakerB.wait(timeout: .seconds(10))?.status == 0)

            // C takes the lowest free number: fill the holes below B's (a file the library
            // closed meanwhile leaves one) so that C lands on it. The registry's writer, which
            // B's release woke, opens two descriptors while it writes: let it finish first, or
            // it can take B's number between the fill and C's open.
            PinRegistry.shared.flush()
            var fillers: [Int32] = []
            defer { fillers.forEach { close($0) } }
            while fillers.count < 256 {
                let filler = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard filler >= 0, filler < number else {
                    if filler >= 0 { close(filler) }
                    break
                }
                fillers.append(filler)
            }
            let leaseC = try LayoutLease(path: fileC.path)
            try #require(leaseC.core.fd == number, "C got descriptor \(leaseC.core.fd), not B's \(number)")
            let signals = SignalCounts()
            Interleavings.set(signals.count)
            defer { Interleavings.clear() }
            gate.signal()
            gateOpen = true
            #expect(breakerA.wait(timeout: .seconds(10))?.status == 0)
            #expect(leaseA.waitUntilRevoked(timeout: .seconds(10)) != nil)
            // The watcher takes B's stale signal next, checks it against the kernel and lets C be.
            #expect(eventually(timeout: .seconds(10)) { signals.verified > 0 })
            #expect(eventually(timeout: .seconds(10)) { watcher.releasedCount == 0 }, "released numbers never forgotten")
            #expect(leaseC.state == .held)
            #expect(!leaseC.trace.steps.contains(.breakNoticed))

            let trusted = signals.trusted
            let breakerC = try Breaker.truncate(fileC.path)
            let result = try #require(breakerC.wait(timeout: .seconds(30)), "C's breaker never finished")
            #expect(result.status == 0)
            #expect(result.blocked < .seconds(5), "C's breaker blocked \(result.blocked)")
            #expect(leaseC.waitUntilRevoked(timeout: .seconds(10)) != nil)
            #expect(leaseC.trace.steps.first == .breakNoticed)
            #expect(signals.trusted > trusted)
        }
    }
}

/// Holds every log line at a gate until it opens; counts the lines written after it.
final class LogGate: Sendable {
    private let state = Mutex<(held: Int, open: Bool, lines: [String])>((0, false, []))
    private let opened = DispatchSemaphore(value: 0)

    /// Blocks the calling thread until `open()` (at most 60 s), then records the line.
    func pass(_ line: String) {
        let mustWait = state.withLock { s -> Bool in
            s.held += 1
            return !s.open
        }
        if mustWait {
            _ = opened.wait(timeout: .now() + 60)
            opened.signal()  // let the next waiter through too
        }
        state.withLock { $0.lines.append(line) }
    }

    func open() {
        let wasOpen = state.withLock { s in
            defer { s.open = true }
            return s.open
        }
        if !wasOpen { opened.signal() }
    }

    /// Whether a line is waiting at (or went through) the gate within `timeout`.
    func waitUntilHeld(timeout: Duration) -> Bool {
        eventually(timeout: timeout) { state.withLock { $0.held > 0 } }
    }

    var lines: [String] { state.withLock { $0.lines } }
}

/// A log handler whose every line waits at a `LogGate`.
struct GatedLogHandler: LogHandler {
    let gate: LogGate
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice  // the break line; not the debug lines of taking and pinning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        gate.pass("\(event.message) \(event.metadata?["path"].map { "\($0)" } ?? "")")
    }
}

/// Counts the signals the lease watcher took, by how it judged them (through `Interleavings`).
final class SignalCounts: Sendable {
    private let counts = Mutex<(trusted: Int, verified: Int)>((0, 0))
    var trusted: Int { counts.withLock { $0.trusted } }
    var verified: Int { counts.withLock { $0.verified } }

    var count: @Sendable (InterleavingPoint) -> Void {
        { [self] point in
            switch point {
            case .signalTrusted: counts.withLock { $0.trusted += 1 }
            case .signalVerified: counts.withLock { $0.verified += 1 }
            default: break
            }
        }
    }
}
