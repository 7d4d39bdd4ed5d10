import DaxPin
import CMnl
import Glibc

// The netlink calls of ``Syscalls``, through libmnl: `daxpin ls --all` asks rdma netlink for
// every memory registration on the machine. Each throws the `Errno` it failed with, read in
// the seam (`Syscalls.valueOrErrno`), which also retries `EINTR`.
extension Syscalls {
    /// `mnl_socket_open(bus)`: a netlink socket.
    static func netlinkOpen(_ bus: Int32) throws(Errno) -> OpaquePointer {
        try pointerOrErrno(.netlinkOpen) { mnl_socket_open(bus) }
    }

    /// `mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID)`.
    static func netlinkBind(_ socket: OpaquePointer) throws(Errno) {
        try nothingOrErrno(.netlinkBind) { mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) }
    }

    /// `mnl_socket_sendto(2)` of one request: the bytes sent.
    static func netlinkSend(_ socket: OpaquePointer, _ bytes: UnsafeRawPointer, _ count: Int) throws(Errno) -> Int {
        try valueOrErrno(.netlinkSend) { mnl_socket_sendto(socket, bytes, count) }
    }

    /// `mnl_socket_recvfrom(2)`: one datagram's length (`ENOSPC` when it did not fit, `EAGAIN`
    /// when the receive timeout passed).
    static func netlinkReceive(_ socket: OpaquePointer, _ buffer: UnsafeMutableRawPointer, _ capacity: Int) throws(Errno) -> Int {
        try valueOrErrno(.netlinkReceive) { mnl_socket_recvfrom(socket, buffer, capacity) }
    }

    /// `setsockopt(SO_RCVTIMEO)`: a receive waits at most `milliseconds`, then fails with `EAGAIN`.
    static func setReceiveTimeout(_ fd: Int32, milliseconds: Int) throws(Errno) {
        var limit = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        try nothingOrErrno(.setReceiveTimeout) { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size)) }
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
