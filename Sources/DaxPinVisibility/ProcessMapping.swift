import DaxPin

/// One line of `/proc/<pid>/maps`.
package struct ProcessMapping: Sendable, Equatable {
    /// The mapped address range `[start, end)`.
    package var start: UInt64, end: UInt64
    /// `r`, `w`, `x` and `s` (shared) or `p` (private) in the permissions field.
    package var readable: Bool, writable: Bool, shared: Bool
    /// The file offset of `start`.
    package var offset: UInt64
    /// The file's device (`st_dev`, as `maps` prints it: hexadecimal `major:minor`).
    package var device: DeviceNumber
    /// The file's inode; 0 for anonymous memory.
    package var inode: UInt64
    /// The path, `[heap]`-style names for special mappings, or "" for anonymous memory. A
    /// deleted file's path ends with ` (deleted)`.
    package var path: String

    /// Creates a mapping.
    package init(start: UInt64, end: UInt64, readable: Bool, writable: Bool, shared: Bool, offset: UInt64,
                 device: DeviceNumber, inode: UInt64, path: String) {
        self.start = start; self.end = end; self.readable = readable; self.writable = writable; self.shared = shared
        self.offset = offset; self.device = device; self.inode = inode; self.path = path
    }

    /// Length in bytes.
    package var length: UInt64 { end - start }

    /// Whether the mapping is of a file a pin could hold: shared, with an inode, and not shared
    /// anonymous memory (`/dev/zero (deleted)`) or a System V segment (`/SYSV...`), which no
    /// one can truncate.
    package var isSharedFileMapping: Bool {
        shared && inode != 0 && path.hasPrefix("/") && !path.hasPrefix("/dev/zero ") && !path.hasPrefix("/SYSV")
    }

    /// Whether `[address, address + length)` overlaps this mapping.
    package func overlaps(address: UInt64, length: UInt64) -> Bool {
        let (last, overflow) = address.addingReportingOverflow(length)
        return address < end && (overflow || last > start)
    }

    /// Parses `maps` text: `7f3c1a200000-7f3c1a300000 rw-s 00000000 00:1b 1234   /dev/shm/buf`.
    /// Lines that do not have this shape are skipped.
    package static func parse(_ text: String) -> [ProcessMapping] {
        text.split(separator: "\n").compactMap(parse(line:))
    }

    static func parse(line: Substring) -> ProcessMapping? {
        var fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)[...]
        guard fields.count >= 5 else { return nil }
        let range = fields.removeFirst().split(separator: "-")
        let permissions = Array(fields.removeFirst().utf8)
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16), start <= end,
              permissions.count == 4, let offset = UInt64(fields.removeFirst(), radix: 16),
              let device = DeviceNumber(parsing: fields.removeFirst(), hex: true),
              let inode = UInt64(fields.removeFirst()) else { return nil }
        // The path is the rest of the line after the padding (it may contain spaces).
        let path = fields.first.map { rest in String(rest.drop { $0 == " " }) } ?? ""
        return ProcessMapping(start: start, end: end, readable: permissions[0] == UInt8(ascii: "r"),
                              writable: permissions[1] == UInt8(ascii: "w"), shared: permissions[3] == UInt8(ascii: "s"),
                              offset: offset, device: device, inode: inode, path: path)
    }
}
