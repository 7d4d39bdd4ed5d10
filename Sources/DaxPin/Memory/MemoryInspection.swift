import CLease
import Glibc
import SystemPackage

/// What backs a path, found without opening it for reading or writing: the path is opened
/// with `O_PATH`, which breaks nobody's lease (a plain open would). For `daxpin probe`.
package struct MemoryInspection: Sendable {
    /// The memory kind, as `LayoutLease` would classify it.
    public let kind: MemoryKind
    /// `STATX_ATTR_DAX` on the file: true or false, nil when the file system does not report it.
    public let daxAttribute: Bool?
    /// The file's device (`st_dev`; `st_rdev` for device-dax).
    public let device: DeviceNumber
    /// The file system's device (`st_dev`), to find its mount in /proc/self/mountinfo.
    public let fileSystemDevice: DeviceNumber
    /// The inode number.
    public let inode: UInt64
    /// Size in bytes (of the file, or of the device-dax instance).
    public let size: Int

    /// `O_PATH` (010000000 on Linux), which Glibc hides without `_GNU_SOURCE`.
    static let openPathOnly: Int32 = 0o10_000_000

    /// Inspects `path`.
    /// - Throws: `.fileNotFound`, `.permissionDenied`, `.unsupportedFileType` (directories,
    ///   FIFOs, sockets, block devices, character devices that are not device-dax).
    public init(path: String) throws(DaxPinError) {
        _ = try MemoryProbe.statPinnable(path)
        let fd: Int32
        do throws(Errno) { fd = try Syscalls.open(path, Self.openPathOnly | O_CLOEXEC) } catch {
            throw .systemCall(operation: "open(O_PATH)", path: path, errno: error)
        }
        defer { try? Syscalls.close(fd) }
        let descriptor = FileDescriptor(rawValue: fd)
        kind = try MemoryProbe.classify(descriptor, path: path)
        daxAttribute = (try? Syscalls.statxDAX(fd)).flatMap { $0 >= 0 ? $0 == 1 : nil }
        let opened = (try? Syscalls.fstat(fd)) ?? stat()
        let isCharacter = opened.st_mode & S_IFMT == S_IFCHR
        device = DeviceNumber(isCharacter ? opened.st_rdev : opened.st_dev)
        fileSystemDevice = DeviceNumber(opened.st_dev)
        inode = UInt64(opened.st_ino)
        size = (try? MemoryProbe.size(of: descriptor, kind: kind, path: path)) ?? Int(opened.st_size)
    }
}
