import DaxPin

/// An io_uring instance's registered buffers, from `/proc/<pid>/fdinfo/<ring fd>`. Registered
/// buffers are long-term pins (`FOLL_LONGTERM`), and unlike RDMA MRs the kernel lists their
/// addresses: whether one lies inside a file mapping is known exactly.
package struct IoUringRegistration: Sendable, Equatable {
    /// One registered buffer: `index: 0xADDRESS/LENGTH` in fdinfo.
    package struct Buffer: Sendable, Equatable {
        /// Its index in the ring's buffer table.
        package var index: Int
        /// The user address it was registered at.
        package var address: UInt64
        /// Its length in bytes.
        package var length: UInt64

        /// Creates a buffer.
        package init(index: Int, address: UInt64, length: UInt64) { self.index = index; self.address = address; self.length = length }
    }

    /// The ring's descriptor in its process.
    package var fd: Int32
    /// How many buffers are registered (`UserBufs:`, less the slots listed as empty).
    package var bufferCount: Int
    /// The buffers listed with their addresses. The kernel lists them only when it can take
    /// the ring's lock at that moment, so this may be empty while ``bufferCount`` is not.
    package var buffers: [Buffer]

    /// Creates a registration.
    package init(fd: Int32, bufferCount: Int, buffers: [Buffer]) { self.fd = fd; self.bufferCount = bufferCount; self.buffers = buffers }

    /// Whether every registered buffer's address is known.
    package var addressesListed: Bool { buffers.count == bufferCount || bufferCount == 0 }

    /// Bytes in the listed buffers.
    package var listedBytes: UInt64 { buffers.reduce(0) { $0 &+ $1.length } }

    /// The target of a `/proc/<pid>/fd/<n>` link that is an io_uring instance.
    package static let descriptorTarget = "anon_inode:[io_uring]"

    /// Parses fdinfo text; nil when it has no `UserBufs:` line (not a ring). The buffer lines
    /// follow it: `    0: 0x7f2a4c000000/65536` (`    1: <none>` for an empty slot on newer kernels).
    package static func parse(fdinfo: String, fd: Int32) -> IoUringRegistration? {
        let lines = fdinfo.split(separator: "\n", omittingEmptySubsequences: false)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("UserBufs:") }),
              let count = Int(lines[header].dropFirst("UserBufs:".count).filter { $0 != " " && $0 != "\t" }),
              count >= 0 else { return nil }
        var buffers: [Buffer] = []
        var emptySlots = 0
        for line in lines[(header + 1)...] {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let index = Int(parts[0].filter { $0 != " " }) else { break }
            let value = parts[1].filter { $0 != " " }
            if value == "<none>" { emptySlots += 1; continue }
            let pieces = value.split(separator: "/")
            guard pieces.count == 2, pieces[0].hasPrefix("0x"), let address = UInt64(pieces[0].dropFirst(2), radix: 16),
                  let length = UInt64(pieces[1]) else { break }
            buffers.append(Buffer(index: index, address: address, length: length))
        }
        return IoUringRegistration(fd: fd, bufferCount: max(count - emptySlots, buffers.count), buffers: buffers)
    }
}
