// The netlink wire format (netlink(7)): messages in a datagram, attributes in a message. Pure
// functions over bytes, with no import, so that Scripts/fuzz can compile this file on its own.
// Netlink uses the host's byte order.

/// One netlink message: its header fields and the bytes after the 16-byte `nlmsghdr`.
package struct NetlinkMessage: Sendable, Equatable {
    /// `nlmsg_type`: `NLMSG_DONE`, `NLMSG_ERROR`, or the protocol's own type.
    package var type: UInt16
    /// `nlmsg_flags` (`NLM_F_MULTI` on dump replies).
    package var flags: UInt16
    /// `nlmsg_seq`: the request this message answers.
    package var sequence: UInt32
    /// The payload after the header (for rdma netlink: attributes only).
    package var payload: ArraySlice<UInt8>

    /// Creates a message.
    package init(type: UInt16, flags: UInt16, sequence: UInt32, payload: ArraySlice<UInt8>) {
        self.type = type; self.flags = flags; self.sequence = sequence; self.payload = payload
    }
}

/// One netlink attribute (`struct nlattr`): its type without the nested and byte-order flags,
/// and its payload.
package struct NetlinkAttribute: Sendable, Equatable {
    /// `nla_type & NLA_TYPE_MASK`.
    package var type: UInt16
    /// The payload after the 4-byte attribute header, without padding.
    package var payload: ArraySlice<UInt8>

    /// The payload as a `u32`, when it has exactly four bytes.
    package var uint32: UInt32? { payload.count == 4 ? NetlinkWire.load(UInt32.self, payload, at: payload.startIndex) : nil }

    /// The payload as a `u64`, when it has exactly eight bytes.
    package var uint64: UInt64? { payload.count == 8 ? NetlinkWire.load(UInt64.self, payload, at: payload.startIndex) : nil }

    /// The payload as a NUL-terminated string (bytes after the first NUL are ignored).
    package var string: String { String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self) }

    /// The payload as nested attributes.
    package var nested: [NetlinkAttribute] { NetlinkWire.attributes(in: payload) }
}

/// Why a datagram could not be read, or what the kernel refused.
package enum NetlinkDecodeError: Error, Equatable, Sendable {
    /// A message header claims a length shorter than the header or beyond the datagram.
    case badLength(offset: Int, length: Int, available: Int)
    /// Bytes left over after the last message that cannot hold a header.
    case trailingBytes(count: Int)
    /// The kernel answered the request with an error (`NLMSG_ERROR` or an error in `NLMSG_DONE`).
    case kernelError(errno: Int32)
    /// The kernel dropped part of the answer (`NLMSG_OVERRUN`).
    case overrun
    /// The datagrams of a dump end before its `NLMSG_DONE`.
    case incomplete
}

/// Netlink message and attribute walking.
package enum NetlinkWire {
    /// `sizeof(struct nlmsghdr)`.
    package static let messageHeaderSize = 16
    /// `sizeof(struct nlattr)`.
    package static let attributeHeaderSize = 4
    /// `NLMSG_NOOP`, `NLMSG_ERROR`, `NLMSG_DONE`, `NLMSG_OVERRUN` (<linux/netlink.h>).
    package static let noop: UInt16 = 1, error: UInt16 = 2, done: UInt16 = 3, overrunType: UInt16 = 4
    /// `NLA_TYPE_MASK`: the attribute type without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
    package static let attributeTypeMask: UInt16 = 0x3fff

    /// `NLMSG_ALIGN` / `NLA_ALIGN`: four-byte alignment.
    package static func aligned(_ length: Int) -> Int { (length + 3) & ~3 }

    /// The messages of one datagram, in order.
    package static func messages(in datagram: ArraySlice<UInt8>) throws(NetlinkDecodeError) -> [NetlinkMessage] {
        var found: [NetlinkMessage] = []
        var offset = datagram.startIndex
        while datagram.endIndex - offset >= messageHeaderSize {
            let available = datagram.endIndex - offset
            let length = Int(load(UInt32.self, datagram, at: offset))
            guard length >= messageHeaderSize, length <= available else {
                throw .badLength(offset: offset - datagram.startIndex, length: length, available: available)
            }
            found.append(NetlinkMessage(
                type: load(UInt16.self, datagram, at: offset + 4), flags: load(UInt16.self, datagram, at: offset + 6),
                sequence: load(UInt32.self, datagram, at: offset + 8),
                payload: datagram[(offset + messageHeaderSize)..<(offset + length)]))
            offset += min(aligned(length), available)
        }
        guard offset == datagram.endIndex else { throw .trailingBytes(count: datagram.endIndex - offset) }
        return found
    }

    /// The attributes in `bytes`, in order. A truncated or malformed attribute ends the walk
    /// (as `nla_ok` does in the kernel and libmnl): what came before it is returned.
    package static func attributes(in bytes: ArraySlice<UInt8>) -> [NetlinkAttribute] {
        var found: [NetlinkAttribute] = []
        var offset = bytes.startIndex
        while bytes.endIndex - offset >= attributeHeaderSize {
            let length = Int(load(UInt16.self, bytes, at: offset))
            guard length >= attributeHeaderSize, length <= bytes.endIndex - offset else { break }
            let type = load(UInt16.self, bytes, at: offset + 2) & attributeTypeMask
            found.append(NetlinkAttribute(type: type, payload: bytes[(offset + attributeHeaderSize)..<(offset + length)]))
            offset += min(aligned(length), bytes.endIndex - offset)
        }
        return found
    }

    /// What a dump's replies to request `sequence` say: the data messages, and whether the
    /// dump is complete (`NLMSG_DONE`, or the acknowledgement after it). Messages answering
    /// other requests are ignored.
    package static func dumpReplies(_ messages: [NetlinkMessage], sequence: UInt32)
        throws(NetlinkDecodeError) -> (data: [NetlinkMessage], done: Bool) {
        var data: [NetlinkMessage] = []
        for message in messages where message.sequence == sequence {
            switch message.type {
            case noop:
                continue
            case error:
                // struct nlmsgerr: a negative errno, then the request's header; 0 acknowledges.
                guard message.payload.count >= 4 else { throw .kernelError(errno: 0) }
                let code = Int32(bitPattern: load(UInt32.self, message.payload, at: message.payload.startIndex))
                guard code == 0 else { throw .kernelError(errno: code == Int32.min ? Int32.max : -code) }
                return (data, true)
            case done:
                // A dump that failed part-way carries its negative errno here.
                if message.payload.count >= 4 {
                    let code = Int32(bitPattern: load(UInt32.self, message.payload, at: message.payload.startIndex))
                    if code < 0 { throw .kernelError(errno: code == Int32.min ? Int32.max : -code) }
                }
                return (data, true)
            case overrunType:
                throw .overrun
            default:
                data.append(message)
            }
        }
        return (data, false)
    }

    /// A fixed-width integer at `offset` (an index of `bytes`), in host byte order; the caller
    /// has checked that it fits.
    package static func load<Value: FixedWidthInteger>(_: Value.Type, _ bytes: ArraySlice<UInt8>, at offset: Int) -> Value {
        bytes.withUnsafeBytes { raw in
            raw.loadUnaligned(fromByteOffset: offset - bytes.startIndex, as: Value.self)
        }
    }
}
