import CLease
import Glibc
import Synchronization

/// The system calls DaxPin makes outside the verbs libraries, in one thin layer (after swift-system's
/// `Internals/Syscalls.swift`): each forwards to libc unchanged, unless a test has armed a
/// failure for it with ``SyscallFaults``. Each returns what the libc call returns and leaves
/// `errno` set on failure, like the call it wraps.
package enum Syscalls {
    /// `mmap(2)`; `fixed` calls (`MAP_FIXED`, over a reservation) are their own fault point.
    static func mmap(_ address: UnsafeMutableRawPointer?, _ length: Int, _ protection: Int32, _ flags: Int32,
                     _ fd: Int32, _ offset: off_t) -> UnsafeMutableRawPointer? {
        if let code = Syscalls.injectedFault(flags & MAP_FIXED != 0 ? .mmapFixed : .mmap) {
            errno = code
            return MAP_FAILED
        }
        let mapped = Glibc.mmap(address, length, protection, flags, fd, offset)
        if let mapped, mapped != MAP_FAILED { MappingLedger.mapped(mapped, length: length) }
        return mapped
    }

    /// `munmap(2)`.
    @discardableResult
    static func munmap(_ address: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        if let code = Syscalls.injectedFault(.munmap) { errno = code; return -1 }
        let result = Glibc.munmap(address, length)
        if result == 0 { MappingLedger.unmapped(address, length: length) }
        return result
    }

    /// `fcntl(F_SETLEASE)`.
    @discardableResult
    static func setLease(_ fd: Int32, _ type: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.setLease) { errno = code; return -1 }
        return daxpin_set_lease(fd, type)
    }

    /// `fcntl(F_GETLEASE)`.
    static func getLease(_ fd: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.getLease) { errno = code; return -1 }
        return daxpin_get_lease(fd)
    }

    /// `fcntl(F_SETSIG)`.
    static func setSignal(_ fd: Int32, _ signal: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.setSignal) { errno = code; return -1 }
        return daxpin_set_signal(fd, signal)
    }

    /// `fcntl(F_SETOWN_EX, {F_OWNER_TID, tid})`.
    static func setOwnerThread(_ fd: Int32, _ thread: pid_t) -> Int32 {
        if let code = Syscalls.injectedFault(.setOwner) { errno = code; return -1 }
        return daxpin_set_owner_thread(fd, thread)
    }

    /// `close(2)`.
    @discardableResult
    static func close(_ fd: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.close) { errno = code; return -1 }
        return Glibc.close(fd)
    }
}

/// A system call of ``Syscalls`` that a test can make fail.
package enum Syscall: Sendable, Hashable {
    case mmap, mmapFixed, munmap, setLease, getLease, setSignal, setOwner, close
    case open, stat, statfs, statx, read, write, unlink, rename, mkdir, truncate, fallocate, setFlags, poll
    case madvise, msync, sync, queueSignal, waitSignal, readLink, openDirectory, createThread
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
    private struct Fault { var errno: Int32; var skip: Int; var times: Int }
    private static let armed = Atomic<Bool>(false)
    private static let faults = AnnotatedMutex<[Syscall: Fault]>([:])

    /// After `skip` calls of `call` succeed, the next `times` fail with `errno`.
    package static func arm(_ call: Syscall, errno: Int32, skip: Int = 0, times: Int = 1) {
        faults.withLock { $0[call] = Fault(errno: errno, skip: skip, times: times) }
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
            fault.times -= 1
            table[call] = fault.times > 0 ? fault : nil
            return fault.errno
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
