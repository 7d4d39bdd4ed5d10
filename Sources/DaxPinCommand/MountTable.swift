import DaxPin

/// One line of `/proc/self/mountinfo`.
struct MountEntry: Codable, Equatable {
    /// Where it is mounted.
    let mountPoint: String
    /// The file system type (`ext4`, `xfs`, `tmpfs`).
    let fileSystem: String
    /// The mount source (`/dev/pmem0`, `tmpfs`).
    let source: String
    /// Per-mount options (`rw,relatime`).
    let mountOptions: String
    /// Per-superblock options (`rw,dax=always`): where `dax` shows up.
    let superOptions: String
    /// The device `major:minor` of the file system.
    let device: String
}

/// `/proc/self/mountinfo`, to name the file system and options a file lives on.
enum MountTable {
    /// The mount holding `path` on `device`: the longest mount point that prefixes the path
    /// among mounts of that device (bind mounts share a device).
    static func mount(containing path: String, device: DeviceNumber) -> MountEntry? {
        let resolved = realPath(path) ?? path
        let candidates = entries().filter { $0.device == device.description }
        func contains(_ entry: MountEntry) -> Bool {
            entry.mountPoint == "/" || resolved == entry.mountPoint || resolved.hasPrefix(entry.mountPoint + "/")
        }
        return candidates.filter(contains).max { $0.mountPoint.count < $1.mountPoint.count } ?? candidates.last
    }

    /// Every entry of `/proc/self/mountinfo`.
    static func entries() -> [MountEntry] {
        readTextFile("/proc/self/mountinfo").split(separator: "\n").compactMap(parse)
    }

    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    static func parse(_ line: Substring) -> MountEntry? {
        let fields = line.split(separator: " ")
        guard let separator = fields.firstIndex(of: "-"), separator >= 6, fields.count >= separator + 3 else { return nil }
        return MountEntry(mountPoint: unescape(fields[4]), fileSystem: String(fields[separator + 1]),
                          source: unescape(fields[separator + 2]), mountOptions: String(fields[5]),
                          superOptions: fields.count > separator + 3 ? String(fields[separator + 3]) : "",
                          device: String(fields[2]))
    }

    /// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
    static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4,
               let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
