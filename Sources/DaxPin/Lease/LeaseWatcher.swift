import CLease
import Dispatch
import Glibc
import Synchronization

/// The process-wide thread that receives lease-break signals.
///
/// Every lease's descriptor gets `F_SETSIG` = a realtime signal and `F_SETOWN_EX` =
/// this thread, which blocks that signal and sleeps in `sigtimedwait`: no cost while idle.
/// The signal's `si_fd` names the lease. A lease without a quiesce handler is revoked
/// on this thread at once; one with a handler is revoked on a thread of its own, so a slow
/// handler never delays another lease's revocation.
final class LeaseWatcher: Sendable {
    /// Started on first use.
    static let shared = LeaseWatcher()

    /// The realtime signal used for lease breaks (SIGRTMIN + 6 leaves room for other users).
    let signal: Int32
    /// The watcher thread's kernel thread id (`F_OWNER_TID` target).
    let threadID: pid_t
    private let leases = Mutex<[Int32: LeaseCore]>([:])
    /// Whether the watcher sleeps with a timeout (a deferred registry write), so that it will
    /// wake without a signal.
    private let timeoutArmed = Atomic<Bool>(false)
    var hasTimeoutArmed: Bool { timeoutArmed.load(ordering: .acquiring) }

    private init() {
        let signal = daxpin_sigrtmin() + 6
        self.signal = signal
        let ready = DispatchSemaphore(value: 0)
        let started = Mutex<(tid: pid_t, blocked: Bool)>((0, false))
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
        leases.withLock { $0[fd] = core }
    }

    /// Stops routing; call before closing `fd` so a reused number is never confused.
    func unwatch(_ fd: Int32) {
        _ = leases.withLock { $0.removeValue(forKey: fd) }
    }

    /// The number of leases being watched (for tests and `daxpin ls`).
    var count: Int { leases.withLock { $0.count } }

    private static func run() -> Never {
        while true {
            // Sleep without a timeout unless a registry write waits for us (see PinRegistry.withdraw).
            var timeout: Int32 = -1
            if let due = PinRegistry.shared.deferredWriteDue {
                // Rounded up: waking before the write is due would only loop back to waiting.
                timeout = Int32(clamping: max(0, ContinuousClock.now.duration(to: due).wholeMilliseconds + 1))
            }
            shared.timeoutArmed.store(timeout >= 0, ordering: .releasing)
            // One system call from the signal to the revocation: sigtimedwait hands over the
            // signal with its si_fd (poll on a signalfd and a read took two).
            var fd: Int32 = -1
            let signo = daxpin_wait_watched_signal(timeout, &fd)
            if timeout >= 0 { shared.timeoutArmed.store(false, ordering: .releasing) }
            if signo == SIGIO {
                // The realtime queue overflowed: the kernel (or our forwarder) sent SIGIO without si_fd.
                shared.breakAllBreaking()
            } else if signo > 0 {
                shared.breakNoticed(fd: fd)
            }
            PinRegistry.shared.writeDeferredIfDue()
        }
    }

    private func breakNoticed(fd: Int32) {
        guard let core = leases.withLock({ $0[fd] }), core.kernelIsBreaking() else { return }
        Self.revoke(core)
    }

    /// Without a quiesce handler a revocation is a handful of syscalls: run it right here,
    /// without a thread hop. A handler may take its whole budget, so the revocation gets a
    /// thread of its own and the watcher stays free for other leases. Not a Dispatch worker:
    /// the application's own work may fill the global pool (as many threads as CPUs), and the
    /// revocation must not wait for a free worker.
    private static func revoke(_ core: LeaseCore) {
        if core.options.quiesce == nil {
            core.revoke(reason: .leaseBreak, onWatcher: true)
        } else if !DetachedThread.start({ core.revoke(reason: .leaseBreak) }) {
            core.revoke(reason: .leaseBreak, onWatcher: true)  // no thread to be had: revoke here
        }
    }

    private func breakAllBreaking() {
        for core in leases.withLock({ Array($0.values) }) where core.kernelIsBreaking() {
            Self.revoke(core)
        }
    }
}

/// A detached POSIX thread for library work that may block for long (the watcher, a
/// revocation with a quiesce handler, the handler itself).
enum DetachedThread {
    /// Starts `body` on a new detached thread; false if the system refused one.
    static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(ThreadBody(body))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            return false
        }
        pthread_detach(thread)
        return true
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
    /// milliseconds after a change, on its own queue) and no timer of the library is pending
    /// (a delayed registry write, the watcher's deferred write): a break measured afterwards
    /// competes with no wake-up of the library's own threads, as with a lease held for a while.
    /// Waits at most 2 seconds.
    public static func settle() { PinRegistry.shared.settle() }
}
