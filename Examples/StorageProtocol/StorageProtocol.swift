/// The wire protocol shared by daxpin-server and daxpin-client (issue 4).
///
/// Connection setup carries a ``ClientHello`` in the `rdma_connect` private data and a
/// ``ServerHello`` (the exported region's address, length and rkey) in the `rdma_accept`
/// private data; a rejection carries a UTF-8 reason. Afterwards control messages are SENDs
/// of at most ``StorageProtocol/messageSize`` bytes, little-endian:
///
/// | bytes | field |
/// |---|---|
/// | 0 | opcode |
/// | 1 | version (``StorageProtocol/version``) |
/// | 2-3 | reserved, zero |
/// | 4-7 | request id (echoed in the answer) |
/// | 8... | payload (offset and length: 8 bytes each) |
///
/// Data moves with one-sided RDMA WRITE and READ; the server never sees it.
/// ``StorageProtocol/decodeRequest(_:exportLength:)`` is pure so it can be fuzzed.
public enum StorageProtocol {
    /// The protocol version both sides must speak.
    public static let version: UInt8 = 1
    /// The largest control message.
    public static let messageSize = 256
    /// "DXPS", first in both hellos.
    public static let magic: UInt32 = 0x5350_5844
    /// The largest text carried in an error or stop message.
    public static let maxText = 200

    /// Request opcodes (client to server).
    public enum RequestCode: UInt8, Sendable, CaseIterable {
        case persist = 0x01, checksum = 0x02, stopped = 0x03, goodbye = 0x04
    }
    /// Response opcodes (server to client).
    public enum ResponseCode: UInt8, Sendable, CaseIterable {
        case persisted = 0x81, checksum = 0x82, stop = 0x83, error = 0x84
    }

    /// Decodes and validates a request against the exported region: never traps, whatever the bytes.
    public static func decodeRequest(_ bytes: [UInt8], exportLength: UInt64) -> Result<Request, RequestError> {
        guard bytes.count >= 8 else { return .failure(RequestError(id: 0, problem: .truncated(bytes.count))) }
        var reader = Reader(bytes)
        let opcode = reader.u8(), version = reader.u8(), reserved = reader.u16(), id = reader.u32()
        func fail(_ problem: RequestError.Problem) -> Result<Request, RequestError> { .failure(RequestError(id: id, problem: problem)) }
        guard version == Self.version else { return fail(.version(version)) }
        guard reserved == 0 else { return fail(.reservedNotZero) }
        guard let code = RequestCode(rawValue: opcode) else { return fail(.unknownOpcode(opcode)) }
        switch code {
        case .persist, .checksum:
            guard bytes.count == 24 else { return fail(.wrongSize(opcode: opcode, size: bytes.count, expected: 24)) }
            let offset = reader.u64(), length = reader.u64()
            guard length > 0 else { return fail(.emptyRange) }
            let (end, overflow) = offset.addingReportingOverflow(length)
            guard !overflow, end <= exportLength else {
                return fail(.outOfRange(offset: offset, length: length, exportLength: exportLength))
            }
            return .success(code == .persist ? .persist(id: id, offset: offset, length: length)
                                             : .checksum(id: id, offset: offset, length: length))
        case .stopped, .goodbye:
            guard bytes.count == 8 else { return fail(.wrongSize(opcode: opcode, size: bytes.count, expected: 8)) }
            return .success(code == .stopped ? .stopped(id: id) : .goodbye(id: id))
        }
    }

    /// Decodes a response (client side). Nil for anything malformed.
    public static func decodeResponse(_ bytes: [UInt8]) -> Response? {
        guard bytes.count >= 8 else { return nil }
        var reader = Reader(bytes)
        let opcode = reader.u8(), version = reader.u8(), _ = reader.u16(), id = reader.u32()
        guard version == Self.version, let code = ResponseCode(rawValue: opcode) else { return nil }
        switch code {
        case .persisted:
            guard bytes.count == 24 else { return nil }
            return .persisted(id: id, offset: reader.u64(), length: reader.u64())
        case .checksum:
            guard bytes.count == 32 else { return nil }
            return .checksum(id: id, offset: reader.u64(), length: reader.u64(), value: reader.u64())
        case .stop:
            guard bytes.count >= 12 else { return nil }
            let deadline = reader.u32()
            return .stop(deadlineMilliseconds: deadline, reason: reader.text())
        case .error:
            guard bytes.count >= 10 else { return nil }
            let errorCode = reader.u16()
            return .error(id: id, code: errorCode, message: reader.text())
        }
    }

