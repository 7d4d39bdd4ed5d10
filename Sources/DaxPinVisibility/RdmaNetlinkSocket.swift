import DaxPin
import CMnl
import Glibc

/// A `NETLINK_RDMA` socket (through libmnl), owned: ``close()`` closes it, `deinit` is the
/// backstop. Asks the kernel's RDMA resource tracker what `rdma resource show` shows.
package struct RdmaNetlinkSocket: ~Copyable {
    private let socket: OpaquePointer
    private var nextSequence: UInt32

    /// How long one dump may take, and one receive wait for the kernel.
    package static let receiveTimeoutMilliseconds = 5_000
    /// The receive buffer: large enough for any dump datagram (the kernel sizes a dump's
    /// datagrams after the reader's buffer, up to 32 KiB).
    static let datagramCapacity = 32 * 1024

    /// Opens and binds the socket.
    /// - Throws: `.rdmaNetlinkUnavailable` without RDMA support in the kernel; `.rdmaNetlinkFailed`.
    package init() throws(VisibilityError) {
        let socket: OpaquePointer
        do throws(Errno) { socket = try Syscalls.netlinkOpen(NETLINK_RDMA) } catch {
            throw error == .protocolNotSupported || error == .addressFamilyNotSupported
                ? .rdmaNetlinkUnavailable(errno: error.rawValue) : .rdmaNetlinkFailed(operation: "socket", errno: error.rawValue)
        }
        do throws(Errno) {
            try Syscalls.netlinkBind(socket)
            try Syscalls.setReceiveTimeout(Syscalls.netlinkDescriptor(socket), milliseconds: Self.receiveTimeoutMilliseconds)
        } catch {
            Syscalls.netlinkClose(socket)
            throw .rdmaNetlinkFailed(operation: "bind", errno: error.rawValue)
        }
        self.socket = socket
        nextSequence = UInt32(truncatingIfNeeded: Int(Syscalls.now(CLOCK_REALTIME).tv_sec))
    }

    /// Sends an nldev dump request for `command` (restricted to one device when given) and
    /// returns every datagram of the answer, up to and including the one that ends it.
    package mutating func dump(command: UInt16, deviceIndex: UInt32? = nil) throws(VisibilityError) -> NetlinkDump {
        let name = switch command {
        case RdmaNetlink.getDevice: "RDMA_NLDEV_CMD_GET"
        case RdmaNetlink.getMemoryRegions: "RDMA_NLDEV_CMD_RES_MR_GET"
        default: "nldev command \(command)"
        }
        nextSequence &+= 1
        let sequence = nextSequence
        var request = [UInt64](repeating: 0, count: 8)  // 64 bytes, aligned for nlmsghdr
        let length = request.withUnsafeMutableBytes { raw -> Int in
            let header = mnl_nlmsg_put_header(raw.baseAddress)!
            header.pointee.nlmsg_type = daxpin_rdma_nldev_message_type(command)
            header.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_DUMP)
            header.pointee.nlmsg_seq = sequence
            if let deviceIndex { mnl_attr_put_u32(header, UInt16(RdmaNetlink.Attribute.deviceIndex), deviceIndex) }
            return Int(header.pointee.nlmsg_len)
        }
        let socket = self.socket
        let sent = request.withUnsafeBytes { bytes -> Result<Int, Errno> in
            do throws(Errno) { return .success(try Syscalls.netlinkSend(socket, bytes.baseAddress!, length)) } catch { return .failure(error) }
        }
        switch sent {
        case .success(length): break
        case .success: throw .rdmaNetlinkFailed(operation: "send \(name)", errno: EIO)
        case .failure(let error): throw .rdmaNetlinkFailed(operation: "send \(name)", errno: error.rawValue)
        }
        var datagrams: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: Self.datagramCapacity)
        let deadline = ContinuousClock.now + .milliseconds(Self.receiveTimeoutMilliseconds)
        while true {
            guard ContinuousClock.now < deadline else {
                throw .rdmaNetlinkTimedOut(command: name, milliseconds: Self.receiveTimeoutMilliseconds)
            }
            let received = buffer.withUnsafeMutableBytes { bytes -> Result<Int, Errno> in
                do throws(Errno) { return .success(try Syscalls.netlinkReceive(socket, bytes.baseAddress!, bytes.count)) } catch { return .failure(error) }
            }
            let count: Int
            switch received {
            case .success(let value): count = value
            case .failure(.resourceTemporarilyUnavailable):
                throw .rdmaNetlinkTimedOut(command: name, milliseconds: Self.receiveTimeoutMilliseconds)
            case .failure(let error): throw .rdmaNetlinkFailed(operation: "receive \(name)", errno: error.rawValue)
            }
            let datagram = Array(buffer[..<count])
            datagrams.append(datagram)
            do throws(NetlinkDecodeError) {
                if try NetlinkWire.dumpReplies(NetlinkWire.messages(in: datagram[...]), sequence: sequence).done {
                    return NetlinkDump(sequence: sequence, datagrams: datagrams)
                }
            } catch {
                throw .rdmaNetlinkAnswer(command: name, error)
            }
        }
    }

    /// Closes the socket.
    package consuming func close() {
        Syscalls.netlinkClose(socket)
        discard self
    }

    deinit {
        Syscalls.netlinkClose(socket)
    }
}

/// The raw answer to one dump request: what ``RdmaMemoryRegionTable/decode(_:command:)`` reads.
package struct NetlinkDump: Sendable, Equatable {
    /// The request's sequence number, which every reply carries.
    package var sequence: UInt32
    /// The datagrams as received.
    package var datagrams: [[UInt8]]

    /// Creates a dump (tests build them from captured bytes).
    package init(sequence: UInt32, datagrams: [[UInt8]]) { self.sequence = sequence; self.datagrams = datagrams }
}
