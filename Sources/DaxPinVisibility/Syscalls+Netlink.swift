import DaxPin
import CMnl
import Glibc

// The netlink calls of ``Syscalls``, through libmnl: `daxpin ls --all` asks rdma netlink for
// every memory registration on the machine.
extension Syscalls {
    /// `mnl_socket_open(bus)`: a netlink socket, or nil with errno set.
    static func netlinkOpen(_ bus: Int32) -> OpaquePointer? {
        if let code = Syscalls.injectedFault(.netlinkOpen) { errno = code; return nil }
        return mnl_socket_open(bus)
    }

    /// `mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID)`.
    static func netlinkBind(_ socket: OpaquePointer) -> Int32 {
        if let code = Syscalls.injectedFault(.netlinkBind) { errno = code; return -1 }
        return mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID))
    }

    /// `mnl_socket_sendto(2)` of one request.
    static func netlinkSend(_ socket: OpaquePointer, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        if let code = Syscalls.injectedFault(.netlinkSend) { errno = code; return -1 }
        return mnl_socket_sendto(socket, bytes, count)
    }

    /// `mnl_socket_recvfrom(2)`: one datagram (`ENOSPC` when it did not fit).
    static func netlinkReceive(_ socket: OpaquePointer, _ buffer: UnsafeMutableRawPointer, _ capacity: Int) -> Int {
        if let code = Syscalls.injectedFault(.netlinkReceive) { errno = code; return -1 }
        return mnl_socket_recvfrom(socket, buffer, capacity)
    }

    /// `setsockopt(SO_RCVTIMEO)`: a receive waits at most `milliseconds`, then fails with `EAGAIN`.
    static func setReceiveTimeout(_ fd: Int32, milliseconds: Int) -> Int32 {
        if let code = Syscalls.injectedFault(.setReceiveTimeout) { errno = code; return -1 }
        var limit = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }
}

extension Syscalls {
    /// `mnl_socket_close`: closes the socket and frees libmnl's handle (not a fault point: the
    /// descriptor is gone whatever close(2) answers).
    static func netlinkClose(_ socket: OpaquePointer) {
        _ = mnl_socket_close(socket)
    }

    /// `mnl_socket_get_fd`.
    static func netlinkDescriptor(_ socket: OpaquePointer) -> Int32 {
        mnl_socket_get_fd(socket)
    }
}
