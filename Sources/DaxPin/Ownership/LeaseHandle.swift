import CLease
import Glibc

/// Owns the descriptor a lease is taken on, and the lease while it is held: ``unlock()`` gives
/// the lease back (`F_UNLCK`), ``close()`` closes the descriptor and ends the handle (`discard
/// self`), and `deinit`, the backstop, does both in that order. A child forked without exec gets no copy: the descriptor is
/// closed in it at fork (the lease lives on the open file description, so a copy would keep it
/// alive after this process is gone), and a child's copy of the handle does nothing when dropped:
/// its `deinit` would otherwise remove the parent's lease (`F_UNLCK` acts on the shared
/// description). A child's revocation stops before it reaches the handle (`LeaseCore.revoke`).
struct LeaseHandle: ~Copyable, Sendable {
    let fd: Int32
    /// The `F_SETLEASE` type held, or nil without a lease.
    private(set) var held: Int32?
    /// The process that took the lease: in a child forked from it, this handle is a copy.
    private let owner = Syscalls.processID()

    init(fd: Int32) {
        self.fd = fd
        daxpin_fork_guard_add(fd)
    }

    /// Whether this is a forked child's copy, whose descriptor was closed at fork.
    private var isForkedCopy: Bool { Syscalls.processID() != owner }

    /// `F_SETLEASE` with `type`; what the kernel refused it with.
    mutating func take(_ type: Int32) throws(Errno) {
        try Syscalls.setLease(fd, type)
        held = type
    }

    /// Whether the kernel is breaking the lease: `F_GETLEASE` reports the type the lease is being
    /// downgraded to while a break is pending.
    var isBeingBroken: Bool {
        guard let held else { return false }
        return (try? Syscalls.getLease(fd)) != held
    }

    /// `F_UNLCK`. Returns whether the lease was lost: `EAGAIN` means no lease was left to remove,
    /// because the kernel dropped it (lease-break-time ran out) before this call.
    mutating func unlock() -> (wasHeld: Bool, lost: Bool) {
        guard held != nil else { return (false, false) }
        held = nil
        do throws(Errno) { try Syscalls.setLease(fd, Int32(DAXPIN_F_UNLCK)) } catch { return (true, error == .resourceTemporarilyUnavailable) }
        return (true, false)
    }

    /// Closes the descriptor (giving back any lease still held first). A forked child's copy
    /// does nothing: its descriptor was closed at fork, and the number may be reused by now.
    consuming func close() {
        Self.release(fd: fd, held: held, inForkedCopy: isForkedCopy)
        discard self
    }

    deinit { Self.release(fd: fd, held: held, inForkedCopy: isForkedCopy) }

    /// `F_UNLCK` when a lease is held, then `close(2)`: the one teardown of ``close()`` and `deinit`.
    private static func release(fd: Int32, held: Int32?, inForkedCopy: Bool) {
        guard !inForkedCopy else { return }
        if held != nil { try? Syscalls.setLease(fd, Int32(DAXPIN_F_UNLCK)) }
        try? Syscalls.close(fd)
        daxpin_fork_guard_remove(fd)  // after close: a fork in between closes the number in the child only
    }
}
