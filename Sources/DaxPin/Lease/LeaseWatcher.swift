import CLease
import Dispatch
import Glibc
import Synchronization

/// The process-wide thread that receives lease-break signals.
///
/// Every lease's descriptor gets `F_SETSIG` = a realtime signal and `F_SETOWN_EX` =
/// this thread, which blocks that signal and sleeps in `sigwaitinfo`: no cost while idle.
/// The signal's `si_fd` names the lease. A lease without a quiesce handler is revoked
/// on this thread at once; one with a handler is revoked on a thread of its own, so a slow
/// handler never delays another lease's revocation.
///
/// A signal may be stale: sent for a lease that was released before the watcher took the
/// signal, whose descriptor number a new lease now has. Such a signal must not revoke the new
/// lease. A released number is therefore remembered until the watcher has seen its signal
/// queue empty; while it is, a signal for that number is checked with `F_GETLEASE`. Other
/// signals the kernel sent are trusted without that system call, which would lengthen every
/// break. Realtime signals of one number
/// come in the order they were sent, so an empty queue means every signal sent before the
/// release has been taken.
final class LeaseWatcher: Sendable {
    /// Started on first use.
    static let shared = LeaseWatcher()

    /// The realtime signal used for lease breaks (SIGRTMIN + 6 leaves room for other users).
    let signal: Int32
    /// The watcher thread's kernel thread id (`F_OWNER_TID` target).
    let threadID: pid_t
    private let table = AnnotatedMutex<WatchTable>(WatchTable())
    /// The value of the signal queued to wake the watcher after a release on another thread.
    static let releaseMarker: Int32 = -1

    private struct WatchTable {
        var leases = LeasesByDescriptor()
        /// Descriptor numbers released while a signal for them may still be queued, with the
        /// release's sequence number.
        var released: [Int32: UInt64] = [:]
        var releases: UInt64 = 0
    }

    private init() {
        let signal = daxpin_sigrtmin() + 6
        self.signal = signal
        let ready = DispatchSemaphore(value: 0)
        let started = AnnotatedMutex<(tid: pid_t, blocked: Bool)>((0, false))
        let threadStarted = DetachedThread.start { [ready] in
            var signals: [Int32] = [signal, SIGIO]
            let blocked = daxpin_block_watched_signals(&signals, 2) == 0
            started.withLock { $0 = (daxpin_gettid(), blocked) }
            ready.signal()
            guard blocked else { return }
            LeaseWatcher.run()
        }
        precondition(threadStarted, "DaxPin: cannot start the lease watcher thread")
        ready.wait()
        let (threadID, blocked) = started.withLock { $0 }
        precondition(blocked, "DaxPin: the lease watcher cannot block its signals")
        self.threadID = threadID
        // Backstop: a break signal that reaches another thread (between F_SETLEASE and
        // F_SETOWN_EX the owner is the whole process) is re-queued to the watcher instead of
        // killing us. Installed before any lease exists: leases are taken through `shared`.
        daxpin_install_forwarding_handler(signal, threadID)
    }

    /// Starts routing break signals of `fd` to `core`. Call before `F_SETLEASE`.
    func watch(_ fd: Int32, _ core: LeaseCore) {
        table.withLock { $0.leases.insert(core, at: fd) }
    }

    /// Stops routing; call after `F_SETLEASE(F_UNLCK)` (no signal for the lease comes after it)
    /// and before closing `fd`, so that a new lease with the same number is never confused with
    /// this one. When `caller` is not the watcher, a marker signal wakes it to forget the number
    /// once the signals before the marker are taken.
    func unwatch(_ fd: Int32, by caller: Revoker) {
        table.withLock { t in
            t.leases.remove(at: fd)
            t.releases += 1
            t.released[fd] = t.releases
        }
        // A full queue drops the marker: the number is then forgotten after a later signal.
        if !caller.isWatcher { try? Syscalls.queueSignal(threadID, signal, Self.releaseMarker) }
    }

    /// The number of leases being watched (for tests and `daxpin ls`).
    var count: Int { table.withLock { $0.leases.count } }

    /// The number of released descriptor numbers whose stale signals may still be queued (for tests).
    var releasedCount: Int { table.withLock { $0.released.count } }

    private static func run() -> Never {
        let watcher = shared  // waits until init has returned
        while true {
            // Sleeps without a timeout: the watcher wakes for signals only. One system call
            // from the signal to the revocation: sigwaitinfo hands over the signal with its
            // si_fd (poll on a signalfd and a read took two).
            var fd: Int32 = -1, fromKernel: Int32 = 0
            let signo = (try? Syscalls.waitWatchedSignal(&fd, &fromKernel)) ?? -1  // EINTR: look again
            if signo == SIGIO {
                // The realtime queue overflowed: the kernel (or our forwarder) sent SIGIO without si_fd.
                watcher.breakAllBreaking()
            } else if signo > 0 {
                watcher.breakNoticed(fd: fd, fromKernel: fromKernel != 0)
            }
            watcher.forgetReleasedIfDrained()
        }
    }