    /// FNV-1a, 64 bit: the checksum both sides compute over a range.
    public static func checksum<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// The byte a client with `seed` writes at export offset `offset` (tests recompute it).
    public static func patternByte(seed: UInt32, offset: UInt64) -> UInt8 {
        let mixed = (offset &* 0x9E37_79B9) ^ (offset >> 9) ^ UInt64(seed) &* 0x85EB_CA6B
        return UInt8(truncatingIfNeeded: mixed >> 3) | 0x01  // never zero: a hole reads as zero
    }
}

/// What a client sends with `rdma_connect` (8 bytes).
public struct ClientHello: Sendable, Hashable {
    /// The client's protocol version.
    public var version: UInt8
    /// Creates a hello for `version`.
    public init(version: UInt8 = StorageProtocol.version) { self.version = version }
    /// The private-data bytes.
    public var encoded: [UInt8] {
        var writer = Writer(); writer.u32(StorageProtocol.magic); writer.u8(version); writer.u8(0); writer.u16(0)
        return writer.bytes
    }
    /// Parses private data; nil when it is not a DaxPin storage client.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 8 else { return nil }
        var reader = Reader(bytes)
        guard reader.u32() == StorageProtocol.magic else { return nil }
        version = reader.u8()
    }
}

/// What the server sends with `rdma_accept` (36 bytes): where the export is, its rkey, and
/// what the server promises about it (``Flags``).
///
/// Byte 5, after the version, is the flags byte; servers before it existed sent zero there,
/// so their hellos decode with no flags.
public struct ServerHello: Sendable, Hashable {
    /// What the server promises about its export.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        /// Creates flags from the wire byte.
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// The operator declared (`--direct-write-to-pmem`) that RDMA WRITEs to this export reach
        /// the persistence domain once placed, so a client may make them durable itself with an
        /// RDMA READ after the WRITEs (SNIA's appliance persistency method) instead of asking the
        /// server to flush. Only ever set for persistent-memory exports.
        public static let directWriteToPMem = Flags(rawValue: 1 << 0)
        /// The export is registered for native RDMA FLUSH to persistence
        /// (`IBV_ACCESS_FLUSH_PERSISTENT`) and the server's queue pairs admit FLUSH: a client may
        /// make its WRITEs durable with an RDMA FLUSH after them. Only ever set for
        /// persistent-memory exports whose registration the kernel accepted with that access.
        public static let remoteFlush = Flags(rawValue: 1 << 1)
    }

    /// The protocol version.
    public var version: UInt8
    /// What the server promises about the export.
    public var flags: Flags
    /// The client's number on this server.
    public var clientID: UInt32
    /// The registered address of the export.
    public var address: UInt64
    /// Its length in bytes.
    public var length: UInt64
    /// The rkey for RDMA WRITE and READ.
    public var rkey: UInt32
    /// Creates a hello.
    public init(version: UInt8 = StorageProtocol.version, flags: Flags = [], clientID: UInt32, address: UInt64,
                length: UInt64, rkey: UInt32) {
        self.version = version; self.flags = flags; self.clientID = clientID; self.address = address
        self.length = length; self.rkey = rkey
    }
    /// The private-data bytes.
    public var encoded: [UInt8] {
        var writer = Writer()
        writer.u32(StorageProtocol.magic); writer.u8(version); writer.u8(flags.rawValue); writer.u16(0)
        writer.u32(clientID); writer.u64(address); writer.u64(length); writer.u32(rkey); writer.u32(0)
        return writer.bytes
    }
    /// Parses private data; nil when malformed. Unknown flag bits are kept (a newer server's);
    /// a client acts only on the ones it knows.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 36 else { return nil }
        var reader = Reader(bytes)
        guard reader.u32() == StorageProtocol.magic else { return nil }
        version = reader.u8(); flags = Flags(rawValue: reader.u8()); _ = reader.u16()
        clientID = reader.u32(); address = reader.u64(); length = reader.u64(); rkey = reader.u32()
    }
}

/// A validated client request.
public enum Request: Sendable, Hashable {
    /// Make `length` bytes at `offset` of the export durable.
    case persist(id: UInt32, offset: UInt64, length: UInt64)
    /// Answer the checksum of a range (verifies RDMA WRITEs on the server side).
    case checksum(id: UInt32, offset: UInt64, length: UInt64)
    /// The client stopped all RDMA after a stop message.
    case stopped(id: UInt32)
    /// The client is leaving.
    case goodbye(id: UInt32)

