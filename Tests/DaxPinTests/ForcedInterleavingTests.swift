@testable import DaxPin
import Foundation
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// Races forced, not hoped for: a test hook (`Interleavings`) holds a thread at a fixed point
    /// of `pin`, `unpin` or a revocation while a real lease break (another process's truncate)
    /// runs to completion. Each test asserts the order, the result, and that nothing leaked.
    @Suite(.serialized) struct ForcedInterleavings {
        init() { Interleavings.clear() }

        @Test("a break while a pin is in flight: the break tears down what is recorded, the pin undoes its own and throws revoked",
              arguments: [InterleavingPoint.pinMapped, .pinPopulated, .pinRegistered])
        func breakDuringPin(point: InterleavingPoint) throws {
            defer { Interleavings.clear() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            let device = RDMADevice(provider: recording)
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(offset: 0, length: 64 << 10, on: device)
            let outcome = BreakAt(point, core: lease.core, breaking: file.path)
            Interleavings.set(outcome.hook)
            #expect(throws: DaxPinError.revoked(path: file.path)) {
                _ = try lease.pin(offset: 64 << 10, length: 64 << 10, on: device)
            }
            Interleavings.clear()
            outcome.check()
            #expect(lease.trace.steps == [.breakNoticed, .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            // Every registration made, the in-flight pin's included, was deregistered while still mapped.
            #expect(recording.liveRegistrations == 0)
            #expect(recording.calls.allSatisfy { if case .deregister(_, false) = $0 { false } else { true } })
            _ = lease.release()
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before)), mappings \(before.mappings) -> \(after.mappings)")
        }

        @Test("a break while unpin is starting: the break tears the region down once, unpin throws revoked")
        func breakDuringUnpin() throws {
            defer { Interleavings.clear() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(offset: 0, length: 64 << 10, on: RDMADevice(provider: recording))
            let outcome = BreakAt(.unpinStarting, core: lease.core, breaking: file.path)
            Interleavings.set(outcome.hook)
            #expect(throws: DaxPinError.revoked(path: file.path)) { try lease.unpin(id) }
            Interleavings.clear()
            outcome.check()
            #expect(lease.trace.steps == [.breakNoticed, .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            #expect(recording.calls.filter { if case .deregister = $0 { true } else { false } }.count == 1)
            _ = lease.release()
            #expect(ResourceCount.after(expecting: before) == before)
        }

        @Test("release() and a break race: one teardown, for the release; the breaker goes on")
        func releaseRacesBreak() throws {
            defer { Interleavings.clear() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(offset: 0, length: 64 << 10, on: RDMADevice(provider: recording))
            let (core, path) = (lease.core, file.path)
            let breaker = Mutex<Breaker?>(nil)
            let breakStarted = Atomic<Bool>(false)
            Interleavings.set { point in
                guard point == .revocationBegan(.released), breaker.withLock({ $0 == nil }) else { return }
                let started = try? Breaker.truncate(path)
                breaker.withLock { $0 = started }
                // Hold the release until the kernel is breaking the lease (its signal is then on its way).
                breakStarted.store(eventually(timeout: .seconds(10)) { core.kernelIsBreaking() }, ordering: .relaxed)
            }
            let trace = lease.release()
            Interleavings.clear()
            let forced = breakStarted.load(ordering: .relaxed)
            #expect(forced, "the kernel never started breaking the lease: no race was forced")
            #expect(trace.reason == .released)
            #expect(trace.steps == [.deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            let started = try #require(breaker.withLock { $0 }, "the breaker did not start")
            #expect(started.wait(timeout: .seconds(30))?.status == 0, "the breaker never went on")
            #expect(recording.liveRegistrations == 0)
            #expect(ResourceCount.after(expecting: before) == before)
        }

        @Test("two breaks of one lease: the second signal, and a second breaker, find it revoking; one teardown")
        func twoBreaks() throws {
            defer { Interleavings.clear() }
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            let before = ResourceCount.now()
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(offset: 0, length: 64 << 10, on: RDMADevice(provider: recording))
            let (fd, path) = (lease.core.fd, file.path)
            let second = Mutex<Breaker?>(nil)
            Interleavings.set { point in
                guard point == .revocationBegan(.leaseBreak), second.withLock({ $0 == nil }) else { return }
                // On the watcher thread, mid-revocation: the same break signalled again, twice, and
                // another process that wants the file.
                let watcher = LeaseWatcher.shared
                try? Syscalls.queueSignal(watcher.threadID, watcher.signal, fd)
                try? Syscalls.queueSignal(watcher.threadID, watcher.signal, fd)
                let started = try? Breaker.openForWrite(path)
                second.withLock { $0 = started }
            }
            let first = try Breaker.truncate(file.path)
            #expect(first.wait(timeout: .seconds(30))?.status == 0)
            let revoked = lease.waitUntilRevoked(timeout: .seconds(10))
            Interleavings.clear()
            let trace = try #require(revoked)
            #expect(trace.steps == [.breakNoticed, .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
            let other = try #require(second.withLock { $0 }, "the second breaker did not start")
            #expect(other.wait(timeout: .seconds(30))?.status == 0)
            #expect(recording.liveRegistrations == 0)
            _ = lease.release()
            #expect(ResourceCount.after(expecting: before) == before)
            try expectWatcherStillBreaks()
        }

        @Test("a storm of stale and foreign signals changes nothing; a real break still revokes")
        func signalStorm() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 256 << 10)
            let recording = RecordingVerbs()
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(offset: 0, length: 64 << 10, on: RDMADevice(provider: recording))
            let watcher = LeaseWatcher.shared
            let fd = lease.core.fd
            var queued = 0
            for index in 0..<2000 {
                // The lease's own number (not sent by the kernel, and no break pending), numbers
                // nobody watches, and negative ones.
                let value: Int32 = switch index % 3 {
                case 0: fd
                case 1: 100_000 + Int32(index)
                default: -Int32(index) - 2
                }
                if (try? Syscalls.queueSignal(watcher.threadID, watcher.signal, value)) != nil { queued += 1 }
            }
            #expect(queued > 100, "the signal queue took only \(queued)")
            // Let the watcher take every signal of the storm.
            #expect(eventually(timeout: .seconds(20)) { !signalPending(watcher.signal, onThread: watcher.threadID) })
            #expect(lease.state == .held)
            let length = try lease.withRegion(id) { $0.length }
            #expect(length == 64 << 10)
            let breaker = try Breaker.truncate(file.path)
            #expect(breaker.wait(timeout: .seconds(30))?.status == 0)
            let revoked = lease.waitUntilRevoked(timeout: .seconds(10))
            let trace = try #require(revoked)
            #expect(trace.steps == [.breakNoticed, .deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed])
        }
    }
}

