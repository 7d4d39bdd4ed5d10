import CLease
import Glibc
import SystemPackage

/// An opened file or device with what it is. Owns the descriptor until handed to a lease.
struct OpenedMemory {
    let fd: FileDescriptor
    let kind: MemoryKind
}

/// Finds out what a path is and opens it the way its memory kind needs.
enum MemoryProbe {
    /// Opens `path` (checked first with ``statPinnable(_:)``) for `access` and classifies it;
    /// nothing stays open on error.
    static func openPinnable(_ path: String, access: Access) throws(DaxPinError) -> OpenedMemory {
        // O_NONBLOCK: never wait for another process's lease to be broken on our behalf.
        let raw: Int32
        do throws(Errno) { raw = try Syscalls.open(path, (access == .readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK) } catch {
            throw openError(path, error)
        }
        let fd = FileDescriptor(rawValue: raw)
        do {
            return OpenedMemory(fd: fd, kind: try classify(fd, path: path))
        } catch {
            try? Syscalls.close(raw)
            throw error
        }
    }

    /// `stat(2)` of `path`, or the typed error a user can act on: a missing or forbidden path,
    /// or a file type that cannot be pinned (only regular files and device-dax can). The one
    /// file-type classifier of the library (`LayoutLease` and `MemoryInspection` share it).
    static func statPinnable(_ path: String) throws(DaxPinError) -> stat {
        let info: stat
        do throws(Errno) { info = try Syscalls.stat(path) } catch {
            let code = error
            switch code {
            case .noSuchFileOrDirectory: throw .fileNotFound(path: path)
            case .permissionDenied, .notPermitted: throw .permissionDenied(path: path, errno: code)
            default: throw .systemCall(operation: "stat", path: path, errno: code)
            }
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return info
        case S_IFCHR:
            guard deviceDAXName(rdev: info.st_rdev) != nil else {
                throw .unsupportedFileType(path: path, type: "character device that is not device-dax")
            }
            return info
        case S_IFDIR: throw .unsupportedFileType(path: path, type: "directory")
        case S_IFIFO: throw .unsupportedFileType(path: path, type: "FIFO")
        case S_IFSOCK: throw .unsupportedFileType(path: path, type: "socket")
        case S_IFBLK: throw .unsupportedFileType(path: path, type: "block device")
        default: throw .unsupportedFileType(path: path, type: "special file")
        }
    }

    /// The memory kind of an open descriptor.
    static func classify(_ fd: FileDescriptor, path: String) throws(DaxPinError) -> MemoryKind {
        let info: stat
        do throws(Errno) { info = try Syscalls.fstat(fd.rawValue) } catch {
            throw .systemCall(operation: "fstat", path: path, errno: error)
        }
        if info.st_mode & S_IFMT == S_IFCHR {
            guard let name = deviceDAXName(rdev: info.st_rdev) else {
                throw .unsupportedFileType(path: path, type: "character device that is not device-dax")
            }
            let alignment = DeviceDAXCatalog.device(named: name)?.alignment
                ?? readSmallInt("/sys/bus/dax/devices/\(name)/align") ?? 2 << 20
            return .deviceDAX(name: name, alignment: alignment)
        }
        let magic: UInt64
        do throws(Errno) { magic = try Syscalls.fileSystemMagic(fd.rawValue) } catch {
            throw .systemCall(operation: "fstatfs", path: path, errno: error)
        }
        let fileSystem = fileSystemName(magic: magic)
        if (try? Syscalls.statxDAX(fd.rawValue)) == 1 {
            return .fsDAX(fileSystem: fileSystem)
        }
        switch fileSystem {
        case "tmpfs", "hugetlbfs", "ramfs": return .sharedMemory(fileSystem: fileSystem)
        default: return .pageCache(fileSystem: fileSystem)
        }
    }

    /// Size in bytes of a file or device-dax instance.
    static func size(of fd: FileDescriptor, kind: MemoryKind, path: String) throws(DaxPinError) -> Int {
        if case .deviceDAX(let name, _) = kind {
            return DeviceDAXCatalog.device(named: name)?.size
                ?? readSmallInt("/sys/bus/dax/devices/\(name)/size") ?? 0
        }
        do throws(Errno) { return Int(try Syscalls.fstat(fd.rawValue).st_size) } catch {
            throw .systemCall(operation: "fstat", path: path, errno: error)
        }
    }

    /// `dax0.0` when the character device number belongs to the dax subsystem.
    static func deviceDAXName(rdev: dev_t) -> String? {
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfff)
        let minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff)
        let node = "/sys/dev/char/\(major):\(minor)"
        guard let subsystem = realPath(node + "/subsystem"), subsystem.hasSuffix("/dax"),
              let device = realPath(node) else { return nil }
        return device.split(separator: "/").last.map(String.init)
    }

    static func fileSystemName(magic: UInt64) -> String {
        switch magic & 0xffff_ffff {
        case 0xEF53: "ext4"
        case 0x5846_5342: "xfs"
        case 0x0102_1994: "tmpfs"
        case 0x9584_58f6: "hugetlbfs"
        case 0x8584_58f6: "ramfs"
        case 0x9123_683E: "btrfs"
        case 0x6969: "nfs"
        case 0x6573_5546: "fuse"
        case 0x794c_7630: "overlayfs"
        default: "file system 0x" + String(magic, radix: 16)
        }
    }

    private static func openError(_ path: String, _ code: Errno) -> DaxPinError {
        switch code {
        case .noSuchFileOrDirectory: .fileNotFound(path: path)
        case .permissionDenied, .notPermitted: .permissionDenied(path: path, errno: code)
        case .readOnlyFileSystem: .readOnlyFileSystem(path: path)
        case .resourceTemporarilyUnavailable, .wouldBlock: .fileInUse(path: path, lease: "existing")
        default: .systemCall(operation: "open", path: path, errno: code)
        }
    }
}