    /// The wire bytes.
    public var encoded: [UInt8] {
        var writer = Writer()
        func header(_ code: StorageProtocol.RequestCode, _ id: UInt32) {
            writer.u8(code.rawValue); writer.u8(StorageProtocol.version); writer.u16(0); writer.u32(id)
        }
        switch self {
        case .persist(let id, let offset, let length): header(.persist, id); writer.u64(offset); writer.u64(length)
        case .checksum(let id, let offset, let length): header(.checksum, id); writer.u64(offset); writer.u64(length)
        case .stopped(let id): header(.stopped, id)
        case .goodbye(let id): header(.goodbye, id)
        }
        return writer.bytes
    }
}

/// A server answer or notice.
public enum Response: Sendable, Hashable {
    /// The range is durable.
    case persisted(id: UInt32, offset: UInt64, length: UInt64)
    /// The range's checksum (``StorageProtocol/checksum(_:)``).
    case checksum(id: UInt32, offset: UInt64, length: UInt64, value: UInt64)
    /// Stop all RDMA within `deadlineMilliseconds` and answer ``Request/stopped(id:)``.
    case stop(deadlineMilliseconds: UInt32, reason: String)
    /// The request `id` was refused.
    case error(id: UInt32, code: UInt16, message: String)

    /// The wire bytes.
    public var encoded: [UInt8] {
        var writer = Writer()
        func header(_ code: StorageProtocol.ResponseCode, _ id: UInt32) {
            writer.u8(code.rawValue); writer.u8(StorageProtocol.version); writer.u16(0); writer.u32(id)
        }
        switch self {
        case .persisted(let id, let offset, let length): header(.persisted, id); writer.u64(offset); writer.u64(length)
        case .checksum(let id, let offset, let length, let value):
            header(.checksum, id); writer.u64(offset); writer.u64(length); writer.u64(value)
        case .stop(let deadline, let reason): header(.stop, 0); writer.u32(deadline); writer.text(reason)
        case .error(let id, let code, let message): header(.error, id); writer.u16(code); writer.text(message)
        }
        return writer.bytes
    }
}

/// Why a request was refused; `code` and `description` go back to the client.
public struct RequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The request id, when the header was readable (else 0).
    public let id: UInt32
    /// What is wrong.
    public let problem: Problem

    /// What is wrong with a request.
    public enum Problem: Sendable, Hashable {
        case truncated(Int)
        case version(UInt8)
        case reservedNotZero
        case unknownOpcode(UInt8)
        case wrongSize(opcode: UInt8, size: Int, expected: Int)
        case emptyRange
        case outOfRange(offset: UInt64, length: UInt64, exportLength: UInt64)
    }

    /// A stable number per problem, sent in the error response.
    public var code: UInt16 {
        switch problem {
        case .truncated: 1
        case .version: 2
        case .reservedNotZero: 3
        case .unknownOpcode: 4
        case .wrongSize: 5
        case .emptyRange: 6
        case .outOfRange: 7
        }
    }

    public var description: String {
        switch problem {
        case .truncated(let size): "request of \(size) bytes is shorter than the 8-byte header"
        case .version(let version): "protocol version \(version) is not supported (server speaks \(StorageProtocol.version))"
        case .reservedNotZero: "reserved header bytes must be zero"
        case .unknownOpcode(let opcode): "unknown opcode 0x\(String(opcode, radix: 16))"
        case .wrongSize(let opcode, let size, let expected): "opcode 0x\(String(opcode, radix: 16)) must be \(expected) bytes, got \(size)"
        case .emptyRange: "the range is empty"
        case .outOfRange(let offset, let length, let exportLength):
            "range \(offset)+\(length) is outside the export (\(exportLength) bytes)"
        }
    }
}

struct Reader {
    let bytes: [UInt8]
    var index = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    mutating func u8() -> UInt8 {
        defer { index += 1 }
        return index < bytes.count ? bytes[index] : 0
    }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    mutating func text() -> String {
        let rest = index < bytes.count ? Array(bytes[index...]) : []
        index = bytes.count
        return String(decoding: rest.prefix(StorageProtocol.maxText), as: UTF8.self)
    }
}

struct Writer {
    var bytes: [UInt8] = []
    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { u8(UInt8(truncatingIfNeeded: value)); u8(UInt8(truncatingIfNeeded: value >> 8)) }
    mutating func u32(_ value: UInt32) { u16(UInt16(truncatingIfNeeded: value)); u16(UInt16(truncatingIfNeeded: value >> 16)) }
    mutating func u64(_ value: UInt64) { u32(UInt32(truncatingIfNeeded: value)); u32(UInt32(truncatingIfNeeded: value >> 32)) }
    mutating func text(_ value: String) { bytes.append(contentsOf: Array(value.utf8.prefix(StorageProtocol.maxText))) }
}