/// A hook that, the first time a thread reaches `point`, has another process truncate `path`
/// and waits (on that thread) until the lease is revoked and the breaker has gone on.
private final class BreakAt: Sendable {
    let point: InterleavingPoint
    let core: LeaseCore
    let path: String
    private let result = Mutex<(fired: Bool, revoked: Bool, breakerDone: Bool)>((false, false, false))

    init(_ point: InterleavingPoint, core: LeaseCore, breaking path: String) {
        self.point = point
        self.core = core
        self.path = path
    }

    var hook: @Sendable (InterleavingPoint) -> Void {
        { [self] reached in
            guard reached == point, !result.withLock({ $0.fired }) else { return }
            result.withLock { $0.fired = true }
            let breaker = try? Breaker.truncate(path)
            let revoked = core.waitUntilRevoked(timeout: .seconds(20)) != nil
            let done = breaker?.wait(timeout: .seconds(30))?.status == 0
            result.withLock { $0.revoked = revoked; $0.breakerDone = done }
        }
    }

    func check(sourceLocation: SourceLocation = #_sourceLocation) {
        let (fired, revoked, done) = result.withLock { $0 }
        #expect(fired, "the thread never reached \(point)", sourceLocation: sourceLocation)
        #expect(revoked, "the break did not revoke while the thread was held", sourceLocation: sourceLocation)
        #expect(done, "the breaker did not go on", sourceLocation: sourceLocation)
    }
}

/// Whether `signal` is pending for thread `tid` of this process (its SigPnd mask).
private func signalPending(_ signal: Int32, onThread tid: pid_t) -> Bool {
    let status = readTextFile("/proc/self/task/\(tid)/status")
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigPnd:") }),
          let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return true }
    return mask & (1 << UInt64(signal - 1)) != 0
}

/// A fresh lease still breaks and revokes: the watcher survived what the test did to it.
private func expectWatcherStillBreaks() throws {
    let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
    let lease = try LayoutLease(path: file.path)
    let breaker = try Breaker.truncate(file.path)
    #expect(breaker.wait(timeout: .seconds(30))?.status == 0)
    #expect(lease.waitUntilRevoked(timeout: .seconds(10))?.steps.first == .breakNoticed)
}
