import CLease
import Glibc
import Synchronization

/// The system calls DaxPin makes, in one thin layer (after swift-system's
/// `Internals/Syscalls.swift` and its `valueOrErrno`): each wrapper either returns the call's
/// value or throws the `Errno` it failed with, read in ``valueOrErrno(_:retryOnInterrupt:_:)``,
/// the one place that reads `errno` and retries `EINTR`. A test can arm a failure (or an
/// `EINTR`) for any fault point with ``SyscallFaults``. Callers never read `errno`.
package enum Syscalls {
    /// Runs `body`, a libc call that returns -1 and sets `errno` on failure, as the fault point
    /// `call`: its value, or the errno it failed with. `EINTR` is retried here unless
    /// `retryOnInterrupt` is false (`close(2)`: the descriptor is gone either way).
    @inline(__always)
    package static func valueOrErrno<I: FixedWidthInteger>(_ call: Syscall, retryOnInterrupt: Bool = true,
                                                           _ body: () -> I) throws(Errno) -> I {
        while true {
            let code: Int32
            if let injected = injectedFault(call) {
                code = injected
            } else {
                let value = body()
                guard value == -1 else { return value }
                code = errno
            }
            if retryOnInterrupt, code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }

    /// ``valueOrErrno(_:retryOnInterrupt:_:)`` for a call whose value is only success.
    @inline(__always)
    package static func nothingOrErrno<I: FixedWidthInteger>(_ call: Syscall, retryOnInterrupt: Bool = true,
                                                             _ body: () -> I) throws(Errno) {
        _ = try valueOrErrno(call, retryOnInterrupt: retryOnInterrupt, body)
    }

    /// Runs `body`, a call that returns 0 or an error number (pthreads, most of libibverbs),
    /// as the fault point `call`. `EINTR` is retried like everywhere else.
    @inline(__always)
    package static func nothingOrReturnedErrno(_ call: Syscall, _ body: () -> Int32) throws(Errno) {
        while true {
            let code = injectedFault(call) ?? body()
            if code == 0 { return }
            if code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }

    /// Runs `body`, a call that returns nil and sets `errno` on failure, as the fault point `call`.
    @inline(__always)
    package static func pointerOrErrno<P>(_ call: Syscall, retryOnInterrupt: Bool = true, _ body: () -> P?) throws(Errno) -> P {
        while true {
            let code: Int32
            if let injected = injectedFault(call) {
                code = injected
            } else {
                errno = 0
                if let pointer = body() { return pointer }
                code = errno == 0 ? EIO : errno  // some libraries fail without setting errno
            }
            if retryOnInterrupt, code == EINTR { continue }
            throw Errno(rawValue: code)
        }
    }

    /// `mmap(2)`; `fixed` calls (`MAP_FIXED`, over a reservation) are their own fault point.
    static func mmap(_ address: UnsafeMutableRawPointer?, _ length: Int, _ protection: Int32, _ flags: Int32,
                     _ fd: Int32, _ offset: off_t) throws(Errno) -> UnsafeMutableRawPointer {
        let mapped = try pointerOrErrno(flags & MAP_FIXED != 0 ? .mmapFixed : .mmap) { () -> UnsafeMutableRawPointer? in
            let mapped = Glibc.mmap(address, length, protection, flags, fd, offset)
            return mapped == MAP_FAILED ? nil : mapped
        }
        MappingLedger.mapped(mapped, length: length)
        return mapped
    }

    /// `munmap(2)`.
    static func munmap(_ address: UnsafeMutableRawPointer, _ length: Int) throws(Errno) {
        try nothingOrErrno(.munmap) { Glibc.munmap(address, length) }
        MappingLedger.unmapped(address, length: length)
    }

    /// `fcntl(F_SETLEASE)`.
    static func setLease(_ fd: Int32, _ type: Int32) throws(Errno) {
        try nothingOrErrno(.setLease) { daxpin_set_lease(fd, type) }
    }

    /// `fcntl(F_GETLEASE)`: the lease type held.
    static func getLease(_ fd: Int32) throws(Errno) -> Int32 {
        try valueOrErrno(.getLease) { daxpin_get_lease(fd) }
    }

    /// `fcntl(F_SETSIG)`.
    static func setSignal(_ fd: Int32, _ signal: Int32) throws(Errno) {
        try nothingOrErrno(.setSignal) { daxpin_set_signal(fd, signal) }
    }

    /// `fcntl(F_SETOWN_EX, {F_OWNER_TID, tid})`.
    static func setOwnerThread(_ fd: Int32, _ thread: pid_t) throws(Errno) {
        try nothingOrErrno(.setOwner) { daxpin_set_owner_thread(fd, thread) }
    }

    /// `close(2)`, never retried: on Linux the descriptor is released even when it fails.
    package static func close(_ fd: Int32) throws(Errno) {
        try nothingOrErrno(.close, retryOnInterrupt: false) { Glibc.close(fd) }
    }
}

/// A system call of ``Syscalls`` that a test can make fail.
package enum Syscall: Sendable, Hashable {
    case mmap, mmapFixed, munmap, setLease, getLease, setSignal, setOwner, close
    case open, stat, statfs, statx, read, write, unlink, rename, mkdir, truncate, fallocate, setFlags, poll
    case madvise, msync, sync, queueSignal, waitSignal, readLink, openDirectory, createThread
    case allocate, signalMask, fork
    case netlinkOpen, netlinkBind, netlinkSend, netlinkReceive, setReceiveTimeout
    case getDeviceList, openDevice, queryDevice, queryPort, queryGID, allocateProtectionDomain
    case registerMemory, deregisterMemory, adviseMemory
    case createCompletionChannel, createCompletionQueue, requestNotification, getCompletionEvent, pollCompletionQueue
    case createQueuePair, modifyQueuePair, postSend, postReceive
    case rdmaCreateEventChannel, rdmaGetEvent, rdmaCreateID, rdmaMigrateID, rdmaBind, rdmaListen
    case rdmaResolveAddress, rdmaResolveRoute, rdmaCreateQueuePair, rdmaConnect, rdmaAccept
    case rdmaInitQueuePairAttributes
}

#if DAXPIN_TESTING
/// Test-only fault injection into ``Syscalls``: a failure armed for a call makes that call
/// fail with the given errno, without reaching the kernel (as a kernel refusal would). One
/// atomic load per call while nothing is armed. Process-wide: the tests that arm faults run
/// serialized, and a fault meant for the lease watcher thread must reach it.
package enum SyscallFaults {
    private struct Fault { var errnos: [Int32]; var skip: Int }
    private static let armed = Atomic<Bool>(false)
    private static let faults = AnnotatedMutex<[Syscall: Fault]>([:])

    /// After `skip` calls of `call` succeed, the next `times` fail with `errno`.
    package static func arm(_ call: Syscall, errno: Int32, skip: Int = 0, times: Int = 1) {
        arm(call, errnos: Array(repeating: errno, count: times), skip: skip)
    }

    /// After `skip` calls of `call` succeed, the next ones fail with `errnos`, one each, in
    /// order (`[EINTR, EIO]`: an interrupted call, retried by the seam, then a real failure).
    package static func arm(_ call: Syscall, errnos: [Int32], skip: Int = 0) {
        faults.withLock { $0[call] = Fault(errnos: errnos, skip: skip) }
        armed.store(true, ordering: .releasing)
    }

    /// Disarms every fault.
    package static func disarm() {
        faults.withLock { $0.removeAll() }
        armed.store(false, ordering: .releasing)
    }

    /// Whether the armed fault of `call` has fired as often as asked.
    package static func isSpent(_ call: Syscall) -> Bool { faults.withLock { $0[call] == nil } }

    /// The errno `call` must fail with now, if a fault is armed for it (and counts it).
    package static func take(_ call: Syscall) -> Int32? {
        guard armed.load(ordering: .relaxed) else { return nil }
        return faults.withLock { table -> Int32? in
            guard var fault = table[call] else { return nil }
            if fault.skip > 0 {
                fault.skip -= 1
                table[call] = fault
                return nil
            }
            guard !fault.errnos.isEmpty else { table[call] = nil; return nil }
            let code = fault.errnos.removeFirst()
            table[call] = fault.errnos.isEmpty ? nil : fault
            return code
        }
    }
}
#endif

extension Syscalls {
    /// The errno a test armed for `call` (``SyscallFaults``, debug builds only); in a release
    /// build always nil, and no fault injection exists.
    @inline(__always) package static func injectedFault(_ call: Syscall) -> Int32? {
        #if DAXPIN_TESTING
        SyscallFaults.take(call)
        #else
        nil
        #endif
    }
}

extension Errno {
    /// What `body` threw, or nil when it succeeded: for a failed call whose errno must cross a
    /// closure that cannot throw (`withUnsafeMutablePointer` and friends).
    @inline(__always)
    package static func of(_ body: () throws(Errno) -> Void) -> Errno? {
        do { try body(); return nil } catch { return error }
    }
}
