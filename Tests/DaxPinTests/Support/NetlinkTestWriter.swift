// Netlink bytes laid out as the kernel writes them (host byte order, four-byte alignment,
// `nla_put_u64_64bit`'s pad attribute), for the decoder tests and the fuzz harness's seeds
// and round trip. No import: Scripts/fuzz compiles this file with the decoders.

/// Builds netlink messages and attributes.
enum NetlinkTestWriter {
    static func aligned(_ length: Int) -> Int { (length + 3) & ~3 }

    static func bytes<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    /// An attribute with its header and padding; `nested` sets `NLA_F_NESTED` as newer kernels do.
    static func attribute(_ type: UInt16, _ payload: [UInt8], nested: Bool = false) -> [UInt8] {
        let length = 4 + payload.count
        return bytes(UInt16(length)) + bytes(type | (nested ? 0x8000 : 0)) + payload
            + [UInt8](repeating: 0, count: aligned(length) - length)
    }

    static func u32(_ type: UInt16, _ value: UInt32) -> [UInt8] { attribute(type, bytes(value)) }

    /// A `u64` as `nla_put_u64_64bit` writes it: a pad attribute (type 0) first when the
    /// value would not be eight-byte aligned at `offset` (the attribute's offset in the message).
    static func u64(_ type: UInt16, _ value: UInt64, offset: Int) -> [UInt8] {
        let pad = (offset + 4) % 8 == 0 ? [] : attribute(0, [])
        return pad + attribute(type, bytes(value))
    }

    static func string(_ type: UInt16, _ value: String) -> [UInt8] { attribute(type, Array(value.utf8) + [0]) }

    /// A message: the 16-byte header, then `payload`.
    static func message(type: UInt16, flags: UInt16 = 0x2, sequence: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = 16 + payload.count
        return bytes(UInt32(length)) + bytes(type) + bytes(flags) + bytes(sequence) + bytes(UInt32(0)) + payload
            + [UInt8](repeating: 0, count: aligned(length) - length)
    }

    /// `NLMSG_DONE` (carrying `error`, 0 for success).
    static func done(sequence: UInt32, error: Int32 = 0) -> [UInt8] {
        message(type: 3, sequence: sequence, payload: bytes(error))
    }

    /// `NLMSG_ERROR` with `-errno` and the request's header.
    static func error(sequence: UInt32, errno: Int32) -> [UInt8] {
        message(type: 2, sequence: sequence, payload: bytes(-errno) + [UInt8](repeating: 0, count: 16))
    }

    /// One MR entry's attributes as the kernel's `fill_res_mr_entry` orders them.
    struct MemoryRegion {
        var rkey: UInt32?, lkey: UInt32?
        var length: UInt64
        var number: UInt32
        var protectionDomain: UInt32?
        var pid: UInt32?
        var kernelOwner: String?
    }

    /// An `RDMA_NLDEV_CMD_RES_MR_GET` dump message for one device.
    static func memoryRegionMessage(device: String, index: UInt32, sequence: UInt32, regions: [MemoryRegion]) -> [UInt8] {
        var entries: [UInt8] = []
        for region in regions {
            var entry: [UInt8] = []
            if let rkey = region.rkey { entry += u32(42, rkey) }
            if let lkey = region.lkey { entry += u32(43, lkey) }
            // Offsets inside the message: header 16, handle attributes, table and entry headers.
            let base = 16 + 8 + aligned(4 + device.utf8.count + 1) + 4 + entries.count + 4
            entry += u64(45, region.length, offset: base + entry.count)
            entry += u32(62, region.number)
            if let pdn = region.protectionDomain { entry += u32(60, pdn) }
            if let pid = region.pid { entry += u32(28, pid) }
            if let owner = region.kernelOwner { entry += string(29, owner) }
            entries += attribute(41, entry, nested: true)
        }
        let payload = u32(1, index) + string(2, device) + attribute(40, entries, nested: true)
        return message(type: 5 << 10 | 13, sequence: sequence, payload: payload)
    }

    /// An `RDMA_NLDEV_CMD_GET` dump message for one device.
    static func deviceMessage(device: String, index: UInt32, sequence: UInt32) -> [UInt8] {
        message(type: 5 << 10 | 1, sequence: sequence, payload: u32(1, index) + string(2, device) + u32(3, 1))
    }
}