    /// A signal the kernel sent for a number not released since the queue was last empty is
    /// this lease's break. Any other (queued by a forwarder or by anyone else, or for a reused
    /// number) is checked against the kernel's view of the lease.
    private func breakNoticed(fd: Int32, fromKernel: Bool) {
        let (found, reused) = table.withLock { t in (t.leases[fd], !t.released.isEmpty && t.released[fd] != nil) }
        guard let core = found else { return }
        if fromKernel, !reused {
            Interleavings.reached(.signalTrusted)
            // Whether the lease is still held is checked under the lock that starts the teardown.
            Self.revoke(core, .trusted)
        } else {
            Interleavings.reached(.signalVerified)
            guard core.kernelIsBreaking() else { return }
            Self.revoke(core, .checked)
        }
    }

    /// Forgets the released numbers once no signal is queued: every signal sent for their old
    /// leases (all sent before their releases) has been taken. Costs a system call only while
    /// some number is remembered; if a signal is queued, its turn comes next and this runs again.
    private func forgetReleasedIfDrained() {
        guard let upTo = table.withLock({ $0.released.isEmpty ? nil : $0.releases }) else { return }
        guard daxpin_signal_pending(signal) == 0 else { return }
        table.withLock { t in t.released = t.released.filter { $0.value > upTo } }
    }

    /// Without a quiesce handler a revocation is a handful of syscalls: run it right here,
    /// without a thread hop. A handler may take its whole budget, and writing staged regions
    /// back may take long too, so such a revocation gets a thread of its own and the watcher
    /// stays free for other leases. Not a Dispatch worker:
    /// the application's own work may fill the global pool (as many threads as CPUs), and the
    /// revocation must not wait for a free worker.
    private static func revoke(_ core: LeaseCore, _ signal: Revoker.BreakSignal) {
        if !core.hasQuiesce, !core.hasStagedRegions.load(ordering: .relaxed) {
            core.revoke(reason: .leaseBreak, by: .watcher(signal))
        } else if !DetachedThread.start({ core.revoke(reason: .leaseBreak, by: .breakThread(signal)) }) {
            core.revoke(reason: .leaseBreak, by: .watcher(signal))  // no thread to be had: revoke here
        }
    }

    private func breakAllBreaking() {
        for core in table.withLock({ $0.leases.all }) where core.kernelIsBreaking() {
            Self.revoke(core, .checked)
        }
    }
}

/// The watched leases by descriptor number: the watcher finds the lease of a signal's `si_fd`
/// with one index, no hashing (the kernel hands out the lowest free number, so the numbers are
/// small and dense). Grows to the highest number watched, 8 bytes a slot, and shrinks back
/// when the highest is released.
struct LeasesByDescriptor {
    private var slots: [LeaseCore?] = []
    /// The number of leases watched.
    private(set) var count = 0

    subscript(fd: Int32) -> LeaseCore? {
        fd >= 0 && Int(fd) < slots.count ? slots[Int(fd)] : nil
    }

    mutating func insert(_ core: LeaseCore, at fd: Int32) {
        precondition(fd >= 0, "DaxPin: a lease without a descriptor cannot be watched")
        let index = Int(fd)
        if index >= slots.count { slots.append(contentsOf: repeatElement(nil, count: index + 1 - slots.count)) }
        if slots[index] == nil { count += 1 }
        slots[index] = core
    }

    mutating func remove(at fd: Int32) {
        guard fd >= 0, Int(fd) < slots.count, slots[Int(fd)] != nil else { return }
        slots[Int(fd)] = nil
        count -= 1
        while let last = slots.last, last == nil { slots.removeLast() }
    }

    /// Slots in use up to the highest number watched (for tests).
    var slotCount: Int { slots.count }

    /// Every lease watched.
    var all: [LeaseCore] { slots.compactMap { $0 } }
}

/// A detached POSIX thread for library work that may block for long (the watcher, a
/// revocation with a quiesce handler, the handler itself).
enum DetachedThread {
    /// Starts `body` on a new detached thread; false if the system refused one.
    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(ThreadBody(body))
        do {
            try Syscalls.startDetachedThread({ argument in
                Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box.toOpaque())
            return true
        } catch {
            box.release()
            return false
        }
    }
}

private final class ThreadBody: @unchecked Sendable {
    // Handed to exactly one new thread, which is the only one to touch it.
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// `/proc/sys/fs/lease-break-time`: seconds the kernel waits for a lease holder.
public enum LeaseBreakTime {
    /// The current value (45 s by default); 45 s if it cannot be read.
    public static var current: Duration {
        .seconds(readSmallInt("/proc/sys/fs/lease-break-time") ?? 45)
    }
}

/// The lease watcher thread, for benchmarks that read its CPU time from
/// `/proc/self/task/<tid>/stat` (it must cost nothing while leases are idle).
@_spi(Benchmarks)
public enum LeaseWatcherThread {
    /// The watcher's kernel thread id; starts the watcher if it is not running yet.
    public static var id: Int32 { LeaseWatcher.shared.threadID }
}

/// Background work of the library, for benchmarks that must start measuring from a steady
/// state (a lease held for a while), not from the moment a lease was taken.
@_spi(Benchmarks)
public enum BackgroundWork {
    /// Returns once the pin registry has written every change made so far (it writes a few
    /// milliseconds after a change, on its own queue) and no delayed registry write is
    /// pending: a break measured afterwards competes with no wake-up of the library's own
    /// threads, as with a lease held for a while. Waits at most 2 seconds.
    public static func settle() { PinRegistry.shared.settle() }
}
