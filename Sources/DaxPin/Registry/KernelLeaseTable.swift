/// One lease as the kernel lists it in `/proc/locks`, whoever holds it.
package struct KernelLease: Sendable, Hashable {
    /// The holder's pid (as the kernel recorded it when the lease was taken).
    package let pid: Int32
    /// The leased file's device.
    package let device: DeviceNumber
    /// The leased file's inode.
    package let inode: UInt64
    /// `WRITE`, `READ`, or the type a breaking lease is being downgraded to (`UNLCK`, `READ`).
    package let type: String
    /// Whether the kernel is breaking the lease (`BREAKING`): a truncate or open waits on it.
    package let breaking: Bool

    /// Creates a lease entry.
    package init(pid: Int32, device: DeviceNumber, inode: UInt64, type: String, breaking: Bool) {
        self.pid = pid; self.device = device; self.inode = inode; self.type = type; self.breaking = breaking
    }

    /// Every lease in `/proc/locks`.
    package static func current() -> [KernelLease] {
        parse(ProcessInfoReader.readSmallFile("/proc/locks", limit: 16 << 20) ?? "")
    }

    /// Parses `/proc/locks` text: `1: LEASE  ACTIVE    WRITE 1234 00:1a:5678 0 EOF`.
    /// Waiters (`1: -> LEASE ...`) and other lock kinds are skipped.
    package static func parse(_ text: String) -> [KernelLease] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "LEASE" else { return nil }
            let breaking = fields[2] == "BREAKING"
            guard fields[2] == "ACTIVE" || breaking, let pid = Int32(fields[4]) else { return nil }
            let identity = fields[5].split(separator: ":")
            guard identity.count == 3, let device = DeviceNumber(parsing: fields[5].dropLast(identity[2].count + 1), hex: true),
                  let inode = UInt64(identity[2]) else { return nil }
            return KernelLease(pid: pid, device: device, inode: inode, type: String(fields[3]), breaking: breaking)
        }
    }
}
