import CLease
import Glibc

/// The On-Demand Paging check's target memory: a file of the kind ``OnDemandPagingTarget``
/// names, mapped shared and never touched, so that it is a hole that reads zero until the
/// device writes it. Unmapped and closed when released.
final class OnDemandPagingScratch {
    let kind: OnDemandPagingTarget
    /// The mapping.
    let bytes: UnsafeMutableRawBufferPointer
    /// Whether the mapping is `MAP_SYNC`: false for a file asked for as fs-dax whose file
    /// system turns out not to be DAX.
    let isSynchronous: Bool
    /// Kept open to punch holes through.
    private let fd: Int32

    /// An unnamed file in `directory`: `O_TMPFILE` where the file system has it, else a new
    /// name made exclusively and unlinked at once (overlayfs, 9p and older file systems answer
    /// `O_TMPFILE` with EOPNOTSUPP, EISDIR or EINVAL). The descriptor (or -1 with errno set),
    /// the operation and the path for an error.
    private static func unnamedFile(in directory: String) -> (Int32, String, String) {
        let fd = Syscalls.openTemporaryFile(in: directory, 0o600)
        guard fd < 0, [EOPNOTSUPP, EISDIR, EINVAL].contains(errno) else { return (fd, "open(O_TMPFILE)", directory) }
        let name = "\(directory)/.daxpin-odp-check-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let named = Syscalls.open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard named >= 0 else { return (named, "open(O_CREAT|O_EXCL)", name) }
        guard Syscalls.unlinkat(AT_FDCWD, name, 0) == 0 else {
            let code = errno
            Syscalls.close(named)
            errno = code
            return (-1, "unlink", name)
        }
        return (named, "open(O_CREAT|O_EXCL)", name)
    }

    /// Makes a `length`-byte scratch target; every step's failure is a typed error.
    init(_ kind: OnDemandPagingTarget, length: Int) throws(DaxPinError) {
        let (fd, operation, path): (Int32, String, String) = switch kind {
        case .memory: (Syscalls.memfdCreate("daxpin-odp-check"), "memfd_create", "daxpin-odp-check")
        case .file(let directory, _): Self.unnamedFile(in: directory)
        }
        guard fd >= 0 else { throw .systemCall(operation: operation, path: path, errno: .init(rawValue: errno)) }
        guard Syscalls.ftruncate(fd, off_t(length)) == 0 else {
            let code = errno
            Syscalls.close(fd)
            throw .systemCall(operation: "ftruncate", path: path, errno: .init(rawValue: code))
        }
        switch Self.map(fd, kind, length: length) {
        case .success(let (address, synchronous)):
            bytes = UnsafeMutableRawBufferPointer(start: address, count: length)
            isSynchronous = synchronous
        case .failure(let error):
            Syscalls.close(fd)
            throw error
        }
        self.kind = kind
        self.fd = fd
    }

    deinit {
        Syscalls.munmap(bytes.baseAddress, bytes.count)
        Syscalls.close(fd)
    }

    /// Whether the bytes survive ``invalidate()`` (a memfd's do; a punched hole reads zero).
    var invalidationKeepsContents: Bool { kind == .memory }

    /// Drops every page from the process, which invalidates a device's ODP mappings of them:
    /// `MADV_DONTNEED` for a memfd, a hole punched through a file (its blocks freed too).
    func invalidate() -> Result<Void, DaxPinError> {
        guard let base = bytes.baseAddress else { return .success(()) }
        switch kind {
        case .memory:
            guard Syscalls.madvise(base, bytes.count, MADV_DONTNEED) == 0 else {
                return .failure(.systemCall(operation: "madvise(MADV_DONTNEED)", path: kind.description, errno: .init(rawValue: errno)))
            }
        case .file:
            guard Syscalls.punchHole(fd, 0, off_t(bytes.count)) == 0 else {
                return .failure(.systemCall(operation: "fallocate(FALLOC_FL_PUNCH_HOLE)", path: kind.description, errno: .init(rawValue: errno)))
            }
        }
        return .success(())
    }

    /// Maps the file shared, without populating it: fs-dax with `MAP_SYNC` as a pin maps it,
    /// and plainly shared when the file system is not DAX after all.
    private static func map(_ fd: Int32, _ kind: OnDemandPagingTarget, length: Int)
        -> Result<(UnsafeMutableRawPointer, synchronous: Bool), DaxPinError> {
        if case .file(_, dax: true) = kind {
            let flags = Int32(DAXPIN_MAP_SHARED_VALIDATE) | Int32(DAXPIN_MAP_SYNC)
            if let address = Syscalls.mmap(nil, length, PROT_READ | PROT_WRITE, flags, fd, 0), address != MAP_FAILED {
                return .success((address, true))
            }
            guard errno == EOPNOTSUPP || errno == EINVAL else {
                return .failure(.systemCall(operation: "mmap(MAP_SYNC)", path: kind.description, errno: .init(rawValue: errno)))
            }
        }
        guard let address = Syscalls.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            return .failure(.systemCall(operation: "mmap", path: kind.description, errno: .init(rawValue: errno)))
        }
        return .success((address, false))
    }
}
